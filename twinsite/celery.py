"""The Celery app: queues "default" (crawl, features, evaluation), "gpu" (training) and "serve" (chat answers)."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "twinsite.settings")

app = Celery("twinsite")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@app.task(name="twinsite.resume_stalled_jobs")
def resume_stalled_jobs() -> dict[str, dict[str, int]]:
    """Beat: every kind of job whose worker died (or whose message was lost) is sent again (core/jobs.py)."""
    from django.apps import apps as django_apps

    from core.jobs import Job

    return {
        model.__name__: model.objects.resume_stalled() for model in django_apps.get_models() if issubclass(model, Job)
    }

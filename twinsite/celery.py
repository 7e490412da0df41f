"""The Celery app: queues "default" (crawl, features, evaluation), "gpu" (training) and "serve" (chat answers)."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "twinsite.settings")

app = Celery("twinsite")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@app.task(name="twinsite.fail_stalled_jobs")
def fail_stalled_jobs(stale_minutes: int = 30):
    """Beat: mark every kind of job failed whose heartbeat stopped, so users see it and can retry."""
    from datetime import timedelta

    from django.apps import apps as django_apps

    from .jobs import Job

    for model in django_apps.get_models():
        if issubclass(model, Job):
            model.objects.fail_stalled(timedelta(minutes=stale_minutes))

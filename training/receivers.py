"""Training listens to features: a new instruct dataset may start a preference build, and the
datasets pages show the preference builds (features/signals.py)."""

from django.conf import settings
from django.dispatch import receiver
from django.template.loader import render_to_string

from features.signals import dataset_page, instruct_dataset_built

from .actions import do_queue_preference_run
from .models import PreferenceRun


@receiver(instruct_dataset_built)
def build_preference_dataset(sender, dataset, **kwargs):
    if settings.TWIN_PREFERENCE_AUTO:
        do_queue_preference_run(dataset)


@receiver(dataset_page)
def preference_builds(sender, request, dataset, **kwargs) -> str:
    """The list page: the latest builds; an instruct dataset's page: its latest build and the button."""
    builds = PreferenceRun.objects.for_user(request.user)
    if dataset is None:
        latest = builds.select_related("instruct_dataset")[:5]
        return render_to_string("training/_preference_runs.html", {"preference_runs": latest}, request)
    if dataset.is_preference:
        return ""
    latest = builds.filter(instruct_dataset=dataset).select_related("dataset_version").first()
    context = {"dataset": dataset, "preference_run": latest}
    return render_to_string("training/_preference_build.html", context, request)

"""The twin's dashboard: one page that shows every pipeline stage for the signed-in user.

It lives in the project package because it composes all apps; the apps themselves
never import each other upstream.
"""

from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect, render
from django.views.decorators.http import require_safe

from accounts.actions import do_ensure_twin
from chat.audience import revised_answers
from chat.models import Draft
from chat.serving import serving_description
from features.models import Chunk, Correction, DatasetVersion, FeatureRun
from ingestion.models import CrawlRun, Document, Source
from training.models import ModelVersion, TrainingRun


@require_safe
def home(request):
    if request.user.is_authenticated:
        return redirect("dashboard")
    return render(request, "home.html")


@login_required
@require_safe
def dashboard(request):
    user = request.user
    crawl_runs = list(CrawlRun.objects.for_user(user).select_related("source")[:5])
    feature_runs = list(FeatureRun.objects.for_user(user)[:3])
    training_runs = list(TrainingRun.objects.for_user(user)[:3])
    context = {
        "twin": do_ensure_twin(user),
        "serving": serving_description(user),
        "source_count": Source.objects.for_user(user).count(),
        "document_count": Document.objects.for_user(user).count(),
        "chunk_count": Chunk.objects.for_user(user).count(),
        "crawl_runs": crawl_runs,
        "feature_runs": feature_runs,
        "training_runs": training_runs,
        "datasets": DatasetVersion.objects.for_user(user).order_by("-created_at", "-pk")[:3],
        "model_versions": ModelVersion.objects.for_user(user)[:5],
        "corrections_waiting": Correction.objects.for_user(user).waiting().count(),
        "corrections_total": Correction.objects.for_user(user).count(),
        "draft_count": Draft.objects.for_user(user).count(),
        "audience_revisions": revised_answers(user).count(),
        "has_production": ModelVersion.objects.for_user(user).production() is not None,
        "any_active": any(job.is_active for job in [*crawl_runs, *feature_runs, *training_runs]),
    }
    template = "dashboard/_pipeline.html" if request.htmx else "dashboard/dashboard.html"
    return render(request, template, context)

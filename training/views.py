from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST, require_safe

from core.decorators import require_form_methods
from features.models import DatasetVersion

from .actions import (
    TrainingRefused,
    do_cancel_training_run,
    do_queue_preference_run,
    do_retry_training_run,
    do_start_refinement,
    do_start_training_run,
)
from .experiments import do_start_experiment
from .forms import ExperimentForm, HyperparametersForm
from .hyperparameters import Hyperparameters
from .models import Experiment, ModelVersion, TrainingRun


def _get_run_for_user(request, run_id) -> TrainingRun:
    return get_object_or_404(TrainingRun.objects.for_user(request.user).select_related("dataset_version"), pk=run_id)


def _get_model_version_for_user(request, model_id) -> ModelVersion:
    return get_object_or_404(ModelVersion.objects.for_user(request.user), pk=model_id)


@login_required
@require_safe
def training_home(request):
    context = {
        "runs": TrainingRun.objects.for_user(request.user).select_related(
            "dataset_version", "base_model", "start_from"
        )[:20],
        "model_versions": ModelVersion.objects.for_user(request.user).select_related("evaluation_run"),
        "latest_dataset": DatasetVersion.objects.for_user(request.user).instruct().current(),
        "experiments": Experiment.objects.for_user(request.user)[:10],
        "experiment_form": ExperimentForm() if request.user.is_staff else None,
    }
    return render(request, "training/training.html", context)


@login_required
@require_POST
def start_run(request):
    """The latest instruct dataset, or the one posted (a preference dataset starts a DPO run)."""
    dataset = None
    if request.POST.get("dataset"):
        dataset = DatasetVersion.objects.for_user(request.user).get_or_404(request.POST["dataset"])
    try:
        run = do_start_training_run(request.user, dataset)
    except TrainingRefused as exc:
        messages.error(request, str(exc))
        return redirect("training")
    messages.success(request, "Training run queued.")
    return redirect("training-run", run_id=run.pk)


@login_required
@require_POST
def refine(request):
    """A DPO refinement on the owner's corrections (dashboard button)."""
    try:
        run = do_start_refinement(request.user)
    except TrainingRefused as exc:
        messages.error(request, str(exc))
        return redirect("dashboard")
    messages.success(request, "Refinement queued: your corrections will teach the twin.")
    return redirect("training-run", run_id=run.pk)


@login_required
@require_POST
def start_experiment(request):
    """Staff sweep hyperparameters on their twin: the runs go one after another."""
    if not request.user.is_staff:
        raise PermissionDenied
    form = ExperimentForm(request.POST)
    if not form.is_valid():
        messages.error(request, "; ".join(f"{k}: {' '.join(v)}" for k, v in form.errors.items()))
        return redirect("training")
    try:
        experiment = do_start_experiment(
            request.user, form.cleaned_data["space"], form.cleaned_data["search"], form.cleaned_data["trials"]
        )
    except TrainingRefused as exc:
        messages.error(request, str(exc))
        return redirect("training")
    messages.success(request, f"Experiment queued: {len(experiment.trials)} runs.")
    return redirect("experiment", experiment_id=experiment.pk)


@login_required
@require_safe
def experiment_detail(request, experiment_id):
    experiment = get_object_or_404(Experiment.objects.for_user(request.user), pk=experiment_id)
    runs = list(experiment.runs.order_by("pk"))
    rows = [(run, experiment.trials[i] if i < len(experiment.trials) else {}) for i, run in enumerate(runs)]
    return render(request, "training/experiment.html", {"experiment": experiment, "runs": runs, "rows": rows})


@login_required
@require_safe
def run_detail(request, run_id):
    run = _get_run_for_user(request, run_id)
    template = "training/_run_status.html" if request.htmx else "training/run_detail.html"
    model_version = ModelVersion.objects.filter(training_run=run).first()
    return render(request, template, {"run": run, "model_version": model_version})


@login_required
@require_form_methods
def tune_run(request, run_id):
    """Staff only: train the run's twin again, on the same dataset, with changed hyperparameters."""
    if not request.user.is_staff:
        raise PermissionDenied
    run = get_object_or_404(TrainingRun.objects.select_related("owner", "dataset_version"), pk=run_id)
    form = HyperparametersForm(
        request.POST or None, initial_hp=Hyperparameters.from_dict(run.hyperparameters), prefix="hp"
    )
    if request.method == "POST" and form.is_valid():
        try:
            new_run = do_start_training_run(run.owner, run.dataset_version, **form.hyperparameters())
        except TrainingRefused as exc:
            messages.error(request, str(exc))
        else:
            messages.success(request, f"Training run {new_run.pk} queued for {run.owner} with these hyperparameters.")
            return redirect("admin:training_trainingrun_change", new_run.pk)
    return render(request, "training/tune_run.html", {"run": run, "form": form})


@login_required
@require_POST
def cancel_run(request, run_id):
    run = _get_run_for_user(request, run_id)
    if do_cancel_training_run(run):
        messages.info(request, "Run cancelled.")
    return redirect("training-run", run_id=run.pk)


@login_required
@require_POST
def retry_run(request, run_id):
    run = _get_run_for_user(request, run_id)
    try:
        do_retry_training_run(run)
        messages.info(request, "Run queued again; it resumes from its last checkpoint.")
    except TrainingRefused as exc:
        messages.error(request, str(exc))
    return redirect("training-run", run_id=run.pk)


@login_required
@require_safe
def model_detail(request, model_id):
    """The evaluation report: gate verdict, metrics per model, side-by-side answers, plots, history."""
    model_version = _get_model_version_for_user(request, model_id)
    versions = list(ModelVersion.objects.for_user(request.user).order_by("version"))

    def points(which, metric):
        return [[v.version, (v.eval_report.get("models", {}).get(which) or {}).get(metric)] for v in versions]

    context = {
        "model_version": model_version,
        "perplexity_points": points("candidate", "perplexity"),
        "delta_points": points("candidate", "delta"),
        "fidelity_points": [[v.version, v.fidelity_score] for v in versions],
    }
    return render(request, "training/model_detail.html", context)


@login_required
@require_POST
def build_preference(request, dataset_id):
    """Build a preference dataset from an instruct dataset (its page shows the build: training/receivers.py)."""
    dataset = get_object_or_404(DatasetVersion.objects.for_user(request.user), pk=dataset_id)
    if dataset.is_preference:
        messages.error(request, "A preference dataset is built from an instruct dataset.")
    else:
        run = do_queue_preference_run(dataset)
        messages.success(request, f"Preference dataset build {run.pk} is {run.get_status_display().lower()}.")
    return redirect("dataset-detail", dataset_id=dataset.pk)

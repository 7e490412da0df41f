from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.shortcuts import get_object_or_404, redirect
from django.template.loader import render_to_string
from django.urls import path
from django.views.decorators.http import require_POST

from core.jobs import JobStatus

from .actions import (
    TrainingRefused,
    checked_hyperparameters,
    do_approve_model_version,
    do_queue_evaluation,
    do_reject_model_version,
    do_rollback,
)
from .export import ExportRefused, push_to_hub
from .hyperparameters import Hyperparameters
from .models import BaseModel, EvaluationRun, Experiment, ModelVersion, ModelVersionEvent, PreferenceRun, TrainingRun


@admin.register(BaseModel)
class BaseModelAdmin(admin.ModelAdmin):
    list_display = ("name", "identifier", "created_at")


@admin.register(EvaluationRun)
class EvaluationRunAdmin(admin.ModelAdmin):
    """The gate's jobs: state, attempts, heartbeat. Queue one again from its model version's page."""

    list_display = ("id", "owner", "model_version", "status", "attempts", "heartbeat_at", "created_at")
    list_filter = ("status",)
    search_fields = ("owner__username",)
    readonly_fields = ("owner", "model_version")

    def has_add_permission(self, request):
        return False  # queued when a model version is registered, or by "Run the gate again"


@admin.register(PreferenceRun)
class PreferenceRunAdmin(admin.ModelAdmin):
    list_display = ("id", "owner", "status", "progress", "instruct_dataset", "pairs_generated", "created_at")
    list_filter = ("status",)
    search_fields = ("owner__username",)
    readonly_fields = ("owner", "instruct_dataset", "dataset_version", "generator")

    def has_add_permission(self, request):
        return False  # builds start from an instruct dataset's page or the API


class TrainingRunForm(forms.ModelForm):
    """Hyperparameters are editable while a run is queued or failed (a retry resumes with them)."""

    class Meta:
        model = TrainingRun
        fields = ["hyperparameters"]

    def clean_hyperparameters(self):
        value = self.cleaned_data["hyperparameters"]
        if not isinstance(value, dict):
            raise forms.ValidationError("Hyperparameters are a JSON object.")
        if self.instance.pk and self.instance.status not in (JobStatus.QUEUED, JobStatus.FAILED):
            if value != self.instance.hyperparameters:
                raise forms.ValidationError(f"Run {self.instance.pk} is {self.instance.status}; it cannot change now.")
            return value
        try:
            return checked_hyperparameters(Hyperparameters.from_dict(self.instance.hyperparameters), value).as_dict()
        except TrainingRefused as exc:
            raise forms.ValidationError(str(exc)) from None


@admin.register(TrainingRun)
class TrainingRunAdmin(admin.ModelAdmin):
    form = TrainingRunForm
    list_display = ("id", "owner", "status", "progress", "current_step", "total_steps", "device", "created_at")
    list_filter = ("status",)
    search_fields = ("owner__username",)
    readonly_fields = ("owner", "status", "dataset_version", "loss_history", "val_history", "metrics")

    def has_add_permission(self, request):
        return False  # runs start from the twin's page, the API, or "Train again" (staff)

    def save_model(self, request, obj, form, change):
        obj.total_steps = Hyperparameters.from_dict(obj.hyperparameters).max_steps
        obj.save(update_fields=["hyperparameters", "total_steps"])


class ExperimentRunInline(admin.TabularInline):
    model = TrainingRun
    fields = ("id", "status", "hyperparameters", "current_step", "total_steps", "last_val_loss")
    readonly_fields = fields
    extra = 0
    can_delete = False
    show_change_link = True

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Experiment)
class ExperimentAdmin(admin.ModelAdmin):
    """A sweep and its runs, read-only: staff start one from their twin's training page or the API."""

    list_display = ("__str__", "owner", "search", "best_run", "message", "created_at", "finished_at")
    list_filter = ("search",)
    search_fields = ("owner__username",)
    readonly_fields = ("owner", "dataset_version", "search", "space", "trials", "best_run", "message", "finished_at")
    inlines = [ExperimentRunInline]

    def has_add_permission(self, request):
        return False


class ModelVersionEventInline(admin.TabularInline):
    model = ModelVersionEvent
    fields = ("created_at", "from_status", "to_status", "actor", "reason")
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(ModelVersion)
class ModelVersionAdmin(admin.ModelAdmin):
    """Staff review: read the evaluation report, then approve (a passing candidate, or with a written
    override reason), reject, roll back, evaluate again, or push to the Hub."""

    list_display = ("__str__", "owner", "status", "verdict", "fidelity_score", "adapter_loss", "created_at")
    list_filter = ("status", "verdict")
    search_fields = ("owner__username",)
    actions = ["approve", "reject", "evaluate_again", "push_to_hub"]
    inlines = [ModelVersionEventInline]
    readonly_fields = (
        "owner",
        "training_run",
        "base_model",
        "dataset_version",
        "version",
        "adapter_path",
        "sha256",
        "hyperparameters",
        "evaluation",
        "status",
        "evaluation_status",
        "evaluation_run",
        "verdict",
        "fidelity_score",
        "grounding_score",
        "override_reason",
        "reviewed_by",
        "reviewed_at",
        "created_at",
    )
    exclude = ("eval_report",)

    def has_add_permission(self, request):
        return False  # versions come from training runs only

    def get_urls(self):
        review = self.admin_site.admin_view(require_POST(self.review_view))
        return [path("<int:object_id>/review/", review, name="training_modelversion_review"), *super().get_urls()]

    def review_view(self, request, object_id):
        """The Approve / Reject / Rollback buttons under the evaluation report."""
        if not self.has_change_permission(request):
            raise PermissionDenied
        model_version = get_object_or_404(ModelVersion, pk=object_id)
        choice = request.POST.get("_review")
        try:
            if choice == "reject":
                do_reject_model_version(model_version, request.user)
            elif choice == "rollback":
                restored = do_rollback(model_version.owner, request.user)
                self.message_user(request, f"Rolled back: v{restored.version} serves again.", messages.SUCCESS)
                return redirect("admin:training_modelversion_change", restored.pk)
            else:
                do_approve_model_version(model_version, request.user, request.POST.get("override_reason", ""))
            self.message_user(request, f"{model_version}: done.", messages.SUCCESS)
        except TrainingRefused as exc:
            self.message_user(request, str(exc), messages.ERROR)
        return redirect("admin:training_modelversion_change", object_id)

    @admin.display(description="Evaluation report")
    def evaluation(self, obj):
        return render_to_string("training/_eval_report.html", {"model_version": obj})

    def _each(self, request, queryset, action, verb):
        done = 0
        for model_version in queryset:
            try:
                action(model_version)
                done += 1
            except (TrainingRefused, ExportRefused) as exc:
                self.message_user(request, f"{model_version}: {exc}", messages.ERROR)
        if done:
            self.message_user(request, f"{verb} {done} model version(s).", messages.SUCCESS)

    @admin.action(
        description="Approve (passing candidates only; override from the change page)", permissions=["change"]
    )
    def approve(self, request, queryset):
        self._each(request, queryset, lambda mv: do_approve_model_version(mv, request.user), "Approved")

    @admin.action(description="Reject", permissions=["change"])
    def reject(self, request, queryset):
        self._each(request, queryset, lambda mv: do_reject_model_version(mv, request.user), "Rejected")

    @admin.action(description="Run the evaluation gate again", permissions=["change"])
    def evaluate_again(self, request, queryset):
        self._each(request, queryset, do_queue_evaluation, "Queued the evaluation of")

    @admin.action(description="Push to the private Hugging Face Hub repository", permissions=["change"])
    def push_to_hub(self, request, queryset):
        self._each(request, queryset, push_to_hub, "Pushed")

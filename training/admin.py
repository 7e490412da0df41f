from django.contrib import admin, messages
from django.template.loader import render_to_string

from .actions import TrainingRefused, do_approve_model_version, do_reject_model_version
from .models import BaseModel, ModelVersion, TrainingRun


@admin.register(BaseModel)
class BaseModelAdmin(admin.ModelAdmin):
    list_display = ("name", "identifier", "created_at")


@admin.register(TrainingRun)
class TrainingRunAdmin(admin.ModelAdmin):
    list_display = ("id", "owner", "status", "progress", "current_step", "total_steps", "device", "created_at")
    list_filter = ("status",)
    search_fields = ("owner__username",)
    readonly_fields = ("loss_history", "metrics", "hyperparameters")


@admin.register(ModelVersion)
class ModelVersionAdmin(admin.ModelAdmin):
    """Staff review: read the evaluation report, then approve (promote to production) or reject."""

    list_display = ("__str__", "owner", "status", "base_loss", "adapter_loss", "created_at", "reviewed_by")
    list_filter = ("status",)
    search_fields = ("owner__username",)
    actions = ["approve", "reject"]
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
        "reviewed_by",
        "reviewed_at",
        "created_at",
    )
    exclude = ("eval_report",)

    def has_add_permission(self, request):
        return False  # versions come from training runs only

    @admin.display(description="Evaluation report")
    def evaluation(self, obj):
        return render_to_string("training/_eval_report.html", {"model_version": obj})

    def _review(self, request, queryset, action, verb):
        done = 0
        for model_version in queryset:
            try:
                action(model_version, request.user)
                done += 1
            except TrainingRefused as exc:
                self.message_user(request, f"{model_version}: {exc}", messages.ERROR)
        if done:
            self.message_user(request, f"{verb} {done} model version(s).", messages.SUCCESS)

    @admin.action(description="Approve: make production for its twin", permissions=["change"])
    def approve(self, request, queryset):
        self._review(request, queryset, do_approve_model_version, "Approved")

    @admin.action(description="Reject", permissions=["change"])
    def reject(self, request, queryset):
        self._review(request, queryset, do_reject_model_version, "Rejected")

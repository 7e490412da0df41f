from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.shortcuts import get_object_or_404, redirect
from django.template.loader import render_to_string
from django.urls import path
from django.views.decorators.http import require_POST

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

    def get_urls(self):
        review = self.admin_site.admin_view(require_POST(self.review_view))
        return [path("<int:object_id>/review/", review, name="training_modelversion_review"), *super().get_urls()]

    def review_view(self, request, object_id):
        """The Approve / Reject buttons under the evaluation report."""
        if not self.has_change_permission(request):
            raise PermissionDenied
        queryset = ModelVersion.objects.filter(pk=get_object_or_404(ModelVersion, pk=object_id).pk)
        if request.POST.get("_review") == "reject":
            self.reject(request, queryset)
        else:
            self.approve(request, queryset)
        return redirect("admin:training_modelversion_change", object_id)

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

from drf_spectacular.utils import extend_schema
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.generics import get_object_or_404  # a malformed id is a 404, not a 500
from rest_framework.permissions import IsAdminUser
from rest_framework.response import Response

from accounts.permissions import TokenScope, model_permission
from features.models import DatasetVersion

from .actions import TrainingRefused, do_approve_model_version, do_reject_model_version, do_start_training_run
from .models import ModelVersion, TrainingRun


class TrainingRunSerializer(serializers.ModelSerializer):
    base_model = serializers.CharField(source="base_model.name", read_only=True)

    class Meta:
        model = TrainingRun
        fields = [
            "id",
            "status",
            "progress",
            "message",
            "error",
            "dataset_version",
            "base_model",
            "hyperparameters",
            "device",
            "current_step",
            "total_steps",
            "loss_history",
            "metrics",
            "created_at",
            "started_at",
            "finished_at",
        ]
        read_only_fields = fields


class TrainingRunCreateSerializer(serializers.Serializer):
    dataset_version = serializers.IntegerField(required=False, help_text="Defaults to your latest dataset.")


class ModelVersionSerializer(serializers.ModelSerializer):
    base_model = serializers.CharField(source="base_model.name", read_only=True)

    class Meta:
        model = ModelVersion
        fields = [
            "id",
            "version",
            "status",
            "base_model",
            "dataset_version",
            "training_run",
            "sha256",
            "hyperparameters",
            "eval_report",
            "reviewed_at",
            "created_at",
        ]


class TrainingRunViewSet(mixins.CreateModelMixin, viewsets.ReadOnlyModelViewSet):
    """Your LoRA training runs; POST starts one on your latest (or a given) dataset."""

    serializer_class = TrainingRunSerializer

    def get_queryset(self):
        return TrainingRun.objects.for_user(self.request.user).select_related("base_model")

    @extend_schema(request=TrainingRunCreateSerializer, responses={201: TrainingRunSerializer})
    def create(self, request):
        body = TrainingRunCreateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        dataset = None
        if "dataset_version" in body.validated_data:
            dataset = get_object_or_404(
                DatasetVersion.objects.for_user(request.user), pk=body.validated_data["dataset_version"]
            )
        try:
            run = do_start_training_run(request.user, dataset)
        except TrainingRefused as exc:
            return Response({"detail": str(exc)}, status=status.HTTP_400_BAD_REQUEST)
        return Response(TrainingRunSerializer(run).data, status=status.HTTP_201_CREATED)


# The admin's Approve / Reject need the same permission; a scoped token needs "review".
REVIEW_PERMISSIONS = [IsAdminUser, model_permission("training.change_modelversion"), TokenScope]


class ModelVersionViewSet(viewsets.ReadOnlyModelViewSet):
    """Your model versions. Staff may approve (promote to production) or reject any version."""

    serializer_class = ModelVersionSerializer

    def get_queryset(self):
        if self.action in ("approve", "reject"):
            return ModelVersion.objects.all()  # staff-only actions below
        return ModelVersion.objects.for_user(self.request.user).select_related("base_model")

    def _review(self, request, pk, review):
        model_version = get_object_or_404(self.get_queryset(), pk=pk)
        try:
            review(model_version, request.user)
        except TrainingRefused as exc:
            return Response({"detail": str(exc)}, status=status.HTTP_400_BAD_REQUEST)
        return Response(ModelVersionSerializer(model_version).data)

    @extend_schema(request=None, responses=ModelVersionSerializer)
    @action(detail=True, methods=["post"], permission_classes=REVIEW_PERMISSIONS)
    def approve(self, request, pk=None):
        return self._review(request, pk, do_approve_model_version)

    @extend_schema(request=None, responses=ModelVersionSerializer)
    @action(detail=True, methods=["post"], permission_classes=REVIEW_PERMISSIONS)
    def reject(self, request, pk=None):
        return self._review(request, pk, do_reject_model_version)

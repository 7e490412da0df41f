from django.db.models import Prefetch
from django.http import HttpResponse
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action, api_view
from rest_framework.exceptions import NotFound, PermissionDenied, ValidationError
from rest_framework.generics import get_object_or_404  # a malformed id is a 404, not a 500
from rest_framework.permissions import IsAdminUser
from rest_framework.response import Response

from accounts.permissions import TokenScope, model_permission
from features.models import DatasetKind, DatasetVersion

from .actions import (
    TrainingRefused,
    do_approve_model_version,
    do_queue_preference_run,
    do_reject_model_version,
    do_rollback,
    do_start_refinement,
    do_start_training_run,
    do_update_hyperparameters,
)
from .experiments import do_start_experiment
from .export import ExportRefused, export_zip, folder_name
from .models import Experiment, ModelVersion, ModelVersionEvent, PreferenceRun, TrainingRun


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
            "val_history",
            "metrics",
            "created_at",
            "started_at",
            "finished_at",
        ]
        read_only_fields = fields


class TrainingRunCreateSerializer(serializers.Serializer):
    dataset_version = serializers.IntegerField(required=False, help_text="Defaults to your latest dataset.")
    hyperparameters = serializers.DictField(
        required=False,
        help_text="Staff only: overrides of the base model's defaults (see training/hyperparameters.py).",
    )


class HyperparametersSerializer(serializers.Serializer):
    hyperparameters = serializers.DictField(help_text="The fields to change; the others keep their values.")


class ModelVersionEventSerializer(serializers.ModelSerializer):
    actor = serializers.CharField(source="actor.username", read_only=True, default=None)

    class Meta:
        model = ModelVersionEvent
        fields = ["from_status", "to_status", "actor", "reason", "created_at"]


class ModelVersionSerializer(serializers.ModelSerializer):
    base_model = serializers.CharField(source="base_model.name", read_only=True)
    evaluation_status = serializers.ChoiceField(choices=ModelVersion.Evaluation.choices, read_only=True)
    events = ModelVersionEventSerializer(many=True, read_only=True)

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
            "evaluation_status",
            "verdict",
            "fidelity_score",
            "grounding_score",
            "override_reason",
            "eval_report",
            "events",
            "reviewed_at",
            "created_at",
        ]


class ReviewSerializer(serializers.Serializer):
    override_reason = serializers.CharField(
        required=False, allow_blank=True, help_text="Needed to approve a candidate the gate did not pass; kept."
    )
    reason = serializers.CharField(required=False, allow_blank=True, help_text="Why (kept in the history).")


def _refused(exc) -> Response:
    return Response({"detail": str(exc)}, status=status.HTTP_400_BAD_REQUEST)


class TrainingRunViewSet(mixins.CreateModelMixin, viewsets.ReadOnlyModelViewSet):
    """Your LoRA training runs; POST starts one on your latest (or a given) dataset.
    Staff may set hyperparameters when starting a run and change those of a queued or failed run."""

    serializer_class = TrainingRunSerializer

    def get_queryset(self):
        if self.action == "hyperparameters":
            return TrainingRun.objects.all()  # staff-only action below
        return TrainingRun.objects.for_user(self.request.user).select_related("base_model")

    @extend_schema(request=TrainingRunCreateSerializer, responses={201: TrainingRunSerializer})
    def create(self, request):
        body = TrainingRunCreateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        overrides = body.validated_data.get("hyperparameters") or {}
        if overrides and not request.user.is_staff:
            raise PermissionDenied("Only staff can set hyperparameters.")
        dataset = None
        if "dataset_version" in body.validated_data:
            dataset = get_object_or_404(
                DatasetVersion.objects.for_user(request.user), pk=body.validated_data["dataset_version"]
            )
        try:
            run = do_start_training_run(request.user, dataset, **overrides)
        except TrainingRefused as exc:
            return _refused(exc)
        return Response(TrainingRunSerializer(run).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=None, responses={201: TrainingRunSerializer})
    @action(detail=False, methods=["post"])
    def refine(self, request):
        """Start a DPO refinement on your corrections (edited drafts, revised answers)."""
        try:
            run = do_start_refinement(request.user)
        except TrainingRefused as exc:
            return _refused(exc)
        return Response(TrainingRunSerializer(run).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=HyperparametersSerializer, responses=TrainingRunSerializer)
    # TokenScope again: an action's own permission classes replace the defaults (a read token must not reach it).
    @action(detail=True, methods=["patch"], permission_classes=[IsAdminUser, TokenScope])
    def hyperparameters(self, request, pk=None):
        run = get_object_or_404(self.get_queryset(), pk=pk)
        body = HyperparametersSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        try:
            do_update_hyperparameters(run, body.validated_data["hyperparameters"], request.user)
        except TrainingRefused as exc:
            return _refused(exc)
        return Response(TrainingRunSerializer(run).data)


class ExperimentRunSerializer(serializers.ModelSerializer):
    val_loss = serializers.FloatField(source="last_val_loss", read_only=True, allow_null=True)

    class Meta:
        model = TrainingRun
        fields = ["id", "status", "hyperparameters", "val_loss", "val_history", "loss_history"]
        read_only_fields = fields


class ExperimentSerializer(serializers.ModelSerializer):
    runs = ExperimentRunSerializer(many=True, read_only=True)

    class Meta:
        model = Experiment
        fields = ["id", "search", "space", "trials", "dataset_version", "best_run", "message", "runs"]
        fields += ["created_at", "finished_at"]
        read_only_fields = fields


class ExperimentCreateSerializer(serializers.Serializer):
    space = serializers.DictField(
        child=serializers.ListField(allow_empty=False),
        help_text='The values to try for each hyperparameter, e.g. {"learning_rate": [1e-4, 3e-4], "lora_r": [8, 16]}.',
    )
    search = serializers.ChoiceField(choices=Experiment.Search.choices, default=Experiment.Search.GRID)
    trials = serializers.IntegerField(required=False, min_value=2, help_text="Random search: how many combinations.")


class ExperimentViewSet(mixins.CreateModelMixin, viewsets.ReadOnlyModelViewSet):
    """Your sweeps, each with its runs' hyperparameters and held-out losses. Staff start one on their
    own twin (POST): the runs go one after another, and the lowest held-out loss becomes the candidate."""

    serializer_class = ExperimentSerializer

    def get_queryset(self):
        runs_in_order = Prefetch("runs", queryset=TrainingRun.objects.order_by("pk"))  # the order of `trials`
        return Experiment.objects.for_user(self.request.user).prefetch_related(runs_in_order)

    @extend_schema(request=ExperimentCreateSerializer, responses={201: ExperimentSerializer})
    def create(self, request):
        if not request.user.is_staff:
            raise PermissionDenied("Only staff can start an experiment.")
        body = ExperimentCreateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        try:
            experiment = do_start_experiment(request.user, **body.validated_data)
        except TrainingRefused as exc:
            return _refused(exc)
        experiment = self.get_queryset().get(pk=experiment.pk)  # its runs in order
        return Response(ExperimentSerializer(experiment).data, status=status.HTTP_201_CREATED)


# The admin's Approve / Reject need the same permission; a scoped token needs "review".
REVIEW_PERMISSIONS = [IsAdminUser, model_permission("training.change_modelversion"), TokenScope]


class ModelVersionViewSet(viewsets.ReadOnlyModelViewSet):
    """Your model versions with their evaluation report and history. Staff approve (only a candidate
    that passed the gate, or with a written override reason), reject, or roll a twin back."""

    serializer_class = ModelVersionSerializer

    def get_queryset(self):
        if self.action in ("approve", "reject", "rollback") or (self.action == "export" and self.request.user.is_staff):
            return ModelVersion.objects.select_related("base_model", "evaluation_run")  # staff only
        return ModelVersion.objects.for_user(self.request.user).select_related("base_model", "evaluation_run")

    def _review(self, request, pk, review):
        model_version = get_object_or_404(self.get_queryset(), pk=pk)
        body = ReviewSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        try:
            model_version = review(model_version, request.user, body.validated_data)
        except TrainingRefused as exc:
            return _refused(exc)
        return Response(ModelVersionSerializer(model_version).data)

    @extend_schema(request=ReviewSerializer, responses=ModelVersionSerializer)
    @action(detail=True, methods=["post"], permission_classes=REVIEW_PERMISSIONS)
    def approve(self, request, pk=None):
        return self._review(
            request, pk, lambda mv, user, body: do_approve_model_version(mv, user, body.get("override_reason", ""))
        )

    @extend_schema(request=ReviewSerializer, responses=ModelVersionSerializer)
    @action(detail=True, methods=["post"], permission_classes=REVIEW_PERMISSIONS)
    def reject(self, request, pk=None):
        return self._review(
            request, pk, lambda mv, user, body: do_reject_model_version(mv, user, body.get("reason", ""))
        )

    @extend_schema(request=ReviewSerializer, responses=ModelVersionSerializer)
    @action(detail=True, methods=["post"], permission_classes=REVIEW_PERMISSIONS)
    def rollback(self, request, pk=None):
        """Roll this (production) version's twin back to the version that served before it."""

        def roll_back(model_version, user, body):
            if model_version.status != ModelVersion.Status.PRODUCTION:
                raise TrainingRefused(f"Model v{model_version.version} is not serving; roll back from the one that is.")
            return do_rollback(model_version.owner, user, body.get("reason", ""))

        return self._review(request, pk, roll_back)

    @extend_schema(responses={(200, "application/zip"): OpenApiResponse(description="PEFT adapter directory, zipped")})
    @action(detail=True, methods=["get"])
    def export(self, request, pk=None):
        model_version = get_object_or_404(self.get_queryset(), pk=pk)
        try:
            body = export_zip(model_version)
        except ExportRefused as exc:
            return Response({"detail": str(exc)}, status=status.HTTP_409_CONFLICT)
        response = HttpResponse(body, content_type="application/zip")
        response["Content-Disposition"] = f'attachment; filename="{folder_name(model_version)}.zip"'
        return response


class PreferenceRunSerializer(serializers.ModelSerializer):
    class Meta:
        model = PreferenceRun
        fields = [
            "id",
            "instruct_dataset",
            "status",
            "progress",
            "message",
            "error",
            "generator",
            "pairs_generated",
            "dataset_version",
            "created_at",
            "finished_at",
        ]


@extend_schema(request=None, responses={200: PreferenceRunSerializer, 202: PreferenceRunSerializer})
@api_view(["GET", "HEAD", "POST"])  # HEAD as GET, like every other read of the API
def dataset_preference(request, id):  # `id`, as the router names the datasets' own paths
    """POST: build a preference dataset from this instruct dataset (queue "gpu"; a build already
    queued or running is returned instead). GET: the latest build from it."""
    dataset = get_object_or_404(DatasetVersion.objects.for_user(request.user), pk=id)
    if dataset.kind != DatasetKind.INSTRUCT:
        raise ValidationError({"detail": "A preference dataset is built from an instruct dataset."})
    if request.method == "POST":
        run = do_queue_preference_run(dataset)
        run.refresh_from_db()  # the task may have started already (an eager or a fast worker)
        return Response(PreferenceRunSerializer(run).data, status=status.HTTP_202_ACCEPTED)
    run = PreferenceRun.objects.for_user(request.user).filter(instruct_dataset=dataset).first()
    if run is None:
        raise NotFound("No preference dataset was built from this dataset yet.")
    return Response(PreferenceRunSerializer(run).data)

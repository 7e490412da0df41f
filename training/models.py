"""Base models, training runs and the model registry (adapters awaiting approval)."""

from django.conf import settings
from django.core.exceptions import ObjectDoesNotExist
from django.db import models

from core.jobs import ACTIVE_STATUSES, Job, JobStatus
from core.ownership import OwnedQuerySet
from features.models import DatasetVersion

from .base_models import display_name


class BaseModel(models.Model):
    """A base LLM adapters are trained on; `identifier` is what TWIN_BASE_MODEL names."""

    identifier = models.CharField(max_length=500, unique=True)
    name = models.CharField(max_length=200)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self):
        return self.name

    @classmethod
    def default(cls) -> "BaseModel":
        identifier = settings.TWIN_BASE_MODEL
        base, _ = cls.objects.get_or_create(identifier=identifier, defaults={"name": display_name(identifier)})
        return base


class Experiment(models.Model):
    """A sweep: several runs on one dataset, each with one combination of the swept
    hyperparameters (grid or random), run one after another; the run with the lowest
    validation loss becomes the candidate (see training/experiments.py)."""

    class Search(models.TextChoices):
        GRID = "grid", "Grid (every combination)"
        RANDOM = "random", "Random (a sample of the combinations)"

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="experiments")
    dataset_version = models.ForeignKey(DatasetVersion, on_delete=models.RESTRICT, related_name="experiments")
    search = models.CharField(max_length=8, choices=Search.choices, default=Search.GRID)
    space = models.JSONField(default=dict, help_text="{hyperparameter: [values, ...]} as staff entered it.")
    trials = models.JSONField(default=list, help_text="[{hyperparameter: value}, ...]: one entry per run, in order.")
    best_run = models.ForeignKey("TrainingRun", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    message = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    objects = OwnedQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]

    def __str__(self):
        return f"Experiment {self.pk} ({len(self.trials)} runs)"


class PreferenceRun(Job):
    """Build a preference dataset from an instruct version: a model answers each prompt
    (queue "gpu": the base model generates), the author's passage is the chosen answer
    (features/actions.py writes the dataset)."""

    task_name = "training.tasks.build_preference_dataset"

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="preference_runs")
    instruct_dataset = models.ForeignKey(DatasetVersion, on_delete=models.CASCADE, related_name="preference_runs")
    generator = models.CharField(max_length=200, blank=True, help_text="The model that wrote the rejected answers.")
    pairs_generated = models.PositiveIntegerField(default=0, help_text="New answers (earlier ones are reused).")
    dataset_version = models.ForeignKey(
        DatasetVersion, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta(Job.Meta):
        db_table = "features_preferencerun"  # moved here from features with its rows (training 0008)
        constraints = [  # one build at a time per twin: a second request joins the active one
            models.UniqueConstraint(
                fields=["owner"], condition=models.Q(status__in=ACTIVE_STATUSES), name="one_active_preference_run"
            )
        ]

    def __str__(self):
        return f"Preference run {self.pk} ({self.status})"


class TrainingRun(Job):
    task_name = "training.tasks.train_model"

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="training_runs")
    dataset_version = models.ForeignKey(DatasetVersion, on_delete=models.RESTRICT, related_name="training_runs")
    base_model = models.ForeignKey(BaseModel, on_delete=models.PROTECT, related_name="training_runs")
    hyperparameters = models.JSONField(default=dict)
    start_from = models.ForeignKey(
        "ModelVersion",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        help_text="A preference (DPO) run refines this adapter, its frozen reference; empty for LoRA from the base.",
    )
    experiment = models.ForeignKey(Experiment, null=True, blank=True, on_delete=models.SET_NULL, related_name="runs")
    device = models.CharField(max_length=32, blank=True)
    current_step = models.PositiveIntegerField(default=0)
    total_steps = models.PositiveIntegerField(default=0)
    loss_history = models.JSONField(default=list, help_text="[[step, training loss], ...]")
    val_history = models.JSONField(
        default=list, help_text="[[step, loss on held-out documents], ...]; step 0 is the base model."
    )
    metrics = models.JSONField(default=dict, help_text="Throughput and timings.")

    class Meta(Job.Meta):
        constraints = [
            # The database, not only the start action, keeps one run per twin training at a time.
            models.UniqueConstraint(
                fields=["owner"],
                condition=models.Q(status__in=ACTIVE_STATUSES),
                name="one_active_training_run_per_owner",
            )
        ]

    def __str__(self):
        return f"Training run {self.pk} ({self.status})"

    @property
    def run_dir(self):
        return settings.TWIN_DATA_DIR / "runs" / str(self.owner_id) / str(self.pk)

    @property
    def last_loss(self) -> float | None:
        return self.loss_history[-1][1] if self.loss_history else None

    @property
    def last_val_loss(self) -> float | None:
        return self.val_history[-1][1] if self.val_history else None


class ModelVersionQuerySet(OwnedQuerySet):
    def production(self) -> "ModelVersion | None":
        """The version that serves, or None; chain it on for_user(): `.for_user(user).production()`."""
        return self.filter(status=ModelVersion.Status.PRODUCTION).select_related("base_model").first()

    def awaiting_review(self):
        return self.filter(status=ModelVersion.Status.CANDIDATE)


class ModelVersion(models.Model):
    """A trained adapter. It serves only after a staff member approves it, and staff may
    approve it only when the evaluation gate passed it (or with a written override reason)."""

    class Status(models.TextChoices):
        CANDIDATE = "candidate", "Candidate (awaiting review)"
        PRODUCTION = "production", "Production"
        APPROVED = "approved", "Approved (kept for rollback)"
        REJECTED = "rejected", "Rejected"

    class Evaluation(models.TextChoices):
        """What pages and the API say of the gate; its job (EvaluationRun) holds the state."""

        PENDING = "pending", "Evaluation queued"
        RUNNING = "running", "Evaluating"
        DONE = "done", "Evaluated"
        FAILED = "failed", "Evaluation failed"

    EVALUATION_OF_JOB = {
        JobStatus.QUEUED: Evaluation.PENDING,
        JobStatus.RUNNING: Evaluation.RUNNING,
        JobStatus.SUCCEEDED: Evaluation.DONE,
        JobStatus.FAILED: Evaluation.FAILED,
        JobStatus.CANCELLED: Evaluation.FAILED,
    }

    class Verdict(models.TextChoices):
        NONE = "", "No verdict yet"
        PASSED = "passed", "Passed the gate"
        FAILED = "failed", "Failed the gate"

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="model_versions")
    training_run = models.OneToOneField(TrainingRun, on_delete=models.RESTRICT, related_name="model_version")
    base_model = models.ForeignKey(BaseModel, on_delete=models.PROTECT, related_name="model_versions")
    dataset_version = models.ForeignKey(DatasetVersion, on_delete=models.RESTRICT, related_name="model_versions")
    version = models.PositiveIntegerField()
    adapter_path = models.CharField(max_length=500, help_text="Adapter directory under TWIN_DATA_DIR.")
    sha256 = models.CharField(max_length=64)
    adapter_pruned_at = models.DateTimeField(
        null=True, blank=True, help_text="When retention deleted the files of this rejected adapter."
    )
    hyperparameters = models.JSONField(default=dict)
    eval_report = models.JSONField(default=dict, help_text="The evaluation gate's report (see training.evaluation).")
    verdict = models.CharField(max_length=16, choices=Verdict.choices, blank=True, default=Verdict.NONE)
    fidelity_score = models.FloatField(
        null=True, blank=True, help_text="How much closer to the author than the base model, in percent (0: same)."
    )
    grounding_score = models.FloatField(
        null=True,
        blank=True,
        help_text="The gate's grounding check of the candidate's answers to the twin's held-out questions "
        "(0-1: the share of answer words the notes support; see training/grounded_eval.py).",
    )
    override_reason = models.TextField(blank=True, help_text="Why staff approved a candidate the gate did not pass.")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.CANDIDATE, db_index=True)
    reviewed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    reviewed_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    objects = ModelVersionQuerySet.as_manager()

    class Meta:
        ordering = ["-version"]
        constraints = [
            models.UniqueConstraint(fields=["owner", "version"], name="unique_model_version"),
            models.UniqueConstraint(
                fields=["owner"], condition=models.Q(status="production"), name="one_production_model_per_owner"
            ),
        ]

    def __str__(self):
        return f"{self.owner} model v{self.version} ({self.get_status_display()})"

    @property
    def adapter_dir(self):
        return settings.TWIN_DATA_DIR / self.adapter_path

    def _model_metric(self, which: str, metric: str):
        return (self.eval_report.get("models", {}).get(which) or {}).get(metric)

    @property
    def base_loss(self):
        return self._model_metric("base", "loss")

    @property
    def adapter_loss(self):
        return self._model_metric("candidate", "loss")

    @property
    def passed_gate(self) -> bool:
        return self.verdict == self.Verdict.PASSED

    def _evaluation_run(self) -> "EvaluationRun | None":
        try:
            return self.evaluation_run
        except ObjectDoesNotExist:
            return None

    @property
    def evaluation_status(self) -> str:
        """The gate's state in ModelVersion.Evaluation's words; pending until it is first queued
        (the losing runs of an experiment stay so: they are never evaluated)."""
        evaluation = self._evaluation_run()
        return self.Evaluation.PENDING if evaluation is None else self.EVALUATION_OF_JOB[evaluation.status]

    def get_evaluation_status_display(self) -> str:
        return self.Evaluation(self.evaluation_status).label

    @property
    def evaluation_error(self) -> str:
        evaluation = self._evaluation_run()
        return evaluation.error if evaluation is not None else ""


class EvaluationRun(Job):
    """The evaluation gate on one model version (queue "default", training/evaluation.py): a job
    like the others, so a redelivered task cannot evaluate twice at once and beat resumes one whose
    worker died. One per version: "Run the gate again" queues the same row again."""

    task_name = "training.tasks.run_evaluation"

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="evaluation_runs")
    model_version = models.OneToOneField(ModelVersion, on_delete=models.CASCADE, related_name="evaluation_run")

    class Meta(Job.Meta):
        pass

    def __str__(self):
        return f"Evaluation {self.pk} of model version {self.model_version_id} ({self.status})"


class ModelVersionEvent(models.Model):
    """One status change of a model version: who, when, why. Never edited."""

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    model_version = models.ForeignKey(ModelVersion, on_delete=models.CASCADE, related_name="events")
    from_status = models.CharField(max_length=16, blank=True)
    to_status = models.CharField(max_length=16)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    reason = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    objects = OwnedQuerySet.as_manager()

    class Meta:
        ordering = ["created_at", "pk"]

    def __str__(self):
        return f"v{self.model_version.version}: {self.from_status or 'new'} -> {self.to_status}"

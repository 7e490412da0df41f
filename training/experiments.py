"""Sweeps: one experiment, several training runs over chosen hyperparameters.

The runs go one after another, not side by side: a twin trains one run at a time (the
database enforces it), and on a small CPU worker parallel runs would only slow each
other. Each run registers its adapter as usual; when the last one ends, the run with the
lowest validation loss (held-out documents, the same measure for every run) stays the
candidate and goes to the evaluation gate, and the others' versions are rejected (their
files are then pruned by retention). A failed run is skipped; a cancelled one ends the
sweep with the runs that finished.
"""

import itertools
import json
import random

from django.db import transaction
from django.utils import timezone

from core.jobs import JobStatus
from features.models import DatasetVersion

from .actions import (
    TrainingRefused,
    _record,
    checked_hyperparameters,
    default_hyperparameters,
    do_queue_evaluation,
    do_start_training_run,
)
from .models import Experiment, ModelVersion

MAX_TRIALS = 8  # a CPU run takes minutes: a larger sweep belongs on a GPU queue with a budget


def trial_overrides(space: dict, search: str, trials: int | None = None, seed: int = 0) -> list[dict]:
    """Every combination of the space (grid), or `trials` distinct ones drawn with `seed` (random)."""
    names = sorted(space)
    combinations = [dict(zip(names, values, strict=True)) for values in itertools.product(*(space[n] for n in names))]
    if search == Experiment.Search.RANDOM:
        return random.Random(seed).sample(combinations, min(trials or MAX_TRIALS, len(combinations)))
    return combinations


def checked_space(space) -> dict:
    """The space as {name: [distinct values]}, or TrainingRefused saying what is wrong."""
    if not isinstance(space, dict) or not space:
        raise TrainingRefused("Choose at least one hyperparameter to sweep, with its values.")
    checked = {}
    for name, values in space.items():
        if not isinstance(values, list) or not values:
            raise TrainingRefused(f"Give {name} a list of values to try.")
        # Distinct by value, whatever its type: a list (target_modules) or a dict is not hashable.
        distinct = {}
        for value in values:
            distinct.setdefault(json.dumps(value, sort_keys=True, default=str), value)
        checked[name] = list(distinct.values())
    return checked


def do_start_experiment(owner, space, search: str = "grid", trials: int | None = None, dataset=None) -> Experiment:
    """Check every combination first (nothing starts if one is invalid), then queue the first run."""
    if search not in Experiment.Search.values:
        raise TrainingRefused(f"Search must be one of: {', '.join(Experiment.Search.values)}.")
    if trials is not None and (not isinstance(trials, int) or isinstance(trials, bool) or trials < 2):
        raise TrainingRefused("A random sweep needs at least 2 trials.")
    space = checked_space(space)
    plan = trial_overrides(space, search, trials, seed=int(timezone.now().timestamp()))
    if len(plan) < 2:
        raise TrainingRefused("A sweep needs at least two combinations; start a single run instead.")
    if len(plan) > MAX_TRIALS:
        raise TrainingRefused(f"That is {len(plan)} runs; a sweep may have at most {MAX_TRIALS} (try random search).")
    defaults = default_hyperparameters()
    for overrides in plan:
        checked_hyperparameters(defaults, overrides)
    dataset = dataset or DatasetVersion.objects.for_user(owner).instruct().current()
    if dataset is None:
        raise TrainingRefused("There is no dataset yet: add a source and wait for it to be processed.")
    with transaction.atomic():  # no experiment without its first run
        experiment = Experiment.objects.create(
            owner=owner, dataset_version=dataset, search=search, space=space, trials=plan, message="Run 1 queued"
        )
        do_start_training_run(owner, dataset, experiment=experiment, **plan[0])
    experiment.refresh_from_db()  # with an eager queue (tests, the bench), the sweep has already run
    return experiment


def do_advance_experiment(experiment: Experiment, stop: bool = False) -> Experiment:
    """After one of its runs ended: queue the next trial, or pick the best run and send it to the gate."""
    done = experiment.runs.count()
    if not stop and done < len(experiment.trials):
        experiment.message = f"Run {done + 1} of {len(experiment.trials)} queued"
        experiment.save(update_fields=["message"])
        try:
            do_start_training_run(
                experiment.owner, experiment.dataset_version, experiment=experiment, **experiment.trials[done]
            )
            return experiment
        except TrainingRefused as exc:
            experiment.message = f"Stopped before run {done + 1}: {exc}"
    return _finish(experiment)


def _finish(experiment: Experiment) -> Experiment:
    finished = [r for r in experiment.runs.filter(status=JobStatus.SUCCEEDED) if r.last_val_loss is not None]
    best = min(finished, key=lambda r: r.last_val_loss, default=None)
    with transaction.atomic():
        candidates = ModelVersion.objects.filter(
            training_run__experiment=experiment, status=ModelVersion.Status.CANDIDATE
        )
        for version in candidates:
            if best is not None and version.training_run_id == best.pk:
                do_queue_evaluation(version)
                continue
            version.status = ModelVersion.Status.REJECTED
            version.save(update_fields=["status"])
            reason = f"Not the best run of experiment {experiment.pk}"
            _record(version, ModelVersion.Status.CANDIDATE, ModelVersion.Status.REJECTED, None, reason)
        experiment.best_run = best
        experiment.finished_at = timezone.now()
        if best is None:
            experiment.message = experiment.message or "No run finished with a validation loss"
        else:
            experiment.message = f"Run {best.pk} had the lowest validation loss ({best.last_val_loss:.4f})"
        experiment.save(update_fields=["best_run", "finished_at", "message"])
    return experiment

"""Preference tuning: DPO on the twin's preference dataset, starting from (and measured against)
the production adapter, with the tiny model."""

import math

import pytest
import torch

from core.jobs import JobStatus
from tests.features.test_preference import build, instruct, small_builds  # noqa: F401  (fixtures)
from training.actions import do_approve_model_version, do_start_training_run
from training.dpo import dpo_loss
from training.models import ModelVersion

pytestmark = pytest.mark.django_db


def test_the_loss_is_ln2_at_the_reference_and_falls_as_the_chosen_answer_gains():
    reference = torch.tensor([[-10.0, -12.0]])
    at_reference, accuracy = dpo_loss(torch.tensor([-10.0, -12.0]), reference, beta=0.1)
    assert math.isclose(at_reference.item(), math.log(2), rel_tol=1e-6) and accuracy.item() == 0.0

    better, accuracy = dpo_loss(torch.tensor([-8.0, -14.0]), reference, beta=0.1)
    worse, _ = dpo_loss(torch.tensor([-12.0, -10.0]), reference, beta=0.1)
    assert better.item() < math.log(2) < worse.item() and accuracy.item() == 1.0


@pytest.fixture
def production(owner, staff, instruct):  # noqa: F811
    version = ModelVersion.objects.get(training_run=do_start_training_run(owner))
    return do_approve_model_version(version, staff, override_reason="" if version.passed_gate else "test twin")


def test_a_preference_run_refines_the_production_adapter_and_its_candidate_is_gated_against_it(
    owner,
    instruct,  # noqa: F811
    production,
    settings,
):
    settings.TWIN_TRAIN_MAX_STEPS = 6
    preference = build(instruct).dataset_version

    run = do_start_training_run(owner, preference, learning_rate=5e-3)

    run.refresh_from_db()
    assert run.status == JobStatus.SUCCEEDED, run.error
    assert run.start_from == production and run.dataset_version == preference
    # Before the first step the policy is its reference: held-out DPO loss ln 2 (dropout is off there).
    assert run.val_history[0][0] == 0 and math.isclose(run.val_history[0][1], math.log(2), abs_tol=1e-3)
    losses = [loss for _, loss in run.loss_history]
    assert min(losses[1:]) < losses[0]  # the chosen passages gain on the base model's answers
    candidate = ModelVersion.objects.get(training_run=run)
    training = candidate.eval_report["training"]
    assert training["stage"] == "dpo" and training["train_pairs"] > 0
    assert training["train_reward_accuracy"] > 0.5
    assert candidate.sha256 != production.sha256 and candidate.adapter_dir != production.adapter_dir
    # The gate measures it like any candidate: on the instruct dataset's held-out documents, against production.
    assert candidate.evaluation_status == "done" and candidate.eval_report["reference"] == "production"
    assert candidate.eval_report["heldout"]["windows"] >= 1


def test_the_preference_dataset_page_starts_a_dpo_run_for_its_owner_only(
    owner_client,
    other_client,
    anon_client,
    instruct,  # noqa: F811
    production,
    monkeypatch,
):
    from django.urls import reverse

    from training.models import TrainingRun

    preference = build(instruct).dataset_version
    monkeypatch.setattr("training.tasks.train_model.delay", lambda pk: None)  # queued, not run: the view is tested
    page = owner_client.get(reverse("dataset-detail", args=[preference.pk])).content.decode()
    assert "Tune the approved model on these pairs (DPO)" in page

    start = reverse("start-training")
    assert other_client.post(start, {"dataset": preference.pk}).status_code == 404
    assert other_client.post(start, {"dataset": "not-a-number"}).status_code == 404
    anonymous = anon_client.post(start, {"dataset": preference.pk})
    assert anonymous.status_code == 302 and "/login/" in anonymous.url
    assert not TrainingRun.objects.filter(dataset_version=preference).exists()

    response = owner_client.post(start, {"dataset": preference.pk})
    run = TrainingRun.objects.get(dataset_version=preference)
    assert response.status_code == 302 and run.start_from == production
    assert "DPO from model v1" in owner_client.get(reverse("training")).content.decode()


def test_the_api_refuses_a_preference_run_before_any_model_is_approved(owner_api, instruct):  # noqa: F811
    preference = build(instruct).dataset_version

    response = owner_api.post("/api/v1/training-runs/", {"dataset_version": preference.pk}, format="json")

    assert response.status_code == 400 and "approve one on an instruct dataset first" in response.json()["detail"]


def _margins(version, pairs):
    """log p(owner's text) - log p(twin's text) for each pair, under a model version's adapter."""
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from training import base_models
    from training.dpo import collate_pairs, encode_pair, pair_logps

    path = base_models.resolve(version.base_model.identifier)
    tokenizer = AutoTokenizer.from_pretrained(path)
    model = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(path), str(version.adapter_dir)).eval()
    encoded = [encode_pair(tokenizer, pair, 256) for pair in pairs]
    logps = pair_logps(model, encoded, collate_pairs(tokenizer.pad_token_id), 4)
    return logps[:, 0] - logps[:, 1]


def test_a_refinement_on_owner_edits_raises_the_edited_texts_over_the_twins(owner, production, settings):
    """Ten edited drafts: DPO on them makes the owner's versions likelier than the twin's, against the
    production adapter it started from; its candidate is gated against production."""
    from chat.actions import do_edit_draft, do_write
    from features.models import Correction
    from training.actions import do_start_refinement

    settings.TWIN_TRAIN_MAX_STEPS = 8
    for n in range(10):
        draft = do_write(owner, f"a post about my hives, part {n}", form="post", length="short")
        draft.refresh_from_db()
        do_edit_draft(draft, f"I keep two hives on the roof; in a good July each gives twelve kilograms ({n}).")
    pairs = [c.as_pair() for c in Correction.objects.for_user(owner).order_by("pk")]
    assert len(pairs) == 10 and Correction.objects.for_user(owner).waiting().count() == 10

    run = do_start_refinement(owner, learning_rate=5e-3)
    run.refresh_from_db()

    assert run.status == JobStatus.SUCCEEDED, run.error
    assert run.start_from == production and run.dataset_version.lineage["builder"] == "owner-corrections-v1"
    assert Correction.objects.for_user(owner).waiting().count() == 0
    candidate = ModelVersion.objects.get(training_run=run)
    before, after = _margins(production, pairs), _margins(candidate, pairs)
    assert (after > before).all(), (before, after)
    assert candidate.evaluation_status == "done" and candidate.eval_report["reference"] == "production"

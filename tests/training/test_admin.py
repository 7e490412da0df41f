"""Staff review in the Django admin: the evaluation report, then Approve or Reject."""

import pytest
from django.urls import reverse

from training.actions import do_start_training_run
from training.models import ModelVersion

pytestmark = pytest.mark.django_db


@pytest.fixture
def candidate(owner_source, owner, stub_training):
    """A candidate the (stubbed) gate passed: the admin is about review, tests/training trains for real."""
    return ModelVersion.objects.get(training_run=do_start_training_run(owner))


@pytest.fixture
def staff_client(client, staff):
    client.force_login(staff)
    return client


def test_the_change_page_shows_the_report_and_the_review_buttons(staff_client, candidate):
    response = staff_client.get(reverse("admin:training_modelversion_change", args=[candidate.pk]))
    assert response.status_code == 200
    assert b"Held-out loss" in response.content and str(candidate.adapter_loss).encode() in response.content
    assert b'value="approve"' in response.content and b'value="reject"' in response.content


def test_approving_from_the_change_page_makes_it_production(staff_client, candidate, staff):
    url = reverse("admin:training_modelversion_review", args=[candidate.pk])
    response = staff_client.post(url, {"_review": "approve"})
    assert response.status_code == 302
    candidate.refresh_from_db()
    assert candidate.status == "production" and candidate.reviewed_by == staff


def test_rejecting_from_the_change_page(staff_client, candidate):
    staff_client.post(reverse("admin:training_modelversion_review", args=[candidate.pk]), {"_review": "reject"})
    candidate.refresh_from_db()
    assert candidate.status == "rejected"


def test_the_changelist_actions_approve_and_reject(staff_client, candidate):
    changelist = reverse("admin:training_modelversion_changelist")
    staff_client.post(changelist, {"action": "approve", "_selected_action": [candidate.pk]})
    candidate.refresh_from_db()
    assert candidate.status == "production"
    response = staff_client.post(changelist, {"action": "reject", "_selected_action": [candidate.pk]}, follow=True)
    candidate.refresh_from_db()
    assert candidate.status == "production" and b"approve another version first" in response.content


def test_only_staff_can_review(owner_client, candidate):
    response = owner_client.post(
        reverse("admin:training_modelversion_review", args=[candidate.pk]), {"_review": "approve"}
    )
    assert response.status_code == 302 and "/admin/login/" in response["Location"]
    candidate.refresh_from_db()
    assert candidate.status == "candidate"


def test_a_failing_candidate_is_approved_only_with_a_written_reason(staff_client, candidate, staff):
    ModelVersion.objects.filter(pk=candidate.pk).update(verdict="failed")
    url = reverse("admin:training_modelversion_review", args=[candidate.pk])
    page = staff_client.get(reverse("admin:training_modelversion_change", args=[candidate.pk]))
    assert b"Override reason" in page.content

    response = staff_client.post(url, {"_review": "approve"}, follow=True)
    candidate.refresh_from_db()
    assert candidate.status == "candidate" and b"failed the evaluation gate" in response.content

    staff_client.post(url, {"_review": "approve", "override_reason": "Reviewed the samples by hand"})
    candidate.refresh_from_db()
    assert candidate.status == "production" and candidate.override_reason == "Reviewed the samples by hand"


def test_staff_edit_a_failed_runs_hyperparameters_in_the_admin(staff_client, candidate):
    run = candidate.training_run
    run.status = "failed"
    run.save(update_fields=["status"])
    url = reverse("admin:training_trainingrun_change", args=[run.pk])

    bad = staff_client.post(url, {"hyperparameters": '{"lora_r": 0}'})
    assert bad.status_code == 200 and b"lora_r must be a whole number of at least 1" in bad.content

    staff_client.post(url, {"hyperparameters": '{"lora_r": 4, "max_steps": 6}'})
    run.refresh_from_db()
    assert run.hyperparameters["lora_r"] == 4 and run.total_steps == 6 and "seed" in run.hyperparameters


def test_the_staff_form_trains_the_twin_again_with_new_hyperparameters(staff_client, candidate, monkeypatch):
    from training.models import TrainingRun

    monkeypatch.setattr("training.tasks.train_model.delay", lambda run_id: None)
    url = reverse("tune-training", args=[candidate.training_run_id])
    form = staff_client.get(url)
    assert form.status_code == 200 and b'name="hp-learning_rate"' in form.content

    data = {f"hp-{k}": v for k, v in candidate.training_run.hyperparameters.items() if k != "target_modules"}
    data.update({"hp-target_modules": ["q_proj", "v_proj"], "hp-lora_r": 2, "hp-packing": "on"})
    response = staff_client.post(url, data)

    new_run = TrainingRun.objects.exclude(pk=candidate.training_run_id).get()
    assert response.status_code == 302 and new_run.owner == candidate.owner
    assert new_run.hyperparameters["lora_r"] == 2 and new_run.hyperparameters["target_modules"] == ["q_proj", "v_proj"]

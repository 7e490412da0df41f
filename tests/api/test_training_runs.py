"""/api/v1/training-runs/: list, retrieve and start LoRA runs on my own datasets."""

import math

import pytest
from django.conf import settings

from tests.conftest import expected_device
from training.models import ModelVersion, TrainingRun

pytestmark = pytest.mark.django_db

URL = "/api/v1/training-runs/"


@pytest.fixture
def queued_only(monkeypatch):
    """Runs stay queued: no worker picks them up."""
    monkeypatch.setattr("training.tasks.train_model.delay", lambda run_id: None)


def test_starting_a_run_on_a_dataset_trains_and_registers_a_candidate(owner_api, owner_dataset):
    """The one API test that trains for real (the tiny model, 4 steps); what the API then shows of
    the run is what training measured, on whatever device this machine has."""
    response = owner_api.post(URL, {"dataset_version": owner_dataset.pk}, format="json")

    assert response.status_code == 201
    run = TrainingRun.objects.get(pk=response.json()["id"])
    assert run.dataset_version == owner_dataset and run.owner == owner_dataset.owner
    assert run.status == "succeeded", run.error
    assert ModelVersion.objects.get(training_run=run).status == "candidate"

    body = owner_api.get(f"{URL}{run.pk}/").json()
    assert body["status"] == "succeeded" and body["progress"] == 100
    assert body["current_step"] == body["total_steps"] == settings.TWIN_TRAIN_MAX_STEPS
    assert [step for step, _ in body["loss_history"]] == list(range(1, settings.TWIN_TRAIN_MAX_STEPS + 1))
    assert all(math.isfinite(loss) and loss > 0 for _, loss in body["loss_history"] + body["val_history"])
    assert body["val_history"][0][0] == 0  # the base model's held-out loss comes first
    assert body["device"] == expected_device() and body["metrics"]["tokens_per_second"] > 0


def test_without_a_dataset_id_the_latest_dataset_is_used(owner_api, owner_dataset, queued_only):
    response = owner_api.post(URL, {}, format="json")

    assert response.status_code == 201
    body = response.json()
    assert body["dataset_version"] == owner_dataset.pk and body["status"] == "queued"
    assert body["total_steps"] == settings.TWIN_TRAIN_MAX_STEPS and body["base_model"]  # the cap until it runs
    assert body["hyperparameters"]["epochs"] > 0 and body["hyperparameters"]["packing"] is True


def test_without_any_dataset_the_run_is_refused_with_a_reason(owner_api, owner):
    response = owner_api.post(URL, {}, format="json")

    assert response.status_code == 400
    assert "no dataset" in response.json()["detail"]
    assert not TrainingRun.objects.exists()


def test_another_users_dataset_is_404(owner_api, owner_dataset, other_dataset):
    response = owner_api.post(URL, {"dataset_version": other_dataset.pk}, format="json")

    assert response.status_code == 404
    assert not TrainingRun.objects.exists()


def test_a_non_numeric_dataset_id_is_a_400(owner_api, owner_dataset):
    response = owner_api.post(URL, {"dataset_version": "latest"}, format="json")

    assert response.status_code == 400
    assert "dataset_version" in response.json()


def test_a_second_run_while_one_is_active_is_refused(owner_api, owner_dataset, queued_only):
    first = owner_api.post(URL, {}, format="json").json()

    response = owner_api.post(URL, {}, format="json")

    assert response.status_code == 400
    assert f"Training run {first['id']} is still queued" in response.json()["detail"]


def test_the_list_shows_only_my_runs(owner_api, other_api, owner_dataset, other_dataset, queued_only):
    mine = owner_api.post(URL, {}, format="json").json()
    theirs = other_api.post(URL, {}, format="json").json()

    assert [r["id"] for r in owner_api.get(URL).json()["results"]] == [mine["id"]]
    assert [r["id"] for r in other_api.get(URL).json()["results"]] == [theirs["id"]]


def test_another_users_run_is_404(other_api, owner_dataset, owner_api, queued_only):
    run = owner_api.post(URL, {}, format="json").json()

    assert other_api.get(f"{URL}{run['id']}/").status_code == 404


def test_runs_cannot_be_edited_or_deleted(owner_api, owner_dataset, queued_only):
    run = owner_api.post(URL, {}, format="json").json()

    assert owner_api.patch(f"{URL}{run['id']}/", {"status": "succeeded"}, format="json").status_code == 405
    assert owner_api.delete(f"{URL}{run['id']}/").status_code == 405
    assert TrainingRun.objects.get(pk=run["id"]).status == "queued"


def test_anonymous_callers_are_refused(anon_api, owner_dataset):
    assert anon_api.get(URL).status_code == 401
    assert anon_api.post(URL, {}, format="json").status_code == 401
    assert not TrainingRun.objects.exists()


def test_only_staff_set_hyperparameters_when_starting(owner_api, staff_api, owner_dataset, queued_only):
    body = {"hyperparameters": {"learning_rate": 0.001}}

    assert owner_api.post(URL, body, format="json").status_code == 403
    assert not TrainingRun.objects.exists()


def test_staff_change_the_hyperparameters_of_a_queued_run(owner_api, staff_api, owner_dataset, queued_only):
    run = owner_api.post(URL, {}, format="json").json()
    url = f"{URL}{run['id']}/hyperparameters/"

    assert owner_api.patch(url, {"hyperparameters": {"lora_r": 4}}, format="json").status_code == 403
    response = staff_api.patch(url, {"hyperparameters": {"lora_r": 4, "max_steps": 9}}, format="json")

    assert response.status_code == 200
    stored = TrainingRun.objects.get(pk=run["id"])
    assert stored.hyperparameters["lora_r"] == 4 and stored.total_steps == 9
    assert stored.hyperparameters["seed"] == run["hyperparameters"]["seed"]  # the rest is kept


def test_bad_hyperparameters_are_a_400_that_names_them(owner_api, staff_api, owner_dataset, queued_only):
    run = owner_api.post(URL, {}, format="json").json()

    response = staff_api.patch(
        f"{URL}{run['id']}/hyperparameters/", {"hyperparameters": {"lora_dropout": 2, "shape": 1}}, format="json"
    )

    assert response.status_code == 400 and "Unknown hyperparameters: shape" in response.json()["detail"]
    response = staff_api.patch(
        f"{URL}{run['id']}/hyperparameters/", {"hyperparameters": {"lora_dropout": 2}}, format="json"
    )
    assert response.status_code == 400 and "lora_dropout must be at least 0 and below 1" in response.json()["detail"]
    assert TrainingRun.objects.get(pk=run["id"]).hyperparameters == run["hyperparameters"]


def test_a_finished_runs_hyperparameters_are_fixed(staff_api, owner_model_version):
    run = owner_model_version.training_run

    response = staff_api.patch(f"{URL}{run.pk}/hyperparameters/", {"hyperparameters": {"seed": 1}}, format="json")

    assert response.status_code == 400 and "only a queued or failed run" in response.json()["detail"]

"""/api/v1/models/: my model versions; staff approve (promote to production) or reject them."""

import pytest

from training.actions import do_start_training_run
from training.models import ModelVersion

pytestmark = pytest.mark.django_db

URL = "/api/v1/models/"


def approve(client, model_version):
    return client.post(f"{URL}{model_version.pk}/approve/")


def reject(client, model_version):
    return client.post(f"{URL}{model_version.pk}/reject/")


def test_the_list_shows_only_my_model_versions(owner_api, other_api, owner_model_version):
    assert [m["id"] for m in owner_api.get(URL).json()["results"]] == [owner_model_version.pk]
    assert other_api.get(URL).json()["results"] == []


def test_retrieving_a_model_version_shows_its_lineage_and_evaluation(owner_api, owner_model_version):
    response = owner_api.get(f"{URL}{owner_model_version.pk}/")

    assert response.status_code == 200
    body = response.json()
    assert body["version"] == 1 and body["status"] == "candidate"
    assert body["training_run"] == owner_model_version.training_run_id
    assert body["dataset_version"] == owner_model_version.dataset_version_id
    assert body["sha256"] == owner_model_version.sha256
    assert body["eval_report"] == owner_model_version.eval_report and body["base_model"]


def test_another_users_model_version_is_404(other_api, owner_model_version):
    assert other_api.get(f"{URL}{owner_model_version.pk}/").status_code == 404


def test_the_owner_cannot_approve_their_own_model(owner_api, owner_model_version):
    response = approve(owner_api, owner_model_version)

    assert response.status_code == 403
    owner_model_version.refresh_from_db()
    assert owner_model_version.status == "candidate"


def test_non_staff_cannot_reject(owner_api, other_api, owner_model_version):
    assert reject(owner_api, owner_model_version).status_code == 403
    assert reject(other_api, owner_model_version).status_code == 403
    owner_model_version.refresh_from_db()
    assert owner_model_version.status == "candidate"


def test_anonymous_callers_cannot_review(anon_api, owner_model_version):
    assert approve(anon_api, owner_model_version).status_code == 401
    assert reject(anon_api, owner_model_version).status_code == 401


def test_staff_approval_makes_the_version_production(staff_api, staff, owner_model_version, owner):
    response = approve(staff_api, owner_model_version)

    assert response.status_code == 200
    assert response.json()["status"] == "production" and response.json()["reviewed_at"]
    owner_model_version.refresh_from_db()
    assert owner_model_version.status == "production" and owner_model_version.reviewed_by == staff
    assert ModelVersion.objects.for_user(owner).production() == owner_model_version


def test_approving_a_newer_version_keeps_the_previous_one_for_rollback(staff_api, owner_model_version, owner):
    approve(staff_api, owner_model_version)
    newer = ModelVersion.objects.get(training_run=do_start_training_run(owner))

    assert approve(staff_api, newer).json()["status"] == "production"
    owner_model_version.refresh_from_db()
    assert owner_model_version.status == "approved"


def test_staff_rejection_keeps_the_version_out_of_production(staff_api, owner_model_version, owner):
    response = reject(staff_api, owner_model_version)

    assert response.status_code == 200
    assert response.json()["status"] == "rejected"
    assert ModelVersion.objects.for_user(owner).production() is None


def test_a_rejected_version_cannot_be_approved(staff_api, owner_model_version):
    reject(staff_api, owner_model_version)

    response = approve(staff_api, owner_model_version)

    assert response.status_code == 400
    assert "rejected" in response.json()["detail"]


def test_the_serving_version_cannot_be_rejected(staff_api, owner_model_version):
    approve(staff_api, owner_model_version)

    response = reject(staff_api, owner_model_version)

    assert response.status_code == 400
    owner_model_version.refresh_from_db()
    assert owner_model_version.status == "production"


@pytest.mark.parametrize("model_id", [999999, "abc"])
def test_reviewing_a_missing_or_malformed_id_is_404(staff_api, db, model_id):
    assert approve(staff_api, ModelVersion(pk=model_id)).status_code == 404
    assert reject(staff_api, ModelVersion(pk=model_id)).status_code == 404


def test_model_versions_are_read_only(owner_api, owner_model_version):
    url = f"{URL}{owner_model_version.pk}/"

    assert owner_api.delete(url).status_code == 405
    assert owner_api.patch(url, {"status": "production"}, format="json").status_code == 405
    owner_model_version.refresh_from_db()
    assert owner_model_version.status == "candidate"


def test_the_report_and_history_come_with_the_version(owner_api, owner_model_version):
    body = owner_api.get(f"{URL}{owner_model_version.pk}/").json()

    owner_model_version.refresh_from_db()  # what the gate recorded (its figures are the stub's: not asserted here)
    assert body["evaluation_status"] == "done" and body["verdict"] == owner_model_version.verdict != ""
    assert body["fidelity_score"] == owner_model_version.fidelity_score is not None
    assert body["grounding_score"] is None  # filled by chat's grounding check, never by training
    assert [(e["from_status"], e["to_status"]) for e in body["events"]] == [
        ("", "candidate"),
        ("candidate", "candidate"),
    ]


def test_a_failing_candidate_needs_a_written_override_reason(staff_api, owner_model_version):
    ModelVersion.objects.filter(pk=owner_model_version.pk).update(verdict="failed")

    refused = approve(staff_api, owner_model_version)
    assert refused.status_code == 400 and "failed the evaluation gate" in refused.json()["detail"]

    response = staff_api.post(
        f"{URL}{owner_model_version.pk}/approve/", {"override_reason": "Known-good data, noisy gate"}, format="json"
    )
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "production" and body["override_reason"] == "Known-good data, noisy gate"
    assert body["events"][-1]["reason"] == "Override: Known-good data, noisy gate" and body["events"][-1]["actor"]


def test_staff_roll_a_twin_back_in_one_call(staff_api, owner_model_version, owner):
    approve(staff_api, owner_model_version)
    newer = ModelVersion.objects.get(training_run=do_start_training_run(owner))
    approve(staff_api, newer)

    assert staff_api.post(f"{URL}{owner_model_version.pk}/rollback/").status_code == 400  # not the serving one
    response = staff_api.post(f"{URL}{newer.pk}/rollback/", {"reason": "regression"}, format="json")

    assert response.status_code == 200 and response.json()["id"] == owner_model_version.pk
    assert ModelVersion.objects.for_user(owner).production() == owner_model_version


def test_owners_cannot_roll_back(owner_api, staff_api, owner_model_version):
    approve(staff_api, owner_model_version)
    assert owner_api.post(f"{URL}{owner_model_version.pk}/rollback/").status_code == 403


def test_export_of_a_version_without_adapter_files_is_a_clear_409(owner_api, owner_model_version):
    (owner_model_version.adapter_dir / "adapter_model.safetensors").unlink()

    response = owner_api.get(f"{URL}{owner_model_version.pk}/export/")

    assert response.status_code == 409 and "adapter_model.safetensors" in response.json()["detail"]

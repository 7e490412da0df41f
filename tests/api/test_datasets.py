"""/api/v1/datasets/: my versioned, content-hashed datasets (read-only), instruct and preference;
POST {id}/preference/ builds a preference dataset from an instruct one."""

import pytest

from training.models import PreferenceRun

pytestmark = pytest.mark.django_db

URL = "/api/v1/datasets/"
KINDS = ("instruct", "preference")


def test_the_list_shows_only_my_datasets(owner_api, owner_dataset, other_dataset):
    response = owner_api.get(URL)

    assert response.status_code == 200
    assert [d["id"] for d in response.json()["results"]] == [owner_dataset.pk]


def test_retrieving_a_dataset_shows_its_hash_counts_and_lineage(owner_api, owner_dataset, owner_source):
    response = owner_api.get(f"{URL}{owner_dataset.pk}/")

    assert response.status_code == 200
    body = response.json()
    assert body["version"] == 1 and body["kind"] == "instruct"
    assert body["sha256"] == owner_dataset.sha256 and len(body["sha256"]) == 64
    assert body["train_count"] == owner_dataset.train_count and body["document_count"] == 1
    assert body["lineage"] == owner_dataset.lineage
    assert str(owner_source.documents.get().pk) in str(body["lineage"])


def test_another_users_dataset_is_404(owner_api, other_dataset):
    assert owner_api.get(f"{URL}{other_dataset.pk}/").status_code == 404


def test_datasets_are_read_only(owner_api, owner_dataset):
    assert owner_api.post(URL, {}, format="json").status_code == 405
    assert owner_api.delete(f"{URL}{owner_dataset.pk}/").status_code == 405


def test_anonymous_callers_are_refused(anon_api, owner_dataset):
    assert anon_api.get(URL).status_code == 401
    assert anon_api.get(f"{URL}{owner_dataset.pk}/").status_code == 401


@pytest.fixture
def small_builds(settings):
    settings.TWIN_PREFERENCE_MAX_PAIRS, settings.TWIN_PREFERENCE_MAX_NEW_TOKENS = 3, 8


def test_posting_to_an_instruct_dataset_builds_its_preference_dataset(owner_api, owner_dataset, small_builds):
    response = owner_api.post(f"{URL}{owner_dataset.pk}/preference/")

    assert response.status_code == 202
    run = response.json()
    assert run["instruct_dataset"] == owner_dataset.pk and run["status"] == "succeeded"  # eager Celery
    assert run["generator"] == "base:tiny:greedy-8" and run["dataset_version"]
    assert owner_api.get(f"{URL}{owner_dataset.pk}/preference/").json()["id"] == run["id"]

    preference = owner_api.get(f"{URL}{run['dataset_version']}/").json()
    assert preference["kind"] == "preference" and preference["version"] == 1
    assert preference["instruct_dataset"] == owner_dataset.pk and len(preference["sha256"]) == 64
    assert preference["lineage"]["instruct_dataset"]["sha256"] == owner_dataset.sha256
    kinds = {kind: [d["id"] for d in owner_api.get(URL, {"kind": kind}).json()["results"]] for kind in KINDS}
    assert kinds == {"instruct": [owner_dataset.pk], "preference": [run["dataset_version"]]}


def test_an_unknown_kind_is_a_400(owner_api, owner_dataset):
    response = owner_api.get(URL, {"kind": "reward"})

    assert response.status_code == 400 and "kind" in response.json()


def test_a_preference_dataset_is_not_built_from_a_preference_dataset(owner_api, owner_dataset, small_builds):
    preference_id = owner_api.post(f"{URL}{owner_dataset.pk}/preference/").json()["dataset_version"]

    response = owner_api.post(f"{URL}{preference_id}/preference/")

    assert response.status_code == 400 and "instruct dataset" in response.json()["detail"]


def test_no_build_yet_is_a_404_with_a_reason(owner_api, owner_dataset):
    response = owner_api.get(f"{URL}{owner_dataset.pk}/preference/")

    assert response.status_code == 404 and "No preference dataset" in response.json()["detail"]


def test_another_users_dataset_cannot_be_built_from_or_watched(other_api, owner_api, owner_dataset, small_builds):
    owner_api.post(f"{URL}{owner_dataset.pk}/preference/")

    assert other_api.post(f"{URL}{owner_dataset.pk}/preference/").status_code == 404
    assert other_api.get(f"{URL}{owner_dataset.pk}/preference/").status_code == 404
    assert other_api.get(URL, {"kind": "preference"}).json()["results"] == []
    assert PreferenceRun.objects.count() == 1


def test_anonymous_callers_cannot_build(anon_api, owner_dataset):
    assert anon_api.post(f"{URL}{owner_dataset.pk}/preference/").status_code == 401
    assert anon_api.get(f"{URL}{owner_dataset.pk}/preference/").status_code == 401
    assert not PreferenceRun.objects.exists()

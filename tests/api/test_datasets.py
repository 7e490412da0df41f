"""/api/v1/datasets/: my versioned, content-hashed instruct datasets (read-only)."""

import pytest

pytestmark = pytest.mark.django_db

URL = "/api/v1/datasets/"


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

"""/api/v1/documents/: raw documents of my sources, filterable by source, with the text on retrieve."""

import pytest

from ingestion.models import Document
from tests.conftest import add_markdown_source

pytestmark = pytest.mark.django_db

URL = "/api/v1/documents/"


def ids(response) -> list[int]:
    assert response.status_code == 200
    return [d["id"] for d in response.json()["results"]]


def test_the_list_shows_only_my_documents_without_their_text(owner_api, owner_source, other_source):
    response = owner_api.get(URL)

    assert ids(response) == list(Document.objects.for_user(owner_source.owner).values_list("id", flat=True))
    row = response.json()["results"][0]
    assert row["title"] == "Keeping bees on a city roof" and row["source"] == owner_source.pk
    assert row["word_count"] > 0 and "raw_text" not in row


def test_the_source_filter_keeps_one_sources_documents(owner_api, owner, owner_source):
    second = add_markdown_source(owner, "wax.md", "# Rendering wax\n\nI melt the old comb in a solar wax melter.")

    assert ids(owner_api.get(URL, {"source": second.pk})) == [second.documents.get().pk]
    assert ids(owner_api.get(URL, {"source": owner_source.pk})) == [owner_source.documents.get().pk]
    assert len(ids(owner_api.get(URL))) == 2


def test_filtering_by_another_users_source_finds_nothing(owner_api, owner_source, other_source):
    assert ids(owner_api.get(URL, {"source": other_source.pk})) == []


def test_a_non_numeric_source_filter_is_ignored(owner_api, owner_source):
    assert len(ids(owner_api.get(URL, {"source": "abc"}))) == 1


def test_retrieving_a_document_includes_its_raw_text(owner_api, owner_source):
    document = owner_source.documents.get()

    response = owner_api.get(f"{URL}{document.pk}/")

    assert response.status_code == 200
    body = response.json()
    assert body["id"] == document.pk and body["content_hash"] == document.content_hash
    assert "twelve kilograms of honey" in body["raw_text"]


def test_another_users_document_is_404(owner_api, other_source):
    document = other_source.documents.get()

    response = owner_api.get(f"{URL}{document.pk}/")

    assert response.status_code == 404
    assert "dinghy" not in response.content.decode()


def test_documents_are_read_only(owner_api, owner_source):
    document = owner_source.documents.get()

    assert owner_api.post(URL, {"title": "x"}, format="json").status_code == 405
    assert owner_api.delete(f"{URL}{document.pk}/").status_code == 405


def test_anonymous_callers_are_refused(anon_api, owner_source):
    assert anon_api.get(URL).status_code == 401
    assert anon_api.get(f"{URL}{owner_source.documents.get().pk}/").status_code == 401

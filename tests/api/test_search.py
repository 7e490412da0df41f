"""/api/v1/search/?q=: semantic search over my own chunks only."""

import pytest

from features.models import Chunk
from tests.conftest import add_markdown_source

pytestmark = pytest.mark.django_db

URL = "/api/v1/search/"

LONG_NOTES = "# Garden diary\n\n" + "\n\n".join(
    f"## Week {week}\n\n" + f"In week {week} I sowed {week} rows of beans and watered them every evening. " * 10
    for week in range(1, 4)
)


@pytest.fixture
def garden(owner):
    """Enough of the owner's writing for several chunks."""
    source = add_markdown_source(owner, "garden.md", LONG_NOTES)
    assert Chunk.objects.for_user(owner).count() >= 3
    return source


def test_a_query_is_required(owner_api, owner_source):
    for params in ({}, {"q": "   "}):
        response = owner_api.get(URL, params)
        assert response.status_code == 400
        assert "q" in response.json()


def test_results_are_my_chunks_best_first(owner_api, owner, owner_source):
    response = owner_api.get(URL, {"q": "how much honey in July"})

    assert response.status_code == 200
    body = response.json()
    assert body["query"] == "how much honey in July"
    scores = [r["score"] for r in body["results"]]
    assert scores and scores == sorted(scores, reverse=True)
    top = body["results"][0]
    assert top["title"] == "Keeping bees on a city roof" and top["document_id"] == owner_source.documents.get().pk
    assert top["text"] == Chunk.objects.get(pk=top["chunk_id"]).text


def test_search_never_returns_another_users_chunks(owner_api, owner, owner_source, other_source):
    response = owner_api.get(URL, {"q": "sailing a dinghy on the lake", "k": 50})

    mine = set(Chunk.objects.for_user(owner).values_list("id", flat=True))
    found = {r["chunk_id"] for r in response.json()["results"]}
    assert found and found <= mine
    assert not any("dinghy" in r["text"] for r in response.json()["results"])


def test_k_limits_the_number_of_results(owner_api, garden):
    assert len(owner_api.get(URL, {"q": "beans", "k": 2}).json()["results"]) == 2


@pytest.mark.parametrize("k", ["0", "-4"])
def test_k_below_one_returns_one_result(owner_api, garden, k):
    assert len(owner_api.get(URL, {"q": "beans", "k": k}).json()["results"]) == 1


def test_k_is_capped(owner_api, garden, monkeypatch):
    monkeypatch.setattr("features.api.MAX_K", 2)

    assert len(owner_api.get(URL, {"q": "beans", "k": 1000}).json()["results"]) == 2


def test_a_non_numeric_k_is_a_400(owner_api, owner_source):
    response = owner_api.get(URL, {"q": "honey", "k": "many"})

    assert response.status_code == 400
    assert "k" in response.json()


def test_a_user_without_sources_finds_nothing(other_api, owner_source):
    response = other_api.get(URL, {"q": "honey"})

    assert response.status_code == 200
    assert response.json()["results"] == []


def test_anonymous_callers_are_refused(anon_api, owner_source):
    assert anon_api.get(URL, {"q": "honey"}).status_code == 401

"""/api/v1/search/?q=: hybrid search over my own chunks only, with filters and why each result matched."""

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
    relevances = [r["why"]["relevance"] for r in body["results"]]
    assert relevances and relevances == sorted(relevances, reverse=True)
    top = body["results"][0]
    assert top["title"] == "Keeping bees on a city roof" and top["document_id"] == owner_source.documents.get().pk
    assert top["text"] == Chunk.objects.get(pk=top["chunk_id"]).text
    assert top["source_id"] == owner_source.pk and top["source"] == owner_source.name
    assert top["category"] == "article"
    assert "honey" in top["why"]["matched_terms"] and top["why"]["text_rank"] == 1
    assert top["why"]["vector_rank"] >= 1 and top["score"] == pytest.approx(top["why"]["similarity"])


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


def test_filters_narrow_the_results(owner_api, owner, owner_source, garden):
    everything = {r["document_id"] for r in owner_api.get(URL, {"q": "bees and beans", "k": 50}).json()["results"]}
    assert len(everything) == 2

    only_garden = owner_api.get(URL, {"q": "bees and beans", "k": 50, "source": garden.pk}).json()["results"]
    assert {r["source_id"] for r in only_garden} == {garden.pk}
    assert owner_api.get(URL, {"q": "bees", "category": "code"}).json()["results"] == []
    assert owner_api.get(URL, {"q": "bees", "since": "2999-01-01"}).json()["results"] == []
    assert owner_api.get(URL, {"q": "bees", "until": "2999-01-01"}).json()["results"]


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"category": "poems"}, "category"),
        ({"since": "last week"}, "since"),
        ({"since": "2025-02-01", "until": "2025-01-01"}, "until"),
        ({"source": "x"}, "source"),
    ],
)
def test_bad_filters_are_a_400_naming_the_field(owner_api, owner_source, params, field):
    response = owner_api.get(URL, {"q": "honey", **params})

    assert response.status_code == 400
    assert field in response.json()


def test_another_users_source_is_not_a_valid_filter(owner_api, owner_source, other_source):
    response = owner_api.get(URL, {"q": "dinghy", "source": other_source.pk})

    assert response.status_code == 400
    assert "source" in response.json()


def test_code_results_carry_their_symbols(owner_api, owner):
    from ingestion.actions import do_add_upload_source
    from ingestion.connectors.upload.forms import UploadSourceForm
    from tests.conftest import markdown_upload

    code = "import json\n\n\ndef parse_frobnitz_header(raw):\n    version, _, rest = raw.partition(b':')\n"
    form = UploadSourceForm({"category": "code"}, {"file": markdown_upload("frob.txt", code)})
    assert form.is_valid(), form.errors
    do_add_upload_source(owner, form.cleaned_data["file"], category="code")

    top = owner_api.get(URL, {"q": "parse_frobnitz_header"}).json()["results"][0]

    assert top["category"] == "code" and top["symbols"] == ["parse_frobnitz_header"]
    assert "(raw):\n    version, _, rest = raw.partition(b':')" in top["text"]  # indentation kept

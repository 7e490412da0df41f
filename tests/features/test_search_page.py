"""The search page: hybrid results with document, source and why they matched; filters; bad input."""

import pytest

pytestmark = pytest.mark.django_db


def test_results_show_document_source_and_why(owner_client, owner_source):
    page = owner_client.get("/search/", {"q": "how much honey in July"}).content.decode()

    assert "Keeping bees on a city roof" in page
    assert owner_source.name in page
    assert "Why:" in page and "<mark>honey</mark>" in page and "meaning #" in page
    assert "› Keeping bees on a city roof › Why a roof" in page  # the heading path of the chunk


def test_filters_are_applied_and_kept_in_the_form(owner_client, owner_source):
    page = owner_client.get("/search/", {"q": "honey", "category": "code"}).content.decode()

    assert "Nothing found." in page
    assert '<option value="code" selected>' in page


def test_a_bad_date_is_explained(owner_client, owner_source):
    response = owner_client.get("/search/", {"q": "honey", "since": "yesterday-ish"})

    assert response.status_code == 200
    assert "since: Enter a valid date." in response.content.decode()
    assert "card chunk" not in response.content.decode()


def test_an_empty_page_shows_the_form_without_errors(owner_client):
    page = owner_client.get("/search/").content.decode()

    assert 'name="q"' in page and 'class="error"' not in page

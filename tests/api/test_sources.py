"""/api/v1/sources/: list, retrieve, delete, add by URL (JSON) or file (multipart), sync."""

from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from ingestion.models import CrawlRun, Document, Source
from tests.conftest import SAMPLE_MARKDOWN, markdown_upload

pytestmark = pytest.mark.django_db

URL = "/api/v1/sources/"

ARTICLE = """<html><head><title>Pruning apple trees</title></head><body><article>
<h1>Pruning apple trees</h1>
<p>Every February I prune the three old apple trees behind the house. I take out the crossing branches first,
then anything growing straight up, and I never remove more than a quarter of the crown in one winter.</p>
<p>The cuts heal best on a dry, mild day, so I watch the forecast and wait for one.</p>
</article></body></html>"""


def detail(source) -> str:
    return f"{URL}{source.pk}/"


def upload(client, file, category="article"):
    return client.post(URL, {"file": file, "category": category}, format="multipart")


def test_the_list_shows_only_my_sources(owner_api, owner_source, other_source):
    response = owner_api.get(URL)

    assert response.status_code == 200
    assert [s["id"] for s in response.json()["results"]] == [owner_source.pk]


def test_retrieving_a_source_shows_its_last_crawl(owner_api, owner_source):
    response = owner_api.get(detail(owner_source))

    assert response.status_code == 200
    body = response.json()
    assert body["kind"] == "upload" and body["name"] == "Keeping bees on a city roof"
    assert body["last_run"]["status"] == "succeeded" and body["last_run"]["documents_created"] == 1


def test_another_users_source_is_404(owner_api, other_source):
    assert owner_api.get(detail(other_source)).status_code == 404
    assert owner_api.delete(detail(other_source)).status_code == 404
    assert Source.objects.filter(pk=other_source.pk).exists()


def test_deleting_a_source_removes_its_documents_and_file(owner_api, owner_source):
    stored_file = Path(owner_source.upload.path)
    assert stored_file.exists()

    response = owner_api.delete(detail(owner_source))

    assert response.status_code == 204
    assert not Source.objects.filter(pk=owner_source.pk).exists()
    assert not Document.objects.filter(source_id=owner_source.pk).exists()
    assert not stored_file.exists()


def test_posting_a_file_adds_and_ingests_it(owner_api, owner):
    response = upload(owner_api, markdown_upload())

    assert response.status_code == 201
    body = response.json()
    assert body["kind"] == "upload" and body["name"] == "Keeping bees on a city roof"
    assert body["last_run"]["status"] in ("queued", "running", "succeeded")
    document = Document.objects.for_user(owner).get(source_id=body["id"])
    assert "twelve kilograms" in document.raw_text


def test_posting_a_url_adds_and_crawls_the_article(owner_api, owner, local_site):
    url = local_site.page("/apples.html", ARTICLE)

    response = owner_api.post(URL, {"url": url, "category": "article"}, format="json")

    assert response.status_code == 201
    body = response.json()
    assert body["kind"] == "article" and body["url"] == url
    document = Document.objects.for_user(owner).get(source_id=body["id"])
    assert document.title == "Pruning apple trees" and "quarter of the crown" in document.raw_text


def test_the_same_url_twice_is_refused(owner_api, local_site):
    url = local_site.page("/apples.html", ARTICLE)
    owner_api.post(URL, {"url": url}, format="json")

    response = owner_api.post(URL, {"url": url}, format="json")

    assert response.status_code == 400
    assert "already added" in response.json()["detail"]


def test_an_empty_file_is_refused(owner_api):
    response = upload(owner_api, SimpleUploadedFile("empty.md", b"", content_type="text/markdown"))

    assert response.status_code == 400
    assert "empty" in response.json()["file"][0]
    assert not Source.objects.exists()


def test_a_file_of_the_wrong_type_is_refused(owner_api):
    response = upload(owner_api, SimpleUploadedFile("tool.exe", b"MZ\x90\x00", content_type="application/x-dosexec"))

    assert response.status_code == 400
    assert "not a supported file type" in response.json()["file"][0]
    assert not Source.objects.exists()


def test_a_binary_file_with_a_text_extension_is_refused(owner_api):
    response = upload(owner_api, SimpleUploadedFile("notes.md", b"\x00\x01\x02binary", content_type="text/markdown"))

    assert response.status_code == 400
    assert "binary" in response.json()["file"][0]


def test_an_oversized_file_is_refused_with_the_limit(owner_api, settings):
    settings.TWIN_MAX_UPLOAD_BYTES = 100

    response = upload(owner_api, markdown_upload(text=SAMPLE_MARKDOWN))

    assert response.status_code == 400
    assert "the limit is 100" in response.json()["file"][0]
    assert not Source.objects.exists()


def test_an_unknown_category_is_refused(owner_api):
    response = upload(owner_api, markdown_upload(), category="poetry")

    assert response.status_code == 400
    assert "category" in response.json()


@pytest.mark.parametrize("url", ["not a url", "ftp://example.com/file.txt", "javascript:alert(1)"])
def test_a_bad_url_is_refused(owner_api, url):
    response = owner_api.post(URL, {"url": url}, format="json")

    assert response.status_code == 400
    assert response.json()["url"]
    assert not Source.objects.exists()


def test_neither_url_nor_file_is_refused(owner_api):
    response = owner_api.post(URL, {}, format="json")

    assert response.status_code == 400
    assert "Give a `url` or a `file`" in response.json()["kind"][0]


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://127.0.0.1/admin/", "loopback"),
        ("http://127.0.0.1:8000/admin/", "port 8000"),
        ("http://169.254.169.254/latest/meta-data/", "link-local"),
        ("http://10.0.0.5/", "private"),
    ],
)
def test_an_internal_address_is_refused(owner_api, url, reason):
    response = owner_api.post(URL, {"url": url}, format="json")

    assert response.status_code == 400
    assert reason in response.json()["url"][0]
    assert not Source.objects.exists() and not CrawlRun.objects.exists()


def test_the_source_limit_is_enforced_with_a_reason(owner_api, owner_source, settings):
    settings.TWIN_MAX_SOURCES_PER_USER = 1

    response = upload(owner_api, markdown_upload("more.md", "# More\n\nAnother note about the bees and the roof."))

    assert response.status_code == 400
    assert "limit of 1 sources" in response.json()["detail"]


def test_sync_queues_a_new_crawl(owner_api, owner_source):
    response = owner_api.post(f"{detail(owner_source)}sync/")

    assert response.status_code == 202
    assert response.json()["id"] == owner_source.crawl_runs.order_by("-created_at").first().pk
    assert owner_source.crawl_runs.count() == 2


def test_sync_returns_the_active_crawl_instead_of_queueing_another(owner_api, owner_source, monkeypatch):
    monkeypatch.setattr("ingestion.tasks.crawl_source.delay", lambda run_id: None)  # stays queued
    first = owner_api.post(f"{detail(owner_source)}sync/").json()

    second = owner_api.post(f"{detail(owner_source)}sync/").json()

    assert first["id"] == second["id"] and first["status"] == "queued"


def test_syncing_another_users_source_is_404(owner_api, other_source):
    response = owner_api.post(f"{detail(other_source)}sync/")

    assert response.status_code == 404
    assert other_source.crawl_runs.count() == 1


@pytest.mark.parametrize("source_id", ["abc", "99999999999999999999999"])
def test_syncing_a_malformed_or_unknown_id_is_404(owner_api, source_id):
    assert owner_api.post(f"{URL}{source_id}/sync/").status_code == 404


@pytest.mark.parametrize("body", [[], ["https://example.com/"], "https://example.com/"])
def test_a_body_that_is_not_an_object_is_refused(owner_api, body):
    response = owner_api.post(URL, body, format="json")

    assert response.status_code == 400
    assert "JSON object" in response.json()["detail"]
    assert not Source.objects.exists()


def test_anonymous_callers_are_refused(anon_api, owner_source):
    assert anon_api.get(URL).status_code == 401
    assert anon_api.post(URL, {"url": "https://example.com/"}, format="json").status_code == 401
    assert anon_api.delete(detail(owner_source)).status_code == 401


def test_a_kind_that_is_not_a_string_is_a_400_not_a_500(owner_api):
    response = owner_api.post("/api/v1/sources/", {"kind": [None, None], "url": "https://example.com/"}, format="json")

    assert response.status_code == 400 and "kind" in response.json()

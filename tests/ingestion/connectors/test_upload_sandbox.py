"""Hostile PDFs and DOCXs: the request only stores them; the sync reads them in a sandbox with limits.

The files are built here: a PDF whose pages all draw one large shared content stream (a few
kilobytes that cost pypdf minutes), and DOCXs whose document part unpacks hundreds of times over.
"""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from lxml import etree

from ingestion.actions import do_add_upload_source, do_sync_source
from ingestion.models import CrawlRun, Document, Source
from ingestion.tasks import crawl_source
from tests.conftest import SAMPLE_MARKDOWN
from tests.ingestion.conftest import stored_files
from tests.ingestion.files import (
    make_docx,
    make_pdf,
    make_repetitive_docx,
    make_shared_stream_pdf,
    make_zip,
    pdf_of_pages,
)

pytestmark = pytest.mark.django_db

RATIO_REFUSAL = "That DOCX expands more than 100 times its packed size, as archive bombs do."


@pytest.fixture
def nothing_parses_here(monkeypatch):
    """The parsers fail loudly in this process (the sandbox's child is another process), and the
    sync task is not run: what the request does is all that happens."""

    def parsed_in_the_request(*args, **kwargs):
        raise AssertionError("a PDF or DOCX was parsed in the web request")

    monkeypatch.setattr("pypdf.PdfReader", parsed_in_the_request)
    monkeypatch.setattr(etree, "fromstring", parsed_in_the_request)
    monkeypatch.setattr(etree, "XMLPullParser", parsed_in_the_request)
    monkeypatch.setattr("ingestion.tasks.crawl_source.delay", lambda run_id: None)
    return monkeypatch


def add_unchecked(owner, name: str, data: bytes) -> Source:
    """Past the form's checks, as a file whose ZIP directory lies would be: the sync runs (eager)."""
    return do_add_upload_source(owner, SimpleUploadedFile(name, data), category="article")


@pytest.mark.parametrize(
    ("name", "data"),
    [
        ("shared.pdf", make_shared_stream_pdf(300, 14000)),  # 300 pages drawing one 0.7 MB stream: minutes to read
        ("essay.docx", make_docx(("", "A short essay about walking to work."))),
    ],
)
def test_the_api_stores_a_pdf_or_docx_without_reading_it_and_queues_its_sync(
    owner_api, owner, media_root, nothing_parses_here, name, data
):
    response = owner_api.post("/api/v1/sources/", {"file": SimpleUploadedFile(name, data)}, format="multipart")

    assert response.status_code == 201, response.content
    body = response.json()
    assert body["name"] == name and body["last_run"]["status"] == "queued"
    source = Source.objects.get(owner=owner)
    assert source.upload.name.endswith(name) and len(stored_files(media_root)) == 1
    assert not Document.objects.exists()


def test_the_sync_refuses_the_shared_stream_pdf_by_the_content_it_draws(owner_client, owner, nothing_parses_here):
    response = owner_client.post(
        reverse("add-source", args=["upload"]),
        {"category": "article", "file": SimpleUploadedFile("shared.pdf", make_shared_stream_pdf(300, 14000))},
    )
    assert response.status_code == 302
    run = CrawlRun.objects.get(source__owner=owner)
    assert run.status == "queued"
    nothing_parses_here.undo()

    crawl_source(run.pk)  # what the worker does, with the default limits

    run.refresh_from_db()
    assert run.status == "failed"
    assert run.error.startswith("That PDF's pages draw more than 16.0 MB of content in all")
    assert Source.objects.get(owner=owner).upload and not Document.objects.exists()


def test_the_sync_stops_a_pdf_that_takes_longer_than_its_cpu_time(owner, settings):
    settings.TWIN_PARSE_CPU_SECONDS = 1
    settings.TWIN_PDF_MAX_CONTENT_BYTES = 10**9  # only the CPU limit stands in the way

    run = add_unchecked(owner, "shared.pdf", make_shared_stream_pdf(40, 2000)).last_run

    assert run.status == "failed"
    assert run.error == "That PDF took too long to read (more than 1 s of processing); it was stopped."
    assert not Document.objects.exists()


def test_the_sync_stops_a_pdf_that_needs_more_memory_than_allowed(owner, settings):
    settings.TWIN_PARSE_MEMORY_BYTES = 128 * 1024 * 1024
    settings.TWIN_PDF_MAX_CONTENT_BYTES = 10**9
    huge_page = pdf_of_pages(1, b"BT /F1 12 Tf 72 700 Td (x) Tj ET\n" + b" " * 60_000_000)  # 60 KB, 60 MB unpacked

    run = add_unchecked(owner, "huge.pdf", huge_page).last_run

    assert run.status == "failed"
    assert run.error == "That PDF needs more than 128.0\xa0MB of memory to read; it was stopped."


def test_the_request_refuses_a_docx_whose_directory_says_it_unpacks_too_far(owner_client, media_root):
    response = owner_client.post(
        reverse("add-source", args=["upload"]),
        {"category": "article", "file": SimpleUploadedFile("bomb.docx", make_repetitive_docx(50000))},
    )

    assert response.status_code == 400 and RATIO_REFUSAL in response.content.decode()
    assert not Source.objects.exists() and stored_files(media_root) == []


@pytest.mark.parametrize(
    ("limits", "reason"),
    [
        ({}, RATIO_REFUSAL),
        ({"TWIN_ZIP_MAX_RATIO": 10**6, "TWIN_DOCX_MAX_XML_BYTES": 100_000}, "That DOCX's text unpacks past 97.7 KB"),
    ],
)
def test_the_sync_refuses_a_docx_that_unpacks_too_far(owner, settings, limits, reason):
    for name, value in limits.items():
        setattr(settings, name, value)

    run = add_unchecked(owner, "bomb.docx", make_repetitive_docx(50000)).last_run

    assert run.status == "failed" and run.error.startswith(reason)
    assert not Document.objects.exists()


def test_a_docx_that_unpacks_too_far_inside_a_zip_fails_alone(owner_client, owner):
    archive = make_zip({"bees.md": SAMPLE_MARKDOWN, "bomb.docx": make_repetitive_docx(50000)})

    response = owner_client.post(
        reverse("add-source", args=["upload"]),
        {"category": "article", "file": SimpleUploadedFile("notes.zip", archive)},
    )

    assert response.status_code == 302
    run = Source.objects.get(owner=owner).last_run
    assert run.status == "succeeded" and (run.documents_created, run.documents_failed) == (1, 1)
    assert run.failures[0]["url"] == "upload://notes.zip/bomb.docx" and run.failures[0]["reason"] == RATIO_REFUSAL
    assert Document.objects.get(owner=owner).url == "upload://notes.zip/bees.md"


def replace_stored_file(source: Source, data: bytes):
    with open(source.upload.path, "wb") as handle:
        handle.write(data)


def test_a_good_pdf_stays_when_its_replacement_fails_to_read(owner, settings):
    source = add_unchecked(owner, "bread.pdf", make_pdf("Notes on bread", "Sourdough needs time more than skill."))
    document = Document.objects.get(source=source)
    settings.TWIN_PDF_MAX_CONTENT_BYTES = 1024 * 1024
    replace_stored_file(source, make_shared_stream_pdf(20, 2000))  # 2 MB drawn in all

    run = do_sync_source(source)

    run.refresh_from_db()
    assert run.status == "failed" and run.error.startswith("That PDF's pages draw more than 1.0 MB of content")
    kept = Document.objects.get(pk=document.pk)
    assert kept.gone_at is None and kept.raw_text == document.raw_text
    assert document.raw_text == "Notes on bread\nSourdough needs time more than skill."
    assert Source.objects.get(pk=source.pk).name == "Notes on bread"


def test_a_good_pdf_in_a_zip_stays_when_its_replacement_fails_to_read(owner, settings):
    good = make_zip({"bread.pdf": make_pdf("Notes on bread", "Sourdough needs time more than skill.")})
    source = add_unchecked(owner, "notes.zip", good)
    document = Document.objects.get(source=source)
    settings.TWIN_PDF_MAX_CONTENT_BYTES = 1024 * 1024
    replace_stored_file(source, make_zip({"bread.pdf": make_shared_stream_pdf(20, 2000)}))

    run = do_sync_source(source)

    run.refresh_from_db()
    assert run.status == "succeeded" and run.documents_failed == 1 and run.documents_gone == 0
    assert run.failures[0]["reason"].startswith("That PDF's pages draw more than 1.0 MB of content")
    kept = Document.objects.get(pk=document.pk)
    assert kept.gone_at is None and kept.raw_text == document.raw_text

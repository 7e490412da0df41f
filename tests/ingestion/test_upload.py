"""Uploading files: /sources/upload/ and do_add_upload_source."""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from features.models import Chunk
from ingestion import actions
from ingestion.actions import SourceRefused, do_add_upload_source
from ingestion.models import CrawlRun, Document, Source
from tests.conftest import SAMPLE_MARKDOWN, add_markdown_source, markdown_upload
from tests.ingestion.conftest import stored_files

pytestmark = pytest.mark.django_db

ARTICLE_HTML = """<!doctype html>
<html><head><title>Winter cycling notes</title></head><body>
<nav><a href="/">Home</a> <a href="/about">About me</a> <a href="/rss">Subscribe via RSS</a></nav>
<article><h1>Winter cycling notes</h1>
<p>I ride to work all winter, even when the canal path freezes over in January. Studded tyres made the
difference for me, and I fit them in late November every year.</p>
<p>The hardest part is not the cold but the dark: I carry two rear lights and wear a reflective sash over
my coat. Drivers see me from far away now.</p>
</article>
<footer>Copyright 2024 Example Person. All rights reserved. Powered by a static site generator.</footer>
</body></html>"""

PLAIN_TEXT = (
    "Notes on sharpening chisels\n\n"
    "I sharpen my chisels on a coarse diamond plate first, then a fine water stone. The back of the chisel "
    "must be flat before anything else, or the edge will never meet itself.\n"
)


def upload(client, name, content: bytes, category="article"):
    return client.post(
        reverse("add-source", args=["upload"]), {"category": category, "file": SimpleUploadedFile(name, content)}
    )


def assert_nothing_stored(media_root):
    assert not Source.objects.exists()
    assert not CrawlRun.objects.exists()
    assert not Document.objects.exists()
    assert stored_files(media_root) == []


def test_a_markdown_upload_becomes_one_document_with_chunks(owner_client, owner, media_root):
    response = upload(owner_client, "bees.md", SAMPLE_MARKDOWN.encode())

    assert response.status_code == 302 and response.url == reverse("sources")
    source = Source.objects.get(owner=owner)
    document = Document.objects.get(source=source)
    assert source.kind == Source.Kind.UPLOAD and source.name == "Keeping bees on a city roof"
    assert document.owner == owner and document.url == "upload://bees.md"
    assert "linden trees" in document.raw_text
    assert Chunk.objects.filter(clean_document__document=document, owner=owner).exists()
    assert source.last_run.status == "succeeded" and source.last_run.documents_created == 1
    assert [path.name for path in stored_files(media_root)] == [source.upload.name.rsplit("/", 1)[-1]]


def test_a_plain_text_upload_takes_its_first_line_as_title(owner_client, owner):
    response = upload(owner_client, "chisels.txt", PLAIN_TEXT.encode())

    assert response.status_code == 302
    document = Document.objects.get(owner=owner)
    assert document.title == "Notes on sharpening chisels"
    assert "diamond plate" in document.raw_text


def test_an_html_upload_keeps_the_article_and_drops_navigation_and_footer(owner_client, owner):
    response = upload(owner_client, "cycling.html", ARTICLE_HTML.encode())

    assert response.status_code == 302
    document = Document.objects.get(owner=owner)
    assert document.title == "Winter cycling notes"
    assert "Studded tyres made the" in document.raw_text and "reflective sash" in document.raw_text
    assert "Subscribe via RSS" not in document.raw_text
    assert "All rights reserved" not in document.raw_text


def test_a_utf8_file_with_a_byte_order_mark_is_accepted(owner_client, owner):
    response = upload(owner_client, "cafe.md", "\ufeff# Café notes\n\nA crème brûlée every Sunday.".encode())

    assert response.status_code == 302
    document = Document.objects.get(owner=owner)
    assert document.title == "Café notes" and not document.raw_text.startswith("\ufeff")


@pytest.mark.parametrize(
    ("name", "content", "reason"),
    [
        ("empty.md", b"", "The submitted file is empty."),
        ("photo.png", b"\x89PNG\r\n\x1a\n" + b"\x00" * 64, "“photo.png” is not a supported file type"),
        ("script.exe", b"MZ\x90\x00", "is not a supported file type"),
        ("notes.md.pdf", b"%PDF", "That file is not a PDF"),
        ("binary.md", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "That file looks binary"),
        ("latin1.txt", "Un café crème".encode("latin-1"), "That file is not UTF-8 text"),
        ("blank.md", b"   \n\n\t\n", "No readable text was found in that file."),
        (
            "nothing.html",
            b"<html><head><title>T</title></head><body><script>x()</script></body></html>",
            "No readable text was found in that file.",
        ),
    ],
)
def test_a_bad_upload_is_refused_with_the_reason_and_nothing_is_stored(owner_client, media_root, name, content, reason):
    response = upload(owner_client, name, content)

    assert response.status_code == 400
    assert reason in response.content.decode()
    assert_nothing_stored(media_root)


def test_a_pdf_is_read_by_the_sync_so_a_broken_one_fails_there_with_the_reason(owner_client, owner):
    response = upload(owner_client, "notes.md.pdf", b"%PDF-1.4")

    assert response.status_code == 302
    run = Source.objects.get(owner=owner).last_run
    assert run.status == "failed" and "That PDF could not be read" in run.error
    assert not Document.objects.exists()


def test_an_oversized_upload_is_refused_with_the_limit(owner_client, media_root, settings):
    settings.TWIN_MAX_UPLOAD_BYTES = 1000

    response = upload(owner_client, "long.md", b"# Long\n\n" + b"words " * 300)

    assert response.status_code == 400
    assert "the limit is 1000\xa0bytes" in response.content.decode()
    assert_nothing_stored(media_root)


def test_a_document_over_the_character_limit_is_refused(owner_client, media_root, settings):
    settings.TWIN_MAX_DOCUMENT_CHARS = 100

    response = upload(owner_client, "long.md", b"# Long\n\n" + b"words " * 30)

    assert response.status_code == 400
    assert "the limit is 100" in response.content.decode()
    assert_nothing_stored(media_root)


def test_the_source_limit_refuses_another_upload_and_stores_no_file(owner_client, owner_source, media_root, settings):
    settings.TWIN_MAX_SOURCES_PER_USER = 1
    files_before = stored_files(media_root)

    response = upload(owner_client, "more.md", b"# More\n\nAnother text about bees and their winter stores.")

    assert response.status_code == 400
    assert "You have reached the limit of 1 sources" in response.content.decode()
    assert list(Source.objects.all()) == [owner_source]
    assert stored_files(media_root) == files_before


def test_the_source_limit_counts_only_your_own_sources(owner, other_source, settings):
    settings.TWIN_MAX_SOURCES_PER_USER = 1

    assert add_markdown_source(owner).owner == owner


def test_a_failure_while_adding_an_upload_leaves_no_row_and_no_file(owner, media_root, monkeypatch):
    def broken_sync(source, **options):
        raise RuntimeError("database went away")

    monkeypatch.setattr(actions, "do_sync_source", broken_sync)

    with pytest.raises(RuntimeError):
        do_add_upload_source(owner, markdown_upload(), category="article")

    assert_nothing_stored(media_root)


def test_anonymous_visitors_cannot_upload(anon_client, media_root):
    response = upload(anon_client, "bees.md", SAMPLE_MARKDOWN.encode())

    assert response.status_code == 302 and "login" in response.url
    assert_nothing_stored(media_root)


def test_the_same_text_under_two_sources_of_one_owner_is_stored_once(owner):
    first = add_markdown_source(owner, "bees.md")
    second = add_markdown_source(owner, "bees-copy.md")

    assert Document.objects.filter(owner=owner).count() == 1
    assert Document.objects.get(owner=owner).source == first
    run = second.last_run
    assert run.status == "succeeded" and run.documents_created == 0 and run.documents_skipped == 1
    assert run.failures == [
        {
            "url": "upload://bees-copy.md",
            "reason": "Same text as “Keeping bees on a city roof”, which is already stored.",
            "failed": False,
        }
    ]


def test_the_same_text_is_stored_for_each_owner_that_uploads_it(owner, other):
    add_markdown_source(owner)
    add_markdown_source(other)

    assert Document.objects.filter(owner=owner).count() == 1
    assert Document.objects.filter(owner=other).count() == 1
    assert Chunk.objects.filter(owner=other).count() == Chunk.objects.filter(owner=owner).count() > 0


def test_deleting_an_upload_removes_its_documents_chunks_and_file(owner_client, owner, media_root):
    keep = add_markdown_source(owner, "keep.md", "# Keep\n\nThis text about tomatoes stays in the twin.")
    source = add_markdown_source(owner)
    document = Document.objects.get(source=source)
    assert Chunk.objects.filter(clean_document__document=document).exists()

    response = owner_client.post(reverse("delete-source", args=[source.pk]))

    assert response.status_code == 302
    assert not Source.objects.filter(pk=source.pk).exists()
    assert not Document.objects.filter(pk=document.pk).exists()
    assert not Chunk.objects.filter(clean_document__document_id=document.pk).exists()
    assert [path.name for path in stored_files(media_root)] == [keep.upload.name.rsplit("/", 1)[-1]]
    assert Chunk.objects.filter(clean_document__document__source=keep).exists()


def test_another_user_cannot_delete_your_source(other_client, owner_source):
    response = other_client.post(reverse("delete-source", args=[owner_source.pk]))

    assert response.status_code == 404
    assert Source.objects.filter(pk=owner_source.pk).exists()


def test_do_add_upload_source_refuses_past_the_limit(owner, owner_source, settings):
    settings.TWIN_MAX_SOURCES_PER_USER = 1

    with pytest.raises(SourceRefused, match="limit of 1 sources"):
        do_add_upload_source(owner, markdown_upload("again.md"), category="article")

"""Files: PDF, DOCX, and ZIP archives of supported files, hostile archives included."""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from ingestion.models import Document, Source
from tests.conftest import SAMPLE_MARKDOWN
from tests.ingestion.conftest import stored_files
from tests.ingestion.files import make_docx, make_pdf, make_zip

pytestmark = pytest.mark.django_db

SENTENCES = (
    "Sourdough needs time more than it needs skill.",
    "I feed my starter at eight every evening and bake on Saturday mornings.",
)


def upload(client, name, data):
    return client.post(
        reverse("add-source", args=["upload"]), {"category": "article", "file": SimpleUploadedFile(name, data)}
    )


def test_a_pdf_becomes_a_document(owner_client, owner):
    response = upload(owner_client, "bread.pdf", make_pdf("Notes on bread", *SENTENCES))

    assert response.status_code == 302
    document = Document.objects.get(owner=owner)
    assert document.title == "Notes on bread" and "starter at eight every evening" in document.raw_text
    assert document.source.name == "Notes on bread"  # named after the file until the sync read it


def test_a_docx_becomes_a_document_with_its_headings(owner_client, owner):
    response = upload(owner_client, "bread.docx", make_docx(("Heading1", "Notes on bread"), ("", SENTENCES[0])))

    assert response.status_code == 302
    document = Document.objects.get(owner=owner)
    assert document.raw_text == f"# Notes on bread\n\n{SENTENCES[0]}" and document.title == "Notes on bread"
    assert document.source.name == "Notes on bread"


def test_a_zip_becomes_one_document_per_supported_file_and_a_bad_one_fails_alone(owner_client, owner):
    archive = make_zip(
        {
            "notes/bees.md": SAMPLE_MARKDOWN,
            "notes/bread.pdf": make_pdf("Notes on bread", *SENTENCES),
            "essay.docx": make_docx(("", "On walking to work every day in every weather, and what it taught me.")),
            "broken.pdf": b"%PDF-1.4 this is not really a pdf",
            "photo.png": b"\x89PNG\r\n\x1a\n",
            "__MACOSX/._bees.md": b"\x00\x05\x16\x07",
        }
    )

    response = upload(owner_client, "writing.zip", archive)

    assert response.status_code == 302
    source = Source.objects.get(owner=owner)
    run = source.last_run
    assert run.status == "succeeded"
    assert (run.documents_created, run.documents_failed, run.documents_skipped) == (3, 1, 1)
    assert {d.metadata["path"] for d in Document.objects.filter(source=source)} == {
        "notes/bees.md",
        "notes/bread.pdf",
        "essay.docx",
    }
    failure = next(f for f in run.failures if f["failed"])
    assert failure["url"] == "upload://writing.zip/broken.pdf" and "That PDF could not be read" in failure["reason"]
    page = owner_client.get(reverse("source-detail", args=[source.pk])).content.decode()
    assert "That PDF could not be read" in page and "1</strong> failed" in page


@pytest.mark.parametrize(
    ("members", "reason"),
    [
        ({"../../etc/evil.md": "# Evil\n\nclimbs out"}, "Refused: its path leads outside the archive."),
        ({"/abs/evil.md": "# Evil\n\nabsolute"}, "Refused: its path leads outside the archive."),
        ({"C:/evil.md": "# Evil\n\ndrive letter"}, "Refused: its path leads outside the archive."),
        ({"bomb.md": "a" * (20 * 1024 * 1024)}, "expands more than 100 times its packed size"),
    ],
)
def test_a_hostile_entry_is_refused_and_the_rest_is_read(owner_client, owner, members, reason):
    response = upload(owner_client, "mixed.zip", make_zip({"good.md": SAMPLE_MARKDOWN, **members}))

    assert response.status_code == 302
    run = Source.objects.get(owner=owner).last_run
    assert (run.documents_created, run.documents_failed) == (1, 1)
    assert reason in run.failures[0]["reason"]


def test_an_archive_past_its_total_expanded_size_stops_at_the_limit(owner_client, owner, settings):
    settings.TWIN_ZIP_MAX_TOTAL_BYTES = 4000
    members = {f"post{i}.md": f"# Post {i}\n\n" + "Words of the post. " * 100 for i in range(4)}

    upload(owner_client, "many.zip", make_zip(members))

    run = Source.objects.get(owner=owner).last_run
    assert run.documents_created == 2 and run.documents_failed == 2
    assert all("expands past" in f["reason"] for f in run.failures)


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"PK\x03\x04 not really a zip", "That file is not a valid ZIP archive."),
        (make_zip({f"f{i}.md": "# x\n\ny" for i in range(6)}), "That archive has more than 5 entries."),
        (make_zip({"photo.png": b"\x89PNG"}), "That archive has no file that could be read."),
    ],
)
def test_a_bad_archive_is_refused_with_the_reason_and_nothing_is_stored(
    owner_client, media_root, settings, data, reason
):
    settings.TWIN_ZIP_MAX_ENTRIES = 5

    response = upload(owner_client, "bad.zip", data)

    assert response.status_code == 400 and reason in response.content.decode()
    assert not Source.objects.exists() and stored_files(media_root) == []


@pytest.mark.parametrize(
    ("name", "data", "reason"),
    [
        ("fake.pdf", b"Dear diary, this is no PDF", "That file is not a PDF"),
        ("broken.docx", b"not a zip at all", "That DOCX could not be read"),
        ("hollow.docx", make_zip({"word/other.xml": "<x/>"}), "That DOCX could not be read"),
    ],
)
def test_a_bad_document_is_refused_with_the_reason(owner_client, media_root, name, data, reason):
    response = upload(owner_client, name, data)

    assert response.status_code == 400 and reason in response.content.decode()
    assert not Source.objects.exists() and stored_files(media_root) == []


@pytest.mark.parametrize(
    ("name", "data", "reason"),
    [
        ("broken.pdf", b"%PDF-1.4\n1 0 obj<<>>", "That PDF could not be read"),
        ("empty.pdf", make_pdf(), "No readable text was found in that file."),
    ],
)
def test_a_pdf_that_cannot_be_read_fails_its_sync_with_the_reason(owner_client, owner, name, data, reason):
    """Reading a PDF is the sync's work (in a sandbox), so the request stores it and the sync says why it failed."""
    response = upload(owner_client, name, data)

    assert response.status_code == 302
    source = Source.objects.get(owner=owner)
    assert source.upload and source.last_run.status == "failed" and reason in source.last_run.error
    assert not Document.objects.exists()
    page = owner_client.get(reverse("source-detail", args=[source.pk])).content.decode()
    assert reason in page

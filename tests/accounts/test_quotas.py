"""Per-user quotas: bytes stored and training runs per day, each refused with a clear message on the
page and in the API, storing nothing. (The number of sources: tests/ingestion and tests/api.)"""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from accounts.quotas import stored_bytes
from ingestion.models import Source
from tests.api.conftest import stub_evaluate, stub_train_lora
from tests.conftest import SAMPLE_MARKDOWN, add_markdown_source
from training.models import TrainingRun

pytestmark = pytest.mark.django_db
MORE = b"# More bees\n\nA second text about the hives on the roof and the linden trees in July."


@pytest.fixture(autouse=True)
def _quick_training(monkeypatch):
    monkeypatch.setattr("training.tasks.train_lora", stub_train_lora)
    monkeypatch.setattr("training.tasks.evaluate", stub_evaluate)


@pytest.fixture(autouse=True)
def _private_data_dir(settings, tmp_path):
    settings.TWIN_DATA_DIR = tmp_path / "data"
    settings.MEDIA_ROOT = settings.TWIN_DATA_DIR / "uploads"


def files_under(root):
    return sorted(str(p) for p in root.rglob("*") if p.is_file()) if root.exists() else []


def test_stored_bytes_count_the_users_files_and_document_text(owner, other, settings):
    assert stored_bytes(owner) == 0
    add_markdown_source(owner)
    text = len(SAMPLE_MARKDOWN.encode())

    after_upload = stored_bytes(owner)
    assert after_upload > 2 * text  # the uploaded file, the document's text, the dataset's JSONL
    from training.actions import do_start_training_run

    do_start_training_run(owner)
    assert stored_bytes(owner) > after_upload  # the adapter
    assert stored_bytes(other) == 0


def test_a_full_quota_refuses_a_new_source_on_the_page_and_stores_nothing(owner_client, owner_source, settings):
    settings.TWIN_MAX_STORED_BYTES = stored_bytes(owner_source.owner)
    files = files_under(settings.TWIN_DATA_DIR)

    response = owner_client.post(
        "/sources/add/upload/", {"category": "article", "file": SimpleUploadedFile("m.md", MORE)}
    )

    assert response.status_code == 400
    assert "its limit is" in response.content.decode() and "delete a source" in response.content.decode()
    assert list(Source.objects.all()) == [owner_source] and files_under(settings.TWIN_DATA_DIR) == files


def test_an_upload_that_would_pass_the_quota_is_refused_in_the_api(owner_api, owner_source, settings):
    settings.TWIN_MAX_STORED_BYTES = stored_bytes(owner_source.owner) + len(MORE) - 1

    response = owner_api.post("/api/v1/sources/", {"file": SimpleUploadedFile("m.md", MORE)}, format="multipart")

    assert response.status_code == 400 and "its limit is" in response.json()["detail"]
    assert Source.objects.count() == 1

    settings.TWIN_MAX_STORED_BYTES += 1
    assert (
        owner_api.post("/api/v1/sources/", {"file": SimpleUploadedFile("m.md", MORE)}, format="multipart").status_code
        == 201
    )


def test_a_full_quota_refuses_a_sync_with_the_reason(owner_client, owner_api, owner_source, settings):
    settings.TWIN_MAX_STORED_BYTES = 1
    runs = owner_source.crawl_runs.count()

    page = owner_client.post(f"/sources/{owner_source.pk}/sync/", follow=True)
    api = owner_api.post(f"/api/v1/sources/{owner_source.pk}/sync/")

    assert "its limit is 1" in page.content.decode()
    assert api.status_code == 400 and "its limit is 1" in api.json()["detail"]
    assert owner_source.crawl_runs.count() == runs


def test_another_users_quota_is_their_own(owner, other, owner_source, settings):
    settings.TWIN_MAX_STORED_BYTES = stored_bytes(owner) + 1  # the owner is (almost) full, the other empty

    add_markdown_source(other, "sailing.md", "# Sailing\n\nI sail a small dinghy on the lake every Sunday.")

    assert Source.objects.for_user(other).count() == 1


def test_runs_per_day_are_limited_with_a_clear_message(owner_client, owner_api, owner_source, settings):
    settings.TWIN_MAX_RUNS_PER_DAY = 1
    assert owner_api.post("/api/v1/training-runs/", {}, format="json").status_code == 201

    api = owner_api.post("/api/v1/training-runs/", {}, format="json")
    page = owner_client.post("/training/runs/start/", follow=True)

    assert api.status_code == 400 and "1 training runs in the last 24 hours" in api.json()["detail"]
    assert "try again tomorrow" in page.content.decode()
    assert TrainingRun.objects.count() == 1


def test_yesterdays_runs_do_not_count(owner_api, owner_source, settings):
    from datetime import timedelta

    from django.utils import timezone

    settings.TWIN_MAX_RUNS_PER_DAY = 1
    owner_api.post("/api/v1/training-runs/", {}, format="json")
    TrainingRun.objects.update(created_at=timezone.now() - timedelta(hours=25))

    assert owner_api.post("/api/v1/training-runs/", {}, format="json").status_code == 201


def test_a_sync_that_reaches_the_quota_while_storing_stops_there_keeping_what_it_stored(owner, settings, tmp_path):
    """The quota was checked only when a sync started: one sync could store far past it."""
    from ingestion.actions import do_add_source
    from ingestion.models import Document
    from tests.ingestion.connectors.test_github import make_repo

    settings.TWIN_GIT_ALLOW_LOCAL = True
    notes = {f"notes/{i}.md": f"# Note {i}\n\n" + f"Bees and hives, part {i}. " * 80 for i in range(6)}
    size = len(notes["notes/0.md"].encode())
    settings.TWIN_MAX_STORED_BYTES = stored_bytes(owner) + 2 * size + size // 2  # room for two and a half notes

    source = do_add_source(owner, "github", {"url": make_repo(tmp_path / "notes", notes)})

    run = source.last_run
    assert run.status == "failed"
    assert run.error.startswith("The sync stopped: Your twin stores") and "What it stored before is kept." in run.error
    stored = Document.objects.filter(source=source).order_by("metadata__path")
    assert [d.metadata["path"] for d in stored] == ["notes/0.md", "notes/1.md"]
    assert all(d.raw_text == notes[d.metadata["path"]] for d in stored)  # whole documents, nothing half-written
    assert run.documents_created == 2

"""`manage.py backup` and `restore`: a real pg_dump / pg_restore of the test database and a
tar of the data directory; after a restore the rows and the files are back, byte for byte."""

import tarfile
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from rest_framework.test import APIClient

from accounts.actions import do_delete_account, do_issue_api_token
from accounts.models import ApiToken, User
from features.models import Chunk, DatasetVersion
from ingestion.models import Document, Source
from tests.accounts.test_delete_account import files_under, rows_of
from tests.api.conftest import SAILING_LOG, stub_evaluate, stub_train_lora
from tests.conftest import add_markdown_source, make_user
from training.actions import do_start_training_run
from training.models import ModelVersion

pytestmark = pytest.mark.django_db(transaction=True)  # pg_dump and pg_restore see only committed rows


@pytest.fixture
def data_dir(settings, tmp_path):
    settings.TWIN_DATA_DIR = tmp_path / "data"
    settings.MEDIA_ROOT = settings.TWIN_DATA_DIR / "uploads"
    return settings.TWIN_DATA_DIR


def snapshot(*users) -> dict:
    return {
        "users": sorted(User.objects.values_list("username", flat=True)),
        "rows": {user.username: rows_of(user.pk) for user in users},
        "sources": list(Source.objects.order_by("pk").values()),
        "chunk_vectors": [list(v) for v in Chunk.objects.order_by("pk").values_list("embedding", flat=True)],
        "datasets": list(DatasetVersion.objects.order_by("pk").values("pk", "path", "sha256")),
        "models": list(ModelVersion.objects.order_by("pk").values("pk", "adapter_path", "sha256", "status")),
    }


def test_a_backup_restores_every_row_and_file(transactional_db, data_dir, tmp_path, monkeypatch):
    monkeypatch.setattr("training.tasks.train_lora", stub_train_lora)
    monkeypatch.setattr("training.tasks.evaluate", stub_evaluate)  # the gate runs after training now
    owner, other = make_user("alice"), make_user("bob")
    add_markdown_source(owner)
    add_markdown_source(other, "sailing.md", SAILING_LOG)
    do_start_training_run(owner)
    _, raw_token = do_issue_api_token(owner, "laptop")
    before, files_before = snapshot(owner, other), files_under(data_dir)
    assert before["rows"]["alice"]["Chunk"] > 0 and ModelVersion.objects.exists()
    assert {path.split("/")[0] for path in files_before} >= {"uploads", "datasets", "adapters"}
    archive = tmp_path / "backups" / "twinsite.tar.gz"

    call_command("backup", str(archive), stdout=StringIO())

    assert archive.is_file() and not archive.with_name(archive.name + ".partial").exists()
    # Then things change: an account goes (rows and files), another arrives with a file of its own.
    do_delete_account(owner)
    mallory = make_user("mallory")
    add_markdown_source(mallory, "later.md", "# Later\n\nWritten after the backup, so the restore must not keep it.")
    assert files_under(data_dir) != files_before

    call_command("restore", str(archive), "--yes", stdout=StringIO())

    assert snapshot(owner, other) == before
    assert files_under(data_dir) == files_before
    assert not User.objects.filter(username="mallory").exists()
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw_token}")
    listed = client.get("/api/v1/sources/").json()["results"]  # the restored token hash still admits its owner
    assert [s["id"] for s in listed] == [s["id"] for s in before["sources"] if s["owner_id"] == owner.pk]
    # The restored database is a working one: new rows get fresh ids, the pipeline runs on.
    add_markdown_source(make_user("dora"), "dora.md", "# Dora\n\nA short note about keeping a worm farm in a flat.")
    assert Document.objects.count() == 3 and ApiToken.objects.filter(owner__username="alice").count() == 1


def test_restore_needs_confirmation(transactional_db, tmp_path):
    with pytest.raises(CommandError, match="--yes"):
        call_command("restore", str(tmp_path / "any.tar.gz"))


def test_restore_refuses_an_archive_it_did_not_write(transactional_db, data_dir, tmp_path):
    make_user("alice")
    stranger = tmp_path / "other.tar.gz"
    note = tmp_path / "note.txt"
    note.write_text("not a backup")
    with tarfile.open(stranger, "w:gz") as tar:
        tar.add(note, arcname="note.txt")

    with pytest.raises(CommandError, match="not a Twinsite backup"):
        call_command("restore", str(stranger), "--yes")
    with pytest.raises(CommandError, match="Cannot read"):
        call_command("restore", str(note), "--yes")

    assert User.objects.filter(username="alice").exists()

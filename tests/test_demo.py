"""seed_demo: the demo twin with its corpus ingested, a staff reviewer, idempotent, development only."""

from io import StringIO
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from accounts.models import User
from features.models import Chunk, DatasetVersion
from ingestion.management.commands import seed_demo
from ingestion.models import Document, Source

pytestmark = pytest.mark.django_db

CORPUS = sorted(seed_demo.CORPUS_DIR.iterdir())


@pytest.fixture(autouse=True)
def _private_media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"


@pytest.fixture
def debug(settings):
    settings.DEBUG = True


def seed(*args) -> str:
    out = StringIO()
    call_command("seed_demo", *args, stdout=out)
    return out.getvalue()


def test_seeding_creates_the_demo_twin_a_staff_admin_and_ingests_every_corpus_file(debug):
    output = seed()

    demo = User.objects.get(username="demo")
    assert demo.twin.auto_train and demo.twin.name == "Robin Vale"
    assert demo.check_password("twinsite-demo") and not demo.is_staff
    admin = User.objects.get(username="admin")
    assert admin.is_staff and admin.is_superuser
    sources = Source.objects.filter(owner=demo)
    assert len(CORPUS) >= 5 and sources.count() == len(CORPUS)
    assert sorted(Path(s.upload.name).name.split("-", 1)[1] for s in sources) == [p.name for p in CORPUS]
    for source in sources:
        assert source.last_run.status == "succeeded", source.last_run.error
        document = Document.objects.get(source=source)
        assert Chunk.objects.filter(clean_document__document=document, owner=demo).exists(), source.name
    assert DatasetVersion.objects.filter(owner=demo).exists()
    assert f"{len(CORPUS)} corpus files queued" in output


def test_seeding_twice_adds_nothing(debug):
    seed()
    counts = [model.objects.count() for model in (User, Source, Document, Chunk, DatasetVersion)]

    output = seed()

    assert [model.objects.count() for model in (User, Source, Document, Chunk, DatasetVersion)] == counts
    assert "0 corpus files queued" in output


def test_seeding_refuses_with_debug_off(settings):
    settings.DEBUG = False

    with pytest.raises(CommandError, match="DEBUG off"):
        seed()

    assert not User.objects.exists() and not Source.objects.exists()


def test_seeding_with_force_runs_with_debug_off_but_never_creates_the_admin(settings, tmp_path, monkeypatch):
    settings.DEBUG = False
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "one.md").write_text("# One\n\nA single short demo text about planting garlic in October.")
    monkeypatch.setattr(seed_demo, "CORPUS_DIR", corpus)

    output = seed("--force")

    demo = User.objects.get(username="demo")
    assert Document.objects.filter(owner=demo).count() == 1
    assert not User.objects.filter(username="admin").exists()
    assert not User.objects.filter(is_staff=True).exists() and not User.objects.filter(is_superuser=True).exists()
    assert "twinsite-admin" not in output and "createsuperuser" in output

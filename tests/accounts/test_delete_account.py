"""A user deletes their account from the UI or the API: every row and every file they own
goes, and nobody else's. The test looks in every owned table and on disk."""

import hashlib
from pathlib import Path

import pytest
from django.apps import apps
from django.conf import settings
from django.urls import reverse
from rest_framework.test import APIClient

from accounts.actions import do_issue_api_token, user_data_dirs
from accounts.models import User
from accounts.publication import do_ensure_publication
from accounts.sharing import do_create_group, do_invite
from chat.actions import do_answer, do_edit_draft, do_write
from chat.models import Message
from features.models import DatasetVersion
from tests.api.conftest import SAILING_LOG
from tests.api.test_token_scopes import client_with
from tests.conftest import SAMPLE_MARKDOWN, add_markdown_source
from training.actions import do_queue_preference_run, do_start_training_run
from training.experiments import do_start_experiment

pytestmark = pytest.mark.django_db

PASSWORD = "correct horse battery"


@pytest.fixture
def data_dir(settings, tmp_path):
    """A data directory of the test's own, so 'every file' means every file."""
    settings.TWIN_DATA_DIR = tmp_path / "data"
    settings.MEDIA_ROOT = settings.TWIN_DATA_DIR / "uploads"
    return settings.TWIN_DATA_DIR


def files_under(root: Path) -> dict[str, str]:
    return {
        str(path.relative_to(root)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(root.rglob("*"))
        if path.is_file()
    }


def owned_models():
    """Every model with an `owner` foreign key to the user, wherever it lives."""
    return [
        model
        for model in apps.get_models()
        if any(f.name == "owner" and f.is_relation and f.related_model is User for f in model._meta.get_fields())
    ]


def rows_of(user_id: int) -> dict[str, int]:
    counts = {model.__name__: model.objects.filter(owner_id=user_id).count() for model in owned_models()}
    counts["Message"] = Message.objects.filter(conversation__owner_id=user_id).count()
    return counts


def build_twin(user, filename, text, question):
    """Every pipeline stage, through the real actions: upload, features, datasets, LoRA training, chat."""
    add_markdown_source(user, filename, text)
    do_queue_preference_run(DatasetVersion.objects.for_user(user).instruct().get())
    run = do_start_training_run(user)
    run.refresh_from_db()
    assert run.status == "succeeded", run.error
    do_start_experiment(user, {"max_steps": [1, 2]})  # two more (short) runs, one after the other
    do_answer(user, question)
    draft = do_write(user, f"a short post: {question}", form="post", length="short")
    draft.refresh_from_db()
    do_edit_draft(draft, "My own version of it.")  # a correction too
    do_issue_api_token(user, "laptop")
    # Sharing rows too: a group, an invitation in it, and a publication.
    do_invite(user, f"friend-of-{user.username}@example.com", do_create_group(user, "Friends"))
    do_ensure_publication(user)


def test_deleting_an_account_removes_every_owned_row_and_file_and_nothing_else(data_dir, owner, other, client):
    build_twin(other, "sailing.md", SAILING_LOG, "How long is your boat?")
    others_files = files_under(data_dir)
    others_rows = rows_of(other.pk)
    build_twin(owner, "bees.md", SAMPLE_MARKDOWN, "How much honey does a hive give in July?")
    owners_files = {path: sha for path, sha in files_under(data_dir).items() if path not in others_files}
    before = rows_of(owner.pk)
    # The test is only as good as what it starts with: every owned model has rows, every area has files.
    assert all(before.values()), {name: n for name, n in before.items() if not n}
    assert {path.split("/")[0] for path in owners_files} >= {"uploads", "datasets", "adapters"}
    assert all(f"/{owner.pk}/" in f"/{path}" for path in owners_files)

    client.force_login(owner)
    response = client.post(reverse("delete-account"), {"password": PASSWORD})

    assert response.status_code == 302 and response["Location"] == reverse("home")
    assert not User.objects.filter(pk=owner.pk).exists()
    assert all(count == 0 for count in rows_of(owner.pk).values()), rows_of(owner.pk)
    assert files_under(data_dir) == others_files  # the owner's files are gone; the other's are byte for byte intact
    assert not any(folder.exists() for folder in user_data_dirs(owner.pk))
    assert rows_of(other.pk) == others_rows
    assert "_auth_user_id" not in client.session
    assert client.get(reverse("dashboard")).status_code == 302


def test_the_confirmation_page_says_what_goes(owner_client, owner_source):
    page = owner_client.get(reverse("delete-account")).content.decode()

    assert "cannot be undone" in page and "<li>1 sources</li>" in page and "<li>1 documents</li>" in page
    assert 'name="password"' in page


def test_a_wrong_password_deletes_nothing(owner_client, owner, owner_source):
    before = rows_of(owner.pk)

    response = owner_client.post(reverse("delete-account"), {"password": "wrong"})

    assert response.status_code == 400 and "nothing was deleted" in response.content.decode()
    assert User.objects.filter(pk=owner.pk).exists() and rows_of(owner.pk) == before
    assert Path(owner_source.upload.path).exists()


def test_deleting_through_the_api_needs_the_password_and_a_full_access_token(data_dir, owner, other):
    add_markdown_source(owner)
    add_markdown_source(other, "sailing.md", SAILING_LOG)
    others_files = files_under(data_dir)
    scoped, _ = client_with(owner, scopes=["read", "chat"])
    full, _ = client_with(owner)

    assert scoped.post("/api/v1/account/delete/", {"password": PASSWORD}, format="json").status_code == 403
    wrong = full.post("/api/v1/account/delete/", {"password": "wrong"}, format="json")
    assert wrong.status_code == 400 and "password" in wrong.json()
    assert User.objects.filter(pk=owner.pk).exists()

    response = full.post("/api/v1/account/delete/", {"password": PASSWORD}, format="json")

    assert response.status_code == 200 and response.json()["hub_repository"] is None  # no Hub configured
    assert not User.objects.filter(pk=owner.pk).exists()
    assert all(count == 0 for count in rows_of(owner.pk).values())
    assert files_under(data_dir) == {path: sha for path, sha in others_files.items() if f"/{owner.pk}/" not in path}
    assert not any(folder.exists() for folder in user_data_dirs(owner.pk))
    assert full.get("/api/v1/sources/").status_code == 401  # its token went with it
    assert User.objects.filter(pk=other.pk).exists()


def test_anonymous_callers_delete_nothing(anon_client, owner):
    assert anon_client.post(reverse("delete-account"), {"password": PASSWORD}).status_code == 302
    assert APIClient().post("/api/v1/account/delete/", {"password": PASSWORD}, format="json").status_code == 401
    assert User.objects.filter(pk=owner.pk).exists()


def test_guessing_the_password_to_delete_is_locked_out_like_a_login(owner, owner_source):
    """A stolen session is no unlimited guessing oracle: each wrong password counts as a failed login."""
    from django.test import Client

    limit = settings.AXES_FAILURE_LIMIT
    client = Client(REMOTE_ADDR="198.51.100.23")
    client.force_login(owner)
    for _ in range(limit - 1):
        assert client.post(reverse("delete-account"), {"password": "guess"}).status_code == 400

    locked = client.post(reverse("delete-account"), {"password": "guess"})  # the failure that reaches the limit
    right = client.post(reverse("delete-account"), {"password": PASSWORD})

    assert locked.status_code == right.status_code == 429
    assert "Too many failed sign-in attempts" in right.content.decode()
    assert User.objects.filter(pk=owner.pk).exists() and Path(owner_source.upload.path).exists()


def test_guessing_through_the_api_is_locked_out_too(owner):
    full, _ = client_with(owner)
    for _ in range(settings.AXES_FAILURE_LIMIT):
        full.post("/api/v1/account/delete/", {"password": "guess"}, format="json")

    response = full.post("/api/v1/account/delete/", {"password": PASSWORD}, format="json")

    assert response.status_code == 429 and "Too many failed sign-in attempts" in response.json()["detail"]
    assert User.objects.filter(pk=owner.pk).exists()

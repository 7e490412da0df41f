"""One user's objects at every pipeline stage, and what "nothing changed" compares.

The owned models are discovered from the apps, not listed: every model with a
foreign-key chain to a user through `owner` (a chat message through its
conversation). A snapshot holds every owned row of a user and every file in the
data directory with its sha256.
"""

import hashlib
from functools import cached_property
from pathlib import Path
from types import SimpleNamespace

from django.apps import apps
from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import models

from accounts.actions import do_issue_api_token
from accounts.publication import do_ensure_publication, do_update_publication
from accounts.sharing import do_create_group, do_invite
from chat.actions import do_answer, do_edit_draft, do_write
from chat.following import wait_for_answer
from chat.visitors import do_visitor_ask
from features.models import DatasetVersion
from tests.audience import NO_NOTES, exchange
from tests.conftest import GARDEN_NOTES, add_markdown_source, make_user
from training.actions import do_queue_preference_run, do_start_training_run
from training.experiments import do_start_experiment
from training.models import ModelVersion

FIRST_PARTY_APPS = ("accounts", "ingestion", "features", "training", "chat")
VISITOR_ID = "isolation-visitor-of-the-twin"  # the anonymous visitor of the owner's published twin
OPERA = "What is your favourite opera?"  # the visitor's question: the notes do not cover it


class World:
    """One user's objects at every pipeline stage, built on first use through the real actions."""

    def __init__(self, user, filename, text, question):
        self.user, self.filename, self.text, self.question = user, filename, text, question

    @cached_property
    def source(self):
        return add_markdown_source(self.user, self.filename, self.text)

    @cached_property
    def document(self):
        return self.source.documents.get()

    @cached_property
    def dataset(self):
        return DatasetVersion.objects.for_user(self.source.owner).get()  # the source's pipeline builds it

    @cached_property
    def preference_run(self):
        run = do_queue_preference_run(self.dataset)  # eager: the tiny base model answers
        run.refresh_from_db()
        return run

    @cached_property
    def run(self):
        return do_start_training_run(self.user, self.dataset)

    @cached_property
    def model_version(self):
        return ModelVersion.objects.get(training_run=self.run)

    @cached_property
    def experiment(self):
        self.model_version  # noqa: B018  the world's own run first: a twin trains one run at a time
        return do_start_experiment(self.user, {"seed": [1, 2]})  # eager: both (stub) runs have finished

    @cached_property
    def answer(self):
        return do_answer(self.source.owner, self.question)

    @cached_property
    def conversation(self):
        return self.answer.conversation

    @cached_property
    def draft(self):
        draft = do_write(self.source.owner, f"a short post about {self.question}", form="post", length="short")
        draft.refresh_from_db()
        return do_edit_draft(draft, "The owner's own version.")  # a correction too

    @property
    def unanswered_question(self) -> str:
        return f"A visitor asks the twin of {self.user.username} about something the notes lack"

    @cached_property
    def unanswered_answer(self):
        """A visitor's question to this user's twin and its "no notes" answer (the Audience pages' rows)."""
        visitor = f"visitor-of-{self.user.username}"
        return exchange(self.user, self.unanswered_question, visitor=visitor, grounding=NO_NOTES)

    @cached_property
    def unanswered_conversation(self):
        return self.unanswered_answer.conversation

    @cached_property
    def publication(self):
        return do_update_publication(do_ensure_publication(self.user), enabled=True)

    @cached_property
    def widget_key(self):  # as the routes' placeholders read an object: its "pk"
        return SimpleNamespace(pk=self.publication.widget_key)

    @cached_property
    def slug(self):
        return SimpleNamespace(pk=self.publication.slug)

    @cached_property
    def visitor_answer(self):
        """A visitor's answer (a question the notes do not cover: no owner's text in it, whatever the sources)."""
        self.shared_source  # noqa: B018  visitors are answered from the sources shared with the audience
        return wait_for_answer(do_visitor_ask(self.publication, VISITOR_ID, OPERA))

    @cached_property
    def token(self):
        return do_issue_api_token(self.user, f"{self.user.username}'s laptop")[0]

    @cached_property
    def group(self):
        return do_create_group(self.user, "readers")

    @cached_property
    def invitation(self):
        """The invited identity's invitation (the owner's row): a reader of the owner's twin, in a group."""
        make_user(f"reader-of-{self.user.username}")
        return do_invite(self.user, f"reader-of-{self.user.username}", self.group)

    @property
    def invited(self):
        return self.invitation.member

    @cached_property
    def shared_source(self):
        """A second source, shared with the twin's audience (the world's first one stays private)."""
        return add_markdown_source(self.user, "garden.md", GARDEN_NOTES).set_audience(True)

    @cached_property
    def audience(self) -> str:
        """The twin as its audience names it (the owner's username), with a source to answer from."""
        self.shared_source  # noqa: B018
        self.invitation  # noqa: B018
        return self.user.username

    @cached_property
    def audience_answer(self):
        self.audience  # noqa: B018
        return do_answer(self.user, "When do your tomatoes ripen?", asker=self.invited)

    @cached_property
    def audience_conversation(self):
        return self.audience_answer.conversation

    def build_all(self):
        for name in (
            "source",
            "document",
            "dataset",
            "preference_run",
            "run",
            "model_version",
            "experiment",
            "answer",
            "conversation",
            "draft",
            "visitor_answer",
            "unanswered_answer",
            "unanswered_conversation",
            "audience_answer",
            "audience_conversation",
            "token",
            "invitation",
            "publication",
        ):
            getattr(self, name)
        return self

    def object_for(self, model):
        """One of the world's rows of an owned model (for the admin's change, delete and history pages)."""
        self.build_all()
        return model.objects.filter(**{owner_path(model): self.user}).order_by("pk").first()


class AnyIds:
    """Stands in for a World where only the shape of a path or body matters: every object has this id."""

    def __init__(self, pk=999_999):
        self.pk = pk

    def __getattr__(self, name):
        return SimpleNamespace(pk=self.pk)


def owner_path(model) -> str | None:
    """The lookup from a model to the user who owns it ("owner", "conversation__owner"), or None."""
    user_model = get_user_model()
    fields = [f for f in model._meta.get_fields() if isinstance(f, models.ForeignKey | models.OneToOneField)]
    for field in fields:
        if field.name == "owner" and field.related_model is user_model:
            return "owner"
    for field in fields:  # owned through a parent (a message through its conversation)
        if field.related_model not in (user_model, model) and not field.null and field.many_to_one:
            parent = owner_path(field.related_model)
            if parent:
                return f"{field.name}__{parent}"
    return None


def owned_models() -> list[type[models.Model]]:
    """Every model of the project's apps that a user owns, discovered from the foreign keys."""
    found = []
    for label in FIRST_PARTY_APPS:
        found += [m for m in apps.get_app_config(label).get_models() if owner_path(m)]
    return found


def _plain(value):
    return value.tolist() if hasattr(value, "tolist") else value  # vectors: numpy arrays compare elementwise


def owned_rows(user) -> dict:
    """Every row the user owns, as stored, and the user's own row."""
    rows = {
        model.__name__: [
            tuple(_plain(v) for v in row)
            for row in model.objects.filter(**{owner_path(model): user}).order_by("pk").values_list()
        ]
        for model in owned_models()
    }
    rows["User"] = list(get_user_model().objects.filter(pk=user.pk).values_list())
    return rows


def data_files(skip_users=()) -> dict[str, str]:
    """Every file under the data directory (path -> sha256), but those of the given users' own folders."""
    from accounts.actions import user_data_dirs

    root = Path(settings.TWIN_DATA_DIR)
    skipped = [folder for user in skip_users for folder in user_data_dirs(user.pk)]
    files = {}
    for path in sorted(root.rglob("*")):
        if path.is_file() and not any(path.is_relative_to(folder) for folder in skipped):
            files[str(path.relative_to(root))] = hashlib.sha256(path.read_bytes()).hexdigest()
    return files


def snapshot(user, skip_users=()) -> dict:
    return {"rows": owned_rows(user), "files": data_files(skip_users)}

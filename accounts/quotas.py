"""Per-user quotas: bytes stored and training runs per day (sources: ingestion.actions).

One user must not fill the disk or the GPU queue for everyone. Each check raises
QuotaReached with a message the user can act on; the apps turn it into their own
refusal (a form error on the page, a 400 with `detail` in the API).

Bytes stored are the user's files (uploads, datasets, adapters, run checkpoints, all
under their own folders), the text of their documents and the text of their conversations
(the OpenAI endpoint stores the history a client sends) in the database.
"""

from datetime import timedelta
from pathlib import Path

from django.conf import settings
from django.db.models import BigIntegerField, Func, Sum
from django.db.models.functions import Coalesce
from django.template.defaultfilters import filesizeformat
from django.utils import timezone

from .actions import user_data_dirs


class OctetLength(Func):
    """PostgreSQL's octet_length: a text's size in bytes (Length counts characters)."""

    function = "octet_length"
    output_field = BigIntegerField()


class QuotaReached(Exception):
    """A quota is used up; the message says which and what to do."""


def _folder_bytes(folder: Path) -> int:
    return sum(path.stat().st_size for path in folder.rglob("*") if path.is_file()) if folder.is_dir() else 0


def stored_bytes(user) -> int:
    files = sum(_folder_bytes(folder) for folder in user_data_dirs(user.pk))
    # Reverse relations: no import of the downstream apps.
    text = user.documents.aggregate(n=Coalesce(Sum(OctetLength("raw_text")), 0))["n"]
    chats = user.conversations.aggregate(n=Coalesce(Sum(OctetLength("messages__content")), 0))["n"]
    return files + text + chats


def check_storage(user, adding: int = 0) -> None:
    """Refuse when the user's stored bytes, with `adding` more, would pass the limit."""
    limit = settings.TWIN_MAX_STORED_BYTES
    used = stored_bytes(user)
    if used + adding > limit or used >= limit:
        raise QuotaReached(
            f"Your twin stores {filesizeformat(used)}, its limit is {filesizeformat(limit)}: "
            "delete a source (or an old model version) to add more."
        )


def check_runs_today(user) -> None:
    limit = settings.TWIN_MAX_RUNS_PER_DAY
    started = user.training_runs.filter(created_at__gte=timezone.now() - timedelta(days=1)).count()
    if started >= limit:
        raise QuotaReached(
            f"Your twin has started {started} training runs in the last 24 hours, its limit is {limit}: "
            "try again tomorrow."
        )

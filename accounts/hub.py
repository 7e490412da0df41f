"""The twin's private repository on the Hugging Face Hub, where staff may push its approved
adapters (training/export.py): one per user, `TWIN_HF_REPO_PREFIX` + the user's id, reached at
TWIN_HF_ENDPOINT with TWIN_HF_TOKEN. Deleting the account deletes it too: after the rows are
gone, so a Hub that cannot be reached never keeps an account alive; the outcome is logged and
told to the user (the repository id, for staff to delete it by hand when it failed).
"""

import logging
from dataclasses import dataclass

from django.conf import settings

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class HubDeletion:
    repo_id: str
    deleted: bool
    error: str = ""

    @property
    def message(self) -> str:
        if self.deleted:
            return f"Your twin's Hugging Face Hub repository {self.repo_id} is deleted."
        return (
            f"Your twin's Hugging Face Hub repository {self.repo_id} could not be deleted ({self.error}); "
            "staff have been told and will delete it."
        )

    def as_dict(self) -> dict:
        return {"repo_id": self.repo_id, "deleted": self.deleted, "error": self.error}


def hub_configured() -> bool:
    return bool(settings.TWIN_HF_TOKEN and settings.TWIN_HF_REPO_PREFIX)


def twin_repo_id(user_id: int) -> str:
    return f"{settings.TWIN_HF_REPO_PREFIX}{user_id}"


def hub_api():
    from huggingface_hub import HfApi

    return HfApi(endpoint=settings.TWIN_HF_ENDPOINT, token=settings.TWIN_HF_TOKEN)


def delete_twin_repository(user_id: int) -> HubDeletion | None:
    """Delete the user's Hub repository (none pushed: nothing to do); None when no Hub is configured."""
    if not hub_configured():
        return None
    repo_id = twin_repo_id(user_id)
    try:
        hub_api().delete_repo(repo_id=repo_id, repo_type="model", missing_ok=True)
    except Exception as exc:  # the Hub unreachable, a refused token, a server error: the account goes anyway
        logger.error("could not delete Hub repository %s of deleted user %s: %s", repo_id, user_id, exc)
        reason = (str(exc).strip().splitlines() or [exc.__class__.__name__])[0][:200]
        return HubDeletion(repo_id, False, reason)
    logger.info("deleted Hub repository %s of deleted user %s", repo_id, user_id)
    return HubDeletion(repo_id, True)

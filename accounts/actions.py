"""Multi-step writes on accounts, shared by views, API and management commands."""

import shutil
from datetime import timedelta
from pathlib import Path

from django.conf import settings
from django.contrib.auth import authenticate
from django.db import transaction
from django.utils import timezone

from .models import ApiToken, Twin, User

MAX_TOKEN_DAYS = 3650


class TokenRefused(Exception):
    """A token that may not be issued; the message says why, for the user."""


@transaction.atomic
def do_create_user(username: str, password: str, *, email: str = "", twin_name: str = "", **extra) -> User:
    user = User.objects.create_user(username=username, email=email, password=password, **extra)
    Twin.objects.create(owner=user, name=twin_name or username)
    return user


def do_ensure_twin(user: User) -> Twin:
    """The user's twin profile, created with a default name for a user made outside signup
    (createsuperuser, the admin); signup creates it in do_create_user."""
    twin = Twin.objects.for_user(user).first()
    if twin is None:
        twin, _ = Twin.objects.get_or_create(owner=user, defaults={"name": user.get_full_name() or user.username})
    return twin


def do_issue_api_token(user: User, name: str, *, scopes=(), expires_in_days: int | None = None) -> tuple[ApiToken, str]:
    """Create a token; the raw value is returned once and never stored.

    No scopes means full access. The review scope is for staff only: it would give
    anyone else's token nothing, and a token should not claim more than its owner has.
    """
    unknown = set(scopes) - set(ApiToken.Scope.values)
    if unknown:
        raise TokenRefused(f"Unknown scope(s): {', '.join(sorted(unknown))}.")
    if ApiToken.Scope.REVIEW in scopes and not user.is_staff:
        raise TokenRefused("Only staff members may have the review scope.")
    expires_at = None
    if expires_in_days is not None:
        if not 1 <= expires_in_days <= MAX_TOKEN_DAYS:
            raise TokenRefused(f"A token expires in 1 to {MAX_TOKEN_DAYS} days.")
        expires_at = timezone.now() + timedelta(days=expires_in_days)
    return ApiToken.issue(user, name, scopes=scopes, expires_at=expires_at)


def password_checks_out(request, user: User, password: str) -> bool:
    """Whether `password` is the signed-in user's, asked through the login lockout (django-axes).

    A password check outside `authenticate` is an unlimited guessing oracle for whoever holds a
    session: through it, each wrong password counts as a failed login and, past the limit, the
    caller is locked out (axes flags the Django request; its middleware answers 429).
    """
    django_request = getattr(request, "_request", request)  # DRF's wrapper: axes flags the Django request
    found = authenticate(django_request, username=user.get_username(), password=password)
    return found is not None and found.pk == user.pk


# Where the apps keep each user's files, as <area>/<user id>/...: uploads under MEDIA_ROOT
# (ingestion.models.upload_path), datasets (features.actions), adapters (training.tasks)
# and run directories with checkpoints (training.models.TrainingRun.run_dir).
USER_DATA_AREAS = ("datasets", "adapters", "runs")


def user_data_dirs(user_id: int) -> list[Path]:
    """The folders that hold this user's files and nobody else's."""
    if not isinstance(user_id, int) or user_id <= 0:
        raise ValueError(f"not a user id: {user_id!r}")
    root = Path(settings.TWIN_DATA_DIR)
    return [Path(settings.MEDIA_ROOT) / str(user_id), *(root / area / str(user_id) for area in USER_DATA_AREAS)]


def do_delete_account(user: User):
    """Delete the user, every row they own (by cascade), every file they own and their twin's
    Hub repository; returns what happened to that repository (None: no Hub is configured).

    Rows go first, in one transaction; the files go once it has committed, so a failed
    delete leaves the account whole, and no row is left pointing at a removed file. A
    training run in progress notices at its next step and removes what it wrote since
    (training.tasks). The Hub repository goes last: its failure is reported, not fatal.
    """
    from .hub import delete_twin_repository

    user_id = user.pk
    folders = user_data_dirs(user_id)
    with transaction.atomic():
        User.objects.filter(pk=user_id).delete()
        transaction.on_commit(lambda: _remove_folders(folders))
    return delete_twin_repository(user_id)


def _remove_folders(folders: list[Path]) -> None:
    for folder in folders:
        if folder.is_dir():
            shutil.rmtree(folder)
        elif folder.exists():
            folder.unlink()

"""Multi-step writes on accounts, shared by views, API and management commands."""

from django.db import transaction

from .models import ApiToken, Twin, User


@transaction.atomic
def do_create_user(username: str, password: str, *, email: str = "", twin_name: str = "", **extra) -> User:
    user = User.objects.create_user(username=username, email=email, password=password, **extra)
    Twin.objects.create(owner=user, name=twin_name or username)
    return user


def do_issue_api_token(user: User, name: str) -> tuple[ApiToken, str]:
    """Create a token; the raw value is returned once and never stored."""
    return ApiToken.issue(user, name)

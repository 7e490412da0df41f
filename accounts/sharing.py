"""Sharing a twin on the owner's terms: who may chat with it, invitations, groups, revocation.

An invitation (TwinAccess) names a user, or an email address that gets its user when someone
signs up with it. Access is decided per request by `may_chat` (never cached, never carried by a
token or a session), so a revocation takes effect on the caller's next request, an open answer
stream's next poll included (chat/following.py).
"""

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.http import Http404
from django.utils import timezone

from .models import AudienceGroup, TwinAccess

MAX_GROUP_NAME = 100


class SharingRefused(Exception):
    """An invitation or a group change that cannot be made; the message says why."""


def may_chat(user, owner) -> bool:
    """Whether `user` may talk to `owner`'s twin now: the owner, or someone with an active invitation."""
    if user is None or owner is None or not getattr(user, "is_authenticated", False) or not user.is_active:
        return False
    if user.pk == owner.pk:
        return True
    return owner.is_active and TwinAccess.objects.for_user(owner).active().filter(member=user).exists()


def shared_twins(user):
    """The owners whose twins `user` was invited to (and is still), by username."""
    if user is None or not getattr(user, "is_authenticated", False):
        return get_user_model().objects.none()
    invited = TwinAccess.objects.active().filter(member=user).values("owner")
    return get_user_model().objects.filter(pk__in=invited, is_active=True).select_related("twin").order_by("username")


def shared_twin_or_404(user, username: str):
    """The owner of the twin named by `username`, if `user` may chat with it; else 404 (an
    uninvited caller cannot tell a twin that exists from one that does not)."""
    owner = get_user_model().objects.filter(username=username, is_active=True).first()
    if owner is None or not may_chat(user, owner):
        raise Http404("No such twin.")
    return owner


def _user_named(who: str):
    users = get_user_model().objects.filter(is_active=True)
    if "@" in who:
        return users.filter(email__iexact=who).order_by("pk").first()
    return users.filter(username=who).first()


@transaction.atomic
def do_invite(owner, who: str, group: AudienceGroup | None = None) -> TwinAccess:
    """Invite a user by username, or anyone by email. An address without an account is kept and
    bound when it signs up. Inviting someone already invited returns their invitation (moved to
    `group` when one is given)."""
    who = (who or "").strip()
    if not who:
        raise SharingRefused("Give a username or an email address.")
    if group is not None and group.owner_id != owner.pk:
        raise SharingRefused("That group is not yours.")
    member = _user_named(who)
    email = ""
    if member is None:
        if "@" not in who:
            raise SharingRefused(f"There is no user “{who}”; invite them by email instead.")
        try:
            validate_email(who)
        except ValidationError as exc:
            raise SharingRefused(f"“{who}” is not an email address.") from exc
        email = who.lower()
    elif member.pk == owner.pk:
        raise SharingRefused("That is you: your twin is always yours to chat with.")
    mine = TwinAccess.objects.for_user(owner).active()
    existing = (mine.filter(member=member) if member else mine.filter(member__isnull=True, email=email)).first()
    if existing is not None:
        if group is not None and existing.group_id != group.pk:
            existing.group = group
            existing.save(update_fields=["group"])
        return existing
    try:
        with transaction.atomic():
            return TwinAccess.objects.create(owner=owner, member=member, email=email, group=group)
    except IntegrityError:  # a concurrent invitation of the same member won
        return TwinAccess.objects.for_user(owner).active().get(member=member)


def do_revoke(owner, *, access: TwinAccess | None = None, group: AudienceGroup | None = None) -> int:
    """Revoke one invitation, or every active one of a group; returns how many were revoked.
    Takes effect on the next request of the people concerned (their open streams too)."""
    if (access is None) == (group is None):
        raise ValueError("revoke one invitation or one group")
    active = TwinAccess.objects.for_user(owner).active()
    active = active.filter(pk=access.pk) if access is not None else active.filter(group=group)
    return active.update(revoked_at=timezone.now())


def _clean_group_name(owner, name: str, group: AudienceGroup | None = None) -> str:
    name = (name or "").strip()
    if not name or len(name) > MAX_GROUP_NAME:
        raise SharingRefused(f"A group needs a name of 1 to {MAX_GROUP_NAME} characters.")
    taken = AudienceGroup.objects.for_user(owner).filter(name=name)
    if group is not None:
        taken = taken.exclude(pk=group.pk)
    if taken.exists():
        raise SharingRefused(f"You already have a group called “{name}”.")
    return name


def do_create_group(owner, name: str) -> AudienceGroup:
    return AudienceGroup.objects.create(owner=owner, name=_clean_group_name(owner, name))


def do_rename_group(group: AudienceGroup, name: str) -> AudienceGroup:
    group.name = _clean_group_name(group.owner, name, group)
    group.save(update_fields=["name"])
    return group


def do_delete_group(group: AudienceGroup) -> None:
    """Delete a group; its people stay invited, in no group (revoke the group first to end their access)."""
    group.delete()


def do_move_member(access: TwinAccess, group: AudienceGroup | None) -> TwinAccess:
    """Put an invitation in a group (None: in no group)."""
    if group is not None and group.owner_id != access.owner_id:
        raise SharingRefused("That group is not yours.")
    access.group = group
    access.save(update_fields=["group"])
    return access


def bind_email_invitations(user) -> int:
    """Give the invitations waiting for `user`'s email address their member (at signup).
    An owner who had already invited this user by name keeps that one invitation."""
    if not user.email:
        return 0
    waiting = TwinAccess.objects.active().filter(member__isnull=True, email__iexact=user.email)
    already = TwinAccess.objects.active().filter(member=user).values("owner")
    bound = 0
    for access in waiting.exclude(Q(owner__in=already) | Q(owner=user)):
        access.member = user
        access.save(update_fields=["member"])
        bound += 1
    return bound


def on_user_saved(sender, instance, created, **kwargs):
    """post_save of the user model: a new account takes up the invitations sent to its email."""
    if created:
        bind_email_invitations(instance)

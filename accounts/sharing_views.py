"""The owner's Sharing page: invite people by username or email, group them, revoke, and choose
which sources the audience's answers may draw on (the toggle itself is ingestion's: /sources/<id>/audience/)."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from core.decorators import require_form_methods

from .models import AudienceGroup, TwinAccess
from .sharing import (
    SharingRefused,
    do_create_group,
    do_delete_group,
    do_invite,
    do_move_member,
    do_rename_group,
    do_revoke,
)


def _get_invitation_for_user(request, access_id) -> TwinAccess:
    return TwinAccess.objects.for_user(request.user).get_or_404(access_id)


def _get_group_for_user(request, group_id) -> AudienceGroup | None:
    """A posted group id (a form field): the owner's group, None for "no group", else 404."""
    if group_id in (None, ""):
        return None
    return AudienceGroup.objects.for_user(request.user).get_or_404(group_id)


def _refusing(request, action):
    """Run a sharing action; its refusal becomes a message on the page."""
    try:
        return action()
    except SharingRefused as exc:
        messages.error(request, str(exc))


@login_required
@require_form_methods
def sharing(request):
    if request.method == "POST":
        group = _get_group_for_user(request, request.POST.get("group"))
        access = _refusing(request, lambda: do_invite(request.user, request.POST.get("who", ""), group))
        if access:
            messages.success(request, f"Invited {access.member or access.email}.")
        return redirect("sharing")
    owner = request.user
    context = {
        "invitations": TwinAccess.objects.for_user(owner).active().select_related("member", "group"),
        "revoked": TwinAccess.objects.for_user(owner).filter(revoked_at__isnull=False).select_related("member")[:20],
        "groups": AudienceGroup.objects.for_user(owner),
        "sources": owner.sources.order_by("name"),  # a reverse relation: accounts imports no ingestion
    }
    return render(request, "accounts/sharing.html", context)


@login_required
@require_POST
def revoke_invitation(request, access_id):
    access = _get_invitation_for_user(request, access_id)
    do_revoke(request.user, access=access)
    messages.info(request, f"{access.member or access.email} can no longer chat with your twin.")
    return redirect("sharing")


@login_required
@require_POST
def move_invitation(request, access_id):
    access = _get_invitation_for_user(request, access_id)
    _refusing(request, lambda: do_move_member(access, _get_group_for_user(request, request.POST.get("group"))))
    return redirect("sharing")


@login_required
@require_POST
def add_group(request):
    if _refusing(request, lambda: do_create_group(request.user, request.POST.get("name", ""))):
        messages.success(request, "Group created.")
    return redirect("sharing")


@login_required
@require_POST
def rename_group(request, group_id):
    group = _get_group_for_user(request, group_id)
    _refusing(request, lambda: do_rename_group(group, request.POST.get("name", "")))
    return redirect("sharing")


@login_required
@require_POST
def revoke_group(request, group_id):
    group = _get_group_for_user(request, group_id)
    count = do_revoke(request.user, group=group)
    messages.info(request, f"Revoked {count} invitation{'s' if count != 1 else ''} of “{group.name}”.")
    return redirect("sharing")


@login_required
@require_POST
def delete_group(request, group_id):
    group = _get_group_for_user(request, group_id)
    do_delete_group(group)
    messages.info(request, f"Group “{group.name}” deleted; its people stay invited.")
    return redirect("sharing")

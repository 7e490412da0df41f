from django.contrib import messages
from django.contrib.auth import login, logout
from django.contrib.auth.decorators import login_required
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from core.decorators import require_form_methods

from .actions import do_create_user, do_delete_account, do_ensure_twin, do_issue_api_token
from .forms import DeleteAccountForm, SignupForm, TokenForm, TwinForm
from .hub import hub_configured, twin_repo_id
from .models import ApiToken
from .throttling import SignupThrottle


@require_form_methods
def signup(request):
    if request.user.is_authenticated:
        return redirect("dashboard")
    if request.method == "POST" and (refusal := SignupThrottle().refusal(request)):
        return refusal
    form = SignupForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        user = do_create_user(
            data["username"], data["password1"], email=data.get("email", ""), twin_name=data.get("twin_name", "")
        )
        login(request, user, backend="django.contrib.auth.backends.ModelBackend")
        messages.success(request, "Welcome! Add a source to start building your twin.")
        return redirect("dashboard")
    return render(request, "accounts/signup.html", {"form": form})


def _get_token_for_user(request, token_id) -> ApiToken:
    return get_object_or_404(ApiToken.objects.for_user(request.user), pk=token_id)


@login_required
@require_form_methods
def tokens(request):
    form = TokenForm(request.POST or None, user=request.user)
    new_token = None
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        _, new_token = do_issue_api_token(
            request.user, data["name"], scopes=data["scopes"], expires_in_days=data["expires_in_days"]
        )
        form = TokenForm(user=request.user)
    return render(
        request,
        "accounts/tokens.html",
        {"form": form, "tokens": ApiToken.objects.for_user(request.user), "new_token": new_token},
    )


@login_required
@require_POST
def revoke_token(request, token_id):
    token = _get_token_for_user(request, token_id)
    token.revoke()
    messages.info(request, f"Token “{token.name}” revoked.")
    return redirect("tokens")


@login_required
@require_form_methods
def twin_settings(request):
    form = TwinForm(request.POST or None, instance=do_ensure_twin(request.user))
    if request.method == "POST" and form.is_valid():
        form.save()
        messages.success(request, "Twin settings saved.")
        return redirect("dashboard")
    return render(request, "accounts/twin_settings.html", {"form": form}, status=400 if form.errors else 200)


def owned_counts(user) -> dict[str, int]:
    """What deleting the account removes, for the confirmation page (reverse relations: no upward imports)."""
    return {
        "sources": user.sources.count(),
        "documents": user.documents.count(),
        "datasets": user.dataset_versions.count(),
        "training runs": user.training_runs.count(),
        "model versions": user.model_versions.count(),
        "conversations": user.conversations.count(),
        "API tokens": user.api_tokens.count(),
    }


@login_required
@require_form_methods
def delete_account(request):
    """A confirmation page; the POST with the password deletes every row and file, then signs out."""
    form = DeleteAccountForm(request.POST or None, request=request)
    if request.method == "POST" and form.is_valid():
        user = request.user
        logout(request)
        hub = do_delete_account(user)
        messages.success(request, "Your account, your twin and all their data and files are deleted.")
        if hub is not None:
            (messages.success if hub.deleted else messages.warning)(request, hub.message)
        return redirect("home")
    hub_repo = twin_repo_id(request.user.pk) if hub_configured() else ""
    context = {"form": form, "counts": owned_counts(request.user), "hub_repo": hub_repo}
    return render(request, "accounts/delete_account.html", context, status=400 if form.errors else 200)

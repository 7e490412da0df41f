from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth.decorators import login_required
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from .actions import do_create_user, do_issue_api_token
from .forms import SignupForm, TokenForm, TwinForm
from .models import ApiToken, Twin


def signup(request):
    if request.user.is_authenticated:
        return redirect("dashboard")
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
def tokens(request):
    form = TokenForm(request.POST or None)
    new_token = None
    if request.method == "POST" and form.is_valid():
        _, new_token = do_issue_api_token(request.user, form.cleaned_data["name"])
        form = TokenForm()
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
def twin_settings(request):
    form = TwinForm(request.POST or None, instance=Twin.for_user(request.user))
    if request.method == "POST" and form.is_valid():
        form.save()
        messages.success(request, "Twin settings saved.")
        return redirect("dashboard")
    return render(request, "accounts/twin_settings.html", {"form": form}, status=400 if form.errors else 200)

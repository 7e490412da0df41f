"""The owner's "Publish" page: the public page and widget on or off, its address, the sites that
may embed it, the monthly quota, a new widget key, and the snippet to paste."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from core.decorators import require_form_methods

from .forms import PublicationForm
from .publication import (
    PublicationRefused,
    do_ensure_publication,
    do_rotate_widget_key,
    do_update_publication,
    embed_snippet,
    site_origin,
    visitor_answers_this_month,
)


@login_required
@require_form_methods
def publication(request):
    publication = do_ensure_publication(request.user)
    initial = {
        "enabled": publication.enabled,
        "slug": publication.slug,
        "allowed_origins": "\n".join(publication.allowed_origins),
        "monthly_quota": publication.monthly_quota,
    }
    form = PublicationForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        try:
            do_update_publication(publication, **form.cleaned_data)
        except PublicationRefused as exc:
            form.add_error(None, str(exc))
        else:
            saved = "Publication saved." if publication.enabled else "Saved; your twin is not published."
            messages.success(request, saved)
            return redirect("publication")
    publication.refresh_from_db()
    context = {
        "form": form,
        "publication": publication,
        "snippet": embed_snippet(publication, site_origin(request)),
        "public_url": f"{site_origin(request)}/t/{publication.slug}/",
        "answered": visitor_answers_this_month(request.user),
    }
    return render(request, "accounts/publication.html", context, status=400 if form.errors else 200)


@login_required
@require_POST
def rotate_key(request):
    do_rotate_widget_key(do_ensure_publication(request.user))
    messages.info(request, "New widget key: pages that embed the old one stop working now; paste the new snippet.")
    return redirect("publication")

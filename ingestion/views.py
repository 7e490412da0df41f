from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST, require_safe

from .actions import (
    SourceRefused,
    do_add_source,
    do_cancel_sync,
    do_delete_source,
    do_reprocess_source,
    do_sync_source,
)
from .connectors import CONNECTORS, connector_named
from .models import Document, Source


def _get_source_for_user(request, source_id) -> Source:
    return get_object_or_404(Source.objects.for_user(request.user), pk=source_id)


def _get_document_for_user(request, document_id) -> Document:
    return get_object_or_404(Document.objects.for_user(request.user).select_related("source"), pk=document_id)


def _sources_page(request, bound_form=None, bound_kind="", status=200):
    sources = Source.objects.for_user(request.user).with_last_run()
    cards = [
        {
            "connector": connector,
            "form": bound_form if kind == bound_kind else connector.form_class(auto_id=f"id_{kind}_%s"),
        }
        for kind, connector in CONNECTORS.items()
    ]
    context = {
        "sources": sources,
        "cards": cards,
        "any_active": any(s.last_run and s.last_run.is_active for s in sources),
    }
    template = "ingestion/_source_table.html" if request.htmx and request.method == "GET" else "ingestion/sources.html"
    return render(request, template, context, status=status)


@login_required
@require_safe
def sources(request):
    return _sources_page(request)


@login_required
@require_POST
def add_source(request, kind):
    connector = connector_named(kind)
    form = connector.form_class(request.POST, request.FILES, auto_id=f"id_{kind}_%s")
    if form.is_valid():
        try:
            source = do_add_source(request.user, kind, form.cleaned_data)
        except SourceRefused as exc:
            form.add_error(None, str(exc))
        else:
            messages.success(request, f"Added “{source.name}”; ingesting it now.")
            return redirect("sources")
    return _sources_page(request, bound_form=form, bound_kind=kind, status=400)


def _source_context(source):
    runs = list(source.crawl_runs.all()[:20])
    return {
        "source": source,
        "runs": runs,
        "live_run": runs[0] if runs and runs[0].is_active else None,
        "last_run": runs[0] if runs else None,
        "documents": source.documents.all(),
        "default_recrawl_hours": settings.TWIN_RECRAWL_HOURS,
    }


@login_required
@require_safe
def source_detail(request, source_id):
    source = _get_source_for_user(request, source_id)
    return render(request, "ingestion/source_detail.html", _source_context(source))


@login_required
@require_safe
def source_progress(request, source_id):
    """The live progress block of the source page (htmx polls it while a sync runs)."""
    source = _get_source_for_user(request, source_id)
    return render(request, "ingestion/_crawl_progress.html", _source_context(source))


@login_required
@require_POST
def sync_source(request, source_id):
    source = _get_source_for_user(request, source_id)
    try:
        do_sync_source(source)
    except SourceRefused as exc:
        messages.error(request, str(exc))
    else:
        messages.info(request, f"Syncing “{source.name}”.")
    return redirect("source-detail", source_id=source.pk)


@login_required
@require_POST
def cancel_sync(request, source_id):
    source = _get_source_for_user(request, source_id)
    if do_cancel_sync(source):
        messages.info(request, "Cancelled the sync; what it had stored is kept.")
    else:
        messages.info(request, "No sync was running.")
    return redirect("source-detail", source_id=source.pk)


@login_required
@require_POST
def reprocess_source(request, source_id):
    source = _get_source_for_user(request, source_id)
    count = do_reprocess_source(source)
    messages.info(request, f"Sent {count} documents through the feature pipeline again.")
    return redirect("source-detail", source_id=source.pk)


@login_required
@require_POST
def delete_source(request, source_id):
    source = _get_source_for_user(request, source_id)
    do_delete_source(source)
    messages.info(request, f"Deleted “{source.name}” and everything built from it.")
    return redirect("sources")


@login_required
@require_POST
def source_audience(request, source_id):
    """The Sharing page's toggle: may the twin's audience draw on this source ("on") or not."""
    source = _get_source_for_user(request, source_id).set_audience(request.POST.get("audience") == "on")
    if request.htmx:
        return render(request, "ingestion/_audience_toggle.html", {"source": source})
    return redirect("sharing")


@login_required
@require_safe
def document_detail(request, document_id):
    document = _get_document_for_user(request, document_id)
    return render(request, "ingestion/document_detail.html", {"document": document})

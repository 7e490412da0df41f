from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from .actions import SourceRefused, do_add_article_source, do_add_upload_source, do_delete_source, do_sync_source
from .connectors.article.forms import ArticleSourceForm
from .connectors.upload.forms import UploadSourceForm
from .models import Document, Source


def _get_source_for_user(request, source_id) -> Source:
    return get_object_or_404(Source.objects.for_user(request.user), pk=source_id)


def _get_document_for_user(request, document_id) -> Document:
    return get_object_or_404(Document.objects.for_user(request.user).select_related("source"), pk=document_id)


def _sources_page(request, upload_form=None, article_form=None, status=200):
    sources = Source.objects.for_user(request.user).prefetch_related("crawl_runs")
    context = {
        "sources": sources,
        "upload_form": upload_form or UploadSourceForm(),
        "article_form": article_form or ArticleSourceForm(),
        "any_active": any(s.last_run and s.last_run.is_active for s in sources),
    }
    template = "ingestion/_source_table.html" if request.htmx and request.method == "GET" else "ingestion/sources.html"
    return render(request, template, context, status=status)


@login_required
def sources(request):
    return _sources_page(request)


@login_required
@require_POST
def add_upload(request):
    form = UploadSourceForm(request.POST, request.FILES)
    if form.is_valid():
        try:
            source = do_add_upload_source(
                request.user, form.cleaned_data["file"], category=form.cleaned_data["category"]
            )
        except SourceRefused as exc:
            form.add_error(None, str(exc))
        else:
            messages.success(request, f"“{source.name}” uploaded; ingesting it now.")
            return redirect("sources")
    return _sources_page(request, upload_form=form, status=400)


@login_required
@require_POST
def add_article(request):
    form = ArticleSourceForm(request.POST)
    if form.is_valid():
        try:
            source = do_add_article_source(
                request.user, form.cleaned_data["url"], category=form.cleaned_data["category"]
            )
        except SourceRefused as exc:
            form.add_error("url", str(exc))
        else:
            messages.success(request, f"Added {source.url}; fetching it now.")
            return redirect("sources")
    return _sources_page(request, article_form=form, status=400)


@login_required
def source_detail(request, source_id):
    source = _get_source_for_user(request, source_id)
    context = {"source": source, "runs": source.crawl_runs.all()[:20], "documents": source.documents.all()}
    return render(request, "ingestion/source_detail.html", context)


@login_required
@require_POST
def sync_source(request, source_id):
    source = _get_source_for_user(request, source_id)
    do_sync_source(source)
    messages.info(request, f"Syncing “{source.name}”.")
    return redirect("source-detail", source_id=source.pk)


@login_required
@require_POST
def delete_source(request, source_id):
    source = _get_source_for_user(request, source_id)
    do_delete_source(source)
    messages.info(request, f"Deleted “{source.name}” and everything built from it.")
    return redirect("sources")


@login_required
def document_detail(request, document_id):
    document = _get_document_for_user(request, document_id)
    return render(request, "ingestion/document_detail.html", {"document": document})

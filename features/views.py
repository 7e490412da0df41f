from django.contrib.auth.decorators import login_required
from django.http import FileResponse, Http404
from django.shortcuts import get_object_or_404, render
from django.views.decorators.http import require_safe

from ingestion.models import Document

from .datasets import read_records
from .forms import SearchForm
from .models import Chunk, CleanDocument, DatasetVersion
from .signals import dataset_page_sections

PREVIEW_SAMPLES = 20


def _get_dataset_for_user(request, dataset_id) -> DatasetVersion:
    return get_object_or_404(DatasetVersion.objects.for_user(request.user), pk=dataset_id)


@login_required
@require_safe
def document_chunks(request, document_id):
    document = get_object_or_404(Document.objects.for_user(request.user), pk=document_id)
    clean = CleanDocument.objects.filter(document=document).first()
    chunks = clean.chunks.all() if clean else []
    return render(request, "features/document_chunks.html", {"document": document, "clean": clean, "chunks": chunks})


@login_required
@require_safe
def datasets(request):
    mine = DatasetVersion.objects.for_user(request.user)
    context = {
        "instruct_datasets": mine.instruct(),
        "preference_datasets": mine.preference().select_related("instruct_dataset"),
        "sections": dataset_page_sections(request),
    }
    return render(request, "features/datasets.html", context)


def _words(messages_or_text) -> int:
    """Words of a sample's text, or of a preference record's one-message answer."""
    if isinstance(messages_or_text, list):
        messages_or_text = " ".join(m.get("content", "") for m in messages_or_text)
    return len((messages_or_text or "").split())


@login_required
@require_safe
def dataset_detail(request, dataset_id):
    dataset = _get_dataset_for_user(request, dataset_id)
    try:
        records = read_records(dataset.file_path)
    except FileNotFoundError:
        records = None
    samples, lengths = None, {}
    if records is not None:
        shown = ("chosen", "rejected") if dataset.is_preference else ("instruction", "answer")
        lengths = {field: [_words(r.get(field)) for r in records] for field in shown}
        # Each sample links to the document it came from, if that document is still there.
        samples = records[:PREVIEW_SAMPLES]
        ids = {r.get("document_id") for r in samples}
        documents = Document.objects.for_user(request.user).filter(pk__in=ids).in_bulk()
        for sample in samples:
            sample["document"] = documents.get(sample.get("document_id"))
    context = {"dataset": dataset, "samples": samples, "lengths": lengths}
    context["sections"] = dataset_page_sections(request, dataset)
    return render(request, "features/dataset_detail.html", context)


@login_required
@require_safe
def dataset_download(request, dataset_id):
    dataset = _get_dataset_for_user(request, dataset_id)
    try:
        handle = open(dataset.file_path, "rb")  # FileResponse closes it
    except FileNotFoundError:
        raise Http404("The dataset file is missing from storage.") from None
    return FileResponse(handle, as_attachment=True, filename=f"twinsite-{dataset.kind}-v{dataset.version}.jsonl")


@login_required
@require_safe
def search(request):
    form = SearchForm(request.GET or None, user=request.user)
    results = []
    if form.is_valid():
        results = Chunk.objects.for_user(request.user).search(form.cleaned_data["q"], k=10, **form.search_filters())
    query = form.cleaned_data.get("q", "") if form.is_bound and hasattr(form, "cleaned_data") else ""
    return render(request, "features/search.html", {"form": form, "query": query, "results": results})

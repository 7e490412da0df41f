import logging

from celery import shared_task

from ingestion.models import Document

from .actions import do_build_dataset_version, do_build_features, do_reembed_stale
from .generators import GeneratorError
from .models import FeatureRun
from .signals import instruct_dataset_built

logger = logging.getLogger(__name__)


@shared_task(acks_late=True)
def run_features(run_id: int):
    run = FeatureRun.objects.select_related("owner").filter(pk=run_id).first()
    if run is None or not run.claim():
        return
    try:
        with run.keep_alive():
            documents = list(Document.objects.for_user(run.owner).filter(pk__in=run.document_ids))
            written = 0
            for i, document in enumerate(documents):
                run.report(90 * i / max(1, len(documents)), f"Embedding “{document.title}” ({i + 1}/{len(documents)})")
                written += do_build_features(document)
            summary = f"{len(documents)} documents, {written} chunks"
            if run.later_run_queued():  # a burst of uploads gets one dataset version, built by the last run
                run.succeed(f"{summary}; the dataset is built by a later run", chunks_written=written)
                return
            run.report(92, "Building the instruct dataset", chunks_written=written)
            dataset, created = do_build_dataset_version(run.owner)
    except GeneratorError as exc:
        run.fail(f"{exc} The chunks are saved; no dataset version was written. Sync the source to retry.")
        return
    except Exception:
        logger.exception("feature run %s failed", run_id)
        run.fail(
            "An unexpected error stopped the feature pipeline. It has been logged; "
            "retry with “Reprocess documents” on the source."
        )
        raise
    outcome = f"dataset v{dataset.version} {'built' if created else 'unchanged'}" if dataset else "no dataset yet"
    run.succeed(f"{summary}; {outcome}", dataset_version=dataset)
    if created:
        instruct_dataset_built.send(sender=FeatureRun, dataset=dataset)


@shared_task(acks_late=True)
def reembed_stale_chunks(owner_id: int | None = None):
    """After a change of embedding model: re-embed what the old one wrote (idempotent, resumable)."""
    from django.contrib.auth import get_user_model

    owner = get_user_model().objects.get(pk=owner_id) if owner_id else None
    documents, written = do_reembed_stale(owner)
    logger.info("re-embedded %s documents (%s chunks)", documents, written)
    return documents, written

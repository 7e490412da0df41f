"""Features listen to ingestion: changed documents queue a feature run."""

from django.dispatch import receiver

from ingestion.signals import documents_changed, documents_gone

from .actions import do_drop_gone_features, do_queue_feature_run


@receiver(documents_changed)
def queue_feature_run(sender, owner_id, document_ids, **kwargs):
    do_queue_feature_run(owner_id, document_ids)


@receiver(documents_gone)
def drop_gone_features(sender, owner_id, document_ids, **kwargs):
    do_drop_gone_features(owner_id, document_ids)

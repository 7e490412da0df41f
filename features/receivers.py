"""Features listen to ingestion (changed documents queue a feature run) and tune each new
database connection for search."""

from django.db.backends.signals import connection_created
from django.dispatch import receiver

from ingestion.signals import documents_changed, documents_gone

from .actions import do_drop_gone_features, do_queue_feature_run


@receiver(documents_changed)
def queue_feature_run(sender, owner_id, document_ids, **kwargs):
    do_queue_feature_run(owner_id, document_ids)


@receiver(documents_gone)
def drop_gone_features(sender, owner_id, document_ids, **kwargs):
    do_drop_gone_features(owner_id, document_ids)


@receiver(connection_created)
def set_search_session(sender, connection, **kwargs):
    """Session settings search relies on (features/search.py SESSION_SETTINGS), once per connection
    rather than on every search: a setting in the same round trip as a prepared statement would
    need a pipeline, which cost more client time than the statement itself."""
    from .search import SESSION_SETTINGS

    if connection.vendor != "postgresql":
        return
    with connection.cursor() as cursor:
        cursor.execute("; ".join(f"SET {name} = '{value}'" for name, value in SESSION_SETTINGS.items()))

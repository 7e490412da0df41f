"""Signals downstream pipelines listen to; ingestion never imports them.

documents_changed(owner_id, document_ids) is sent after the transaction that created
or updated the documents has committed.
"""

from django.dispatch import Signal

documents_changed = Signal()

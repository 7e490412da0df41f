"""Signals downstream pipelines listen to; ingestion never imports them.

documents_changed(owner_id, document_ids) is sent after the transaction that created
or updated the documents has committed; documents_gone(owner_id, document_ids) after
the one that marked documents gone from their source (their rows stay, marked: what
was built from them must no longer be used).
"""

from django.dispatch import Signal

documents_changed = Signal()
documents_gone = Signal()

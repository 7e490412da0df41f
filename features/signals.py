"""Signals downstream apps listen to; features never imports them (ingestion/signals.py, one step up).

instruct_dataset_built(dataset) is sent when a feature run has built a new instruct dataset
version (not when the content came out the same): training may build a preference dataset
from it.

dataset_page(request, dataset) is sent while a datasets page is drawn: the list (dataset
None) or one dataset's page. A receiver returns HTML to show on it, or "" (training shows
its preference builds and the button that starts one), so that the page shows the jobs
run on the datasets without features knowing them.
"""

from django.dispatch import Signal

instruct_dataset_built = Signal()
dataset_page = Signal()


def dataset_page_sections(request, dataset=None) -> list[str]:
    """What the receivers of dataset_page add to the page, in the order they were connected."""
    return [html for _, html in dataset_page.send(sender=None, request=request, dataset=dataset) if html]

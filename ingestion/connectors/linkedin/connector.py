"""LinkedIn: the official data-export ZIP the user downloads and uploads. LinkedIn pages
are never scraped. What is read is listed in export.py."""

from ..base import Connector, ConnectorError, Item
from ..upload.connector import read_upload
from ..upload.files import archive_members, open_archive
from .export import entries
from .forms import LinkedInSourceForm


class LinkedInConnector(Connector):
    kind = "linkedin"
    label = "LinkedIn export"
    help_text = (
        "Upload the ZIP from LinkedIn's “Get a copy of your data”: your posts, articles and comments are read, "
        "nothing else."
    )
    form_class = LinkedInSourceForm
    takes_file = True
    order = 60
    recognition_order = 30

    def recognises(self, *, url, filename):
        return filename.lower().endswith(".zip") and "linkedin" in filename.lower()

    def source_fields(self, cleaned_data):
        return {**super().source_fields(cleaned_data), "category": "post"}

    def sync(self, crawl):
        crawl.progress(5, "Reading the export")
        _, data = read_upload(crawl.source)
        with open_archive(data) as archive:
            for name, body in archive_members(archive):
                if isinstance(body, ConnectorError):
                    crawl.fail(f"linkedin://file/{name}", str(body))
                    continue
                try:
                    found = entries(name, body)
                except ConnectorError as exc:
                    crawl.fail(f"linkedin://file/{name}", str(exc))
                    continue
                for i, entry in enumerate(found):
                    if i % 20 == 0:
                        crawl.progress(10 + 80 * i / max(1, len(found)), f"{name}: {i + 1} of {len(found)}")
                    if entry.skip_reason:
                        crawl.skip(entry.url, entry.skip_reason)
                    else:
                        item = Item(entry.url, entry.title, entry.text, entry.category, entry.metadata)
                        crawl.store(item)
        crawl.mark_unseen_gone()


connector = LinkedInConnector()

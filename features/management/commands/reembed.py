"""Re-embed the chunks written by another embedding model than the configured one."""

from django.core.management.base import BaseCommand

from features import embeddings
from features.actions import do_reembed_stale


class Command(BaseCommand):
    help = "Re-embed every document whose chunks carry another embedding model than the current one."

    def handle(self, *args, **options):
        self.stdout.write(f"current embedding model: {embeddings.model_id()} ({embeddings.backend()})")

        def progress(i, total, document):
            self.stdout.write(f"  [{100 * i // max(total, 1):3d} %] {document.title}")

        documents, written = do_reembed_stale(progress=progress)
        self.stdout.write(f"re-embedded {documents} documents ({written} chunks)")

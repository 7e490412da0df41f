from django.core.management.base import BaseCommand

from training.retention import do_prune_artifacts


class Command(BaseCommand):
    help = "Delete old dataset versions, leftover checkpoints and rejected adapters (see training/retention.py)."

    def add_arguments(self, parser):
        parser.add_argument("--dry-run", action="store_true", help="Only say what would be deleted.")

    def handle(self, *args, dry_run=False, **options):
        report = do_prune_artifacts(dry_run=dry_run)
        self.stdout.write(("Would delete: " if dry_run else "Deleted: ") + str(report))

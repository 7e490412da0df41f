"""`manage.py restore ARCHIVE --yes`: put back what `backup` wrote, replacing the current data."""

from django.core.management.base import BaseCommand, CommandError

from accounts.backup import BackupError, restore_backup


class Command(BaseCommand):
    help = "Restore a backup: replaces the whole database and the artifact folders under TWIN_DATA_DIR."

    def add_arguments(self, parser):
        parser.add_argument("archive", help="An archive written by `manage.py backup`.")
        parser.add_argument("--yes", action="store_true", help="Confirm: the current data is replaced.")

    def handle(self, *args, archive, yes=False, **options):
        if not yes:
            raise CommandError("Restoring replaces the current database and files; pass --yes to confirm.")
        try:
            manifest = restore_backup(archive)
        except BackupError as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(f"Restored the backup of {manifest['created_at']} from {archive}")

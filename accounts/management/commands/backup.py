"""`manage.py backup ARCHIVE`: the database and every user's files in one .tar.gz."""

from django.core.management.base import BaseCommand, CommandError

from accounts.backup import BackupError, create_backup


class Command(BaseCommand):
    help = "Back up the database (pg_dump) and the artifacts under TWIN_DATA_DIR into one .tar.gz archive."

    def add_arguments(self, parser):
        parser.add_argument("archive", help="Where to write the archive, e.g. backups/twinsite-2026-11-28.tar.gz")

    def handle(self, *args, archive, **options):
        try:
            manifest = create_backup(archive)
        except BackupError as exc:
            raise CommandError(str(exc)) from exc
        files = ", ".join(f"{count} in {name}" for name, count in manifest["folders"].items())
        self.stdout.write(f"Backed up database {manifest['database']} and files ({files}) to {archive}")

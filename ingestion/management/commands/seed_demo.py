"""Create the demo twin (Robin Vale) and a staff reviewer, and queue the demo corpus.

Idempotent: users are created once, each corpus file is added once. The pipeline
then runs in the workers: ingestion, features, a dataset, and (auto-train is on for
the demo) a first training run whose adapter the staff account can approve.
"""

import os

from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management.base import BaseCommand, CommandError

from accounts.actions import do_create_user
from accounts.models import Twin, User
from ingestion.actions import do_add_upload_source
from ingestion.connectors.upload.forms import UploadSourceForm
from ingestion.models import Source

CORPUS_DIR = settings.BASE_DIR / "demo" / "corpus"


def _ensure_user(username: str, password: str, **extra) -> tuple[User, bool]:
    user = User.objects.filter(username=username).first()
    if user:
        return user, False
    return do_create_user(username, password, **extra), True


class Command(BaseCommand):
    help = "Seed the demo twin and a staff reviewer (development only)."

    def add_arguments(self, parser):
        parser.add_argument(
            "--force", action="store_true", help="Seed the demo twin even when DEBUG is off (never the admin)."
        )

    def handle(self, *args, force=False, **options):
        if not settings.DEBUG and not force:
            raise CommandError("Refusing to create demo accounts with DEBUG off; pass --force if you mean it.")
        demo_password = os.environ.get("DEMO_PASSWORD", "twinsite-demo")
        admin_password = os.environ.get("DEMO_ADMIN_PASSWORD", "twinsite-admin")
        demo, _ = _ensure_user("demo", demo_password, twin_name="Robin Vale", email="demo@example.com")
        Twin.objects.for_user(demo).update(auto_train=True, name="Robin Vale")
        if settings.DEBUG:  # a superuser with a published password never exists outside development
            _ensure_user("admin", admin_password, email="admin@example.com", is_staff=True, is_superuser=True)

        added = 0
        for path in sorted(CORPUS_DIR.iterdir()):
            if Source.objects.for_user(demo).filter(kind=Source.Kind.UPLOAD, upload__endswith=f"-{path.name}").exists():
                continue
            form = UploadSourceForm({"category": "article"}, {"file": SimpleUploadedFile(path.name, path.read_bytes())})
            if not form.is_valid():
                raise CommandError(f"demo file {path.name} is invalid: {form.errors.as_text()}")
            do_add_upload_source(demo, form.cleaned_data["file"], category="article")
            added += 1

        total = Source.objects.for_user(demo).count()
        self.stdout.write(f"  Demo twin: {added} corpus files queued ({total} sources in all).")
        self.stdout.write(f"  Log in as the demo user:  demo / {demo_password}")
        if settings.DEBUG:
            self.stdout.write(f"  Approve models as staff:  admin / {admin_password}  (Django admin, /admin/)")
        else:
            self.stdout.write("  No demo admin with DEBUG off: create staff with `manage.py createsuperuser`.")

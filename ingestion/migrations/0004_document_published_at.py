from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

from django.db import migrations, models


def _parse(value: str):
    for parse in (parsedate_to_datetime, datetime.fromisoformat):
        try:
            when = parse(value)
        except (TypeError, ValueError, IndexError):
            continue
        return when if when.tzinfo else when.replace(tzinfo=UTC)
    return None


def published_strings_to_dates(apps, schema_editor):
    """Feeds stored their entries' dates as the raw strings of metadata["published"]."""
    Document = apps.get_model("ingestion", "Document")
    for document in Document.objects.filter(metadata__has_key="published").only("id", "metadata").iterator():
        if when := _parse(str(document.metadata.get("published") or "")):
            Document.objects.filter(pk=document.pk).update(published_at=when)


class Migration(migrations.Migration):
    dependencies = [
        ("ingestion", "0003_job_attempts"),
    ]

    operations = [
        migrations.AddField(
            model_name="document",
            name="published_at",
            field=models.DateTimeField(blank=True, help_text="When the source says it was published.", null=True),
        ),
        migrations.AlterField(
            model_name="document",
            name="metadata",
            field=models.JSONField(blank=True, default=dict, help_text="Connector facts: path, language, feed…"),
        ),
        migrations.RunPython(published_strings_to_dates, migrations.RunPython.noop),
    ]

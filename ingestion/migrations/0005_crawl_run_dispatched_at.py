from django.db import migrations, models
from django.db.models import F


def sent_already(apps, schema_editor):
    """Runs from before the cap had their task sent when they were created."""
    apps.get_model("ingestion", "CrawlRun").objects.update(dispatched_at=F("created_at"))


class Migration(migrations.Migration):
    dependencies = [
        ("ingestion", "0004_document_published_at"),
    ]

    operations = [
        migrations.AddField(
            model_name="crawlrun",
            name="dispatched_at",
            field=models.DateTimeField(
                blank=True,
                help_text="When its task was sent; empty while it waits for its owner's other syncs.",
                null=True,
            ),
        ),
        migrations.RunPython(sent_already, migrations.RunPython.noop),
    ]

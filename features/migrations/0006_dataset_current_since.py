import django.utils.timezone
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("features", "0005_job_attempts"),
    ]

    operations = [
        migrations.AddField(
            model_name="datasetversion",
            name="current_since",
            field=models.DateTimeField(
                default=django.utils.timezone.now,
                help_text="When a build last made this the owner's current version of its kind.",
            ),
        ),
        # Until now the highest version was the current one; its creation keeps that order.
        migrations.RunSQL(
            "UPDATE features_datasetversion SET current_since = created_at", reverse_sql=migrations.RunSQL.noop
        ),
    ]

from django.db import migrations


class Migration(migrations.Migration):
    """PreferenceRun is training's now (training 0008 takes it over, table and rows as they are):
    here it only leaves the migration state; the table is not touched."""

    dependencies = [
        ("features", "0006_dataset_current_since"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[migrations.DeleteModel(name="PreferenceRun")],
            database_operations=[],
        ),
    ]

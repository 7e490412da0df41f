import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


def move_content_type(apps, schema_editor, from_app="features", to_app="training"):
    """Admin history and permissions of preference runs follow the model (no-op on a new database)."""
    content_types = apps.get_model("contenttypes", "ContentType").objects.using(schema_editor.connection.alias)
    if not content_types.filter(app_label=to_app, model="preferencerun").exists():
        content_types.filter(app_label=from_app, model="preferencerun").update(app_label=to_app)


def move_content_type_back(apps, schema_editor):
    move_content_type(apps, schema_editor, from_app="training", to_app="features")


class Migration(migrations.Migration):
    """PreferenceRun moves here from features with its table and rows: only the migration state
    changes (features 0007 dropped it there); the table keeps its name (Meta.db_table)."""

    dependencies = [
        ("contenttypes", "0002_remove_content_type_name"),
        ("features", "0007_preferencerun_moves_to_training"),
        ("training", "0007_experiments"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[],
            state_operations=[
                migrations.CreateModel(
                    name="PreferenceRun",
                    fields=[
                        (
                            "id",
                            models.BigAutoField(
                                auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                            ),
                        ),
                        (
                            "status",
                            models.CharField(
                                choices=[
                                    ("queued", "Queued"),
                                    ("running", "Running"),
                                    ("succeeded", "Succeeded"),
                                    ("failed", "Failed"),
                                    ("cancelled", "Cancelled"),
                                ],
                                db_index=True,
                                default="queued",
                                max_length=16,
                            ),
                        ),
                        ("progress", models.PositiveSmallIntegerField(default=0, help_text="Percent done, 0-100.")),
                        (
                            "message",
                            models.CharField(blank=True, help_text="What the job is doing now.", max_length=300),
                        ),
                        (
                            "error",
                            models.TextField(blank=True, help_text="Why the job failed, in words the user can act on."),
                        ),
                        (
                            "attempts",
                            models.PositiveSmallIntegerField(default=0, help_text="Times a worker claimed it."),
                        ),
                        ("created_at", models.DateTimeField(auto_now_add=True)),
                        ("started_at", models.DateTimeField(blank=True, null=True)),
                        ("heartbeat_at", models.DateTimeField(blank=True, null=True)),
                        ("finished_at", models.DateTimeField(blank=True, null=True)),
                        (
                            "generator",
                            models.CharField(
                                blank=True, help_text="The model that wrote the rejected answers.", max_length=200
                            ),
                        ),
                        (
                            "pairs_generated",
                            models.PositiveIntegerField(default=0, help_text="New answers (earlier ones are reused)."),
                        ),
                        (
                            "dataset_version",
                            models.ForeignKey(
                                blank=True,
                                null=True,
                                on_delete=django.db.models.deletion.SET_NULL,
                                related_name="+",
                                to="features.datasetversion",
                            ),
                        ),
                        (
                            "instruct_dataset",
                            models.ForeignKey(
                                on_delete=django.db.models.deletion.CASCADE,
                                related_name="preference_runs",
                                to="features.datasetversion",
                            ),
                        ),
                        (
                            "owner",
                            models.ForeignKey(
                                on_delete=django.db.models.deletion.CASCADE,
                                related_name="preference_runs",
                                to=settings.AUTH_USER_MODEL,
                            ),
                        ),
                    ],
                    options={
                        "db_table": "features_preferencerun",
                        "ordering": ["-created_at"],
                        "abstract": False,
                        "constraints": [
                            models.UniqueConstraint(
                                condition=models.Q(("status__in", ("queued", "running"))),
                                fields=("owner",),
                                name="one_active_preference_run",
                            )
                        ],
                    },
                ),
            ],
        ),
        migrations.RunPython(move_content_type, move_content_type_back),
    ]

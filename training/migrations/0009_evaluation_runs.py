import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models
from django.utils import timezone

# ModelVersion.evaluation_status (pending, running, done, failed) becomes its EvaluationRun's status.
JOB_OF = {"pending": "queued", "running": "running", "done": "succeeded", "failed": "failed"}
VERSION_OF = {"queued": "pending", "running": "running", "succeeded": "done", "failed": "failed", "cancelled": "failed"}


def evaluations_from_versions(apps, schema_editor):
    """One evaluation job per version that was or will be evaluated, in the state it was in. A
    pending one is queued (beat sends it again, or fails it if it waited more than a day: its
    request dates from the version); a running one is given a heartbeat now, so that beat resumes
    it if no worker is on it; the losers of an experiment (rejected, never evaluated) get none."""
    ModelVersion = apps.get_model("training", "ModelVersion")
    EvaluationRun = apps.get_model("training", "EvaluationRun")
    now = timezone.now()
    versions = ModelVersion.objects.exclude(evaluation_status="pending", status="rejected")
    for version in versions.order_by("pk"):
        status = JOB_OF[version.evaluation_status]
        evaluation = EvaluationRun.objects.create(
            owner_id=version.owner_id,
            model_version_id=version.pk,
            status=status,
            progress=100 if status == "succeeded" else 0,
            error=version.evaluation_error if status == "failed" else "",
            attempts=0 if status == "queued" else 1,
            started_at=now if status == "running" else None,
            heartbeat_at=now if status == "running" else None,
        )
        EvaluationRun.objects.filter(pk=evaluation.pk).update(created_at=version.created_at)  # not auto_now_add's


def versions_from_evaluations(apps, schema_editor):
    ModelVersion = apps.get_model("training", "ModelVersion")
    for evaluation in apps.get_model("training", "EvaluationRun").objects.all():
        ModelVersion.objects.filter(pk=evaluation.model_version_id).update(
            evaluation_status=VERSION_OF[evaluation.status], evaluation_error=evaluation.error
        )


class Migration(migrations.Migration):
    """Evaluation becomes a job (core/jobs.py): an exclusive claim, a heartbeat, attempts."""

    dependencies = [
        ('training', '0008_preferencerun_from_features'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name='EvaluationRun',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('status', models.CharField(choices=[('queued', 'Queued'), ('running', 'Running'), ('succeeded', 'Succeeded'), ('failed', 'Failed'), ('cancelled', 'Cancelled')], db_index=True, default='queued', max_length=16)),
                ('progress', models.PositiveSmallIntegerField(default=0, help_text='Percent done, 0-100.')),
                ('message', models.CharField(blank=True, help_text='What the job is doing now.', max_length=300)),
                ('error', models.TextField(blank=True, help_text='Why the job failed, in words the user can act on.')),
                ('attempts', models.PositiveSmallIntegerField(default=0, help_text='Times a worker claimed it.')),
                ('created_at', models.DateTimeField(auto_now_add=True)),
                ('started_at', models.DateTimeField(blank=True, null=True)),
                ('heartbeat_at', models.DateTimeField(blank=True, null=True)),
                ('finished_at', models.DateTimeField(blank=True, null=True)),
                ('model_version', models.OneToOneField(on_delete=django.db.models.deletion.CASCADE, related_name='evaluation_run', to='training.modelversion')),
                ('owner', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='evaluation_runs', to=settings.AUTH_USER_MODEL)),
            ],
            options={
                'ordering': ['-created_at'],
                'abstract': False,
            },
        ),
        migrations.RunPython(evaluations_from_versions, versions_from_evaluations),
        migrations.RemoveField(
            model_name='modelversion',
            name='evaluation_error',
        ),
        migrations.RemoveField(
            model_name='modelversion',
            name='evaluation_status',
        ),
    ]

"""An account deleted while its training run is in progress: the run stops at its next step and
leaves no file behind (it went on for hours before, writing runs/<uid> and adapters/<uid> again)."""

import pytest

from accounts.actions import do_delete_account, user_data_dirs
from training import lora
from training.actions import do_start_training_run
from training.models import ModelVersion, TrainingRun
from training.tasks import train_model

pytestmark = pytest.mark.django_db


@pytest.fixture
def data_dir(settings, tmp_path):
    settings.TWIN_DATA_DIR = tmp_path / "data"
    settings.MEDIA_ROOT = settings.TWIN_DATA_DIR / "uploads"
    return settings.TWIN_DATA_DIR


def queued_run(owner, monkeypatch, **hyperparameters):
    with monkeypatch.context() as queued_only:
        queued_only.setattr("training.tasks.train_model.delay", lambda run_id: None)
        return do_start_training_run(owner, **hyperparameters)


def files_of(user_id):
    return [str(path) for folder in user_data_dirs(user_id) if folder.exists() for path in folder.rglob("*")]


def test_deleting_the_account_mid_run_stops_it_and_leaves_no_files(data_dir, owner, owner_source, other, monkeypatch):
    real_train = lora.train_lora
    steps = []

    def delete_account_at_step_two(**kwargs):
        on_step = kwargs["on_step"]

        def deleting(step, total, loss):
            steps.append(step)
            if step == 2:  # the checkpoint of step 2 is saved after this, into the folders just removed
                do_delete_account(owner)
            on_step(step, total, loss)

        return real_train(**{**kwargs, "on_step": deleting})

    monkeypatch.setattr("training.tasks.train_lora", delete_account_at_step_two)
    run = queued_run(owner, monkeypatch, save_every=2, eval_every=2)
    owner_id = owner.pk

    train_model(run.pk)  # what the worker runs: it ends quietly

    assert steps == [1, 2, 3]  # stopped at the first step after the deletion, not at its planned 4
    assert files_of(owner_id) == []
    assert not TrainingRun.objects.filter(pk=run.pk).exists() and not ModelVersion.objects.exists()


def test_a_run_deleted_before_its_adapter_is_saved_writes_none(data_dir, owner, owner_source, monkeypatch):
    real_save = lora.save_adapter
    run = queued_run(owner, monkeypatch)

    def deleted_just_before_saving(model, adapter_dir):
        TrainingRun.objects.filter(pk=run.pk).delete()  # its last step done, its adapter not yet written
        real_save(model, adapter_dir)

    monkeypatch.setattr(lora, "save_adapter", deleted_just_before_saving)

    train_model(run.pk)

    assert not ModelVersion.objects.exists()
    assert not (data_dir / "adapters" / str(owner.pk) / f"run-{run.pk}").exists()
    assert not run.run_dir.exists()

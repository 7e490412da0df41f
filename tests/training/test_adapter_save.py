"""A disk that fills up (or refuses writes) while a trained adapter is saved: the run fails
with a clear reason, nothing half-written is left or registered, and the production adapter
keeps serving."""

import errno
import os
from pathlib import Path

import pytest
from peft import peft_model

from chat.actions import do_answer
from training.actions import do_start_training_run
from training.lora import AdapterSaveFailed
from training.models import ModelVersion, TrainingRun

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    "where, code, reason",
    [
        ("adapter", errno.ENOSPC, "could not save the adapter (No space left on device)"),
        ("checkpoints", errno.EROFS, "could not write to disk (Read-only file system)"),
    ],
)
def test_a_disk_that_gives_out_fails_the_run_cleanly_and_production_keeps_serving(
    production_model_version, owner, monkeypatch, where, code, reason
):
    """The final adapter save (into its .partial directory) or a checkpoint save hits the error."""
    real_save = peft_model.safe_save_file

    def disk_gives_out(tensors, filename, metadata=None):
        folder = Path(filename).parent
        if (where == "adapter" and folder.name.endswith(".partial")) or where in folder.parts:
            Path(filename).write_bytes(b"\0" * 512)  # part of the weights reached the disk
            raise OSError(code, os.strerror(code), filename)
        real_save(tensors, filename, metadata=metadata)

    monkeypatch.setattr(peft_model, "safe_save_file", disk_gives_out)  # where peft writes weights
    adapters = production_model_version.adapter_dir.parent

    with pytest.raises(OSError if where == "checkpoints" else AdapterSaveFailed):  # eager: the error reaches us
        do_start_training_run(owner)

    run = TrainingRun.objects.for_user(owner).latest("pk")
    assert (run.status, run.error) == ("failed", f"Training failed: {reason}. Checkpoints are kept; retry to resume.")
    assert not ModelVersion.objects.filter(training_run=run).exists()
    assert [p.name for p in adapters.iterdir()] == [production_model_version.adapter_dir.name]  # no partial files

    answer = do_answer(owner, "Why do you tilt the hives forward?")
    assert answer.status == "done" and answer.model_version == production_model_version and not answer.notice

"""The registry: history of every status change, one-click rollback, export as a PEFT directory, Hub push."""

import io
import zipfile

import pytest
import torch
from django.urls import reverse

from training.actions import TrainingRefused, do_approve_model_version, do_rollback, do_start_training_run
from training.export import HubNotConfigured, push_to_hub
from training.models import ModelVersion

pytestmark = pytest.mark.django_db


def new_version(owner) -> ModelVersion:
    return ModelVersion.objects.get(training_run=do_start_training_run(owner))


def test_every_status_change_is_kept_with_who_when_and_why(owner_source, owner, staff, stub_training):
    first, second = new_version(owner), new_version(owner)
    do_approve_model_version(first, staff)
    do_approve_model_version(second, staff)

    history = [(e.from_status, e.to_status, e.actor, e.reason) for e in first.events.all()]
    assert history == [
        ("", "candidate", None, f"Trained by run {first.training_run_id}"),
        ("candidate", "candidate", None, "Evaluation gate: beats the base model"),
        ("candidate", "production", staff, "Approved"),
        ("production", "approved", staff, "Replaced by v2"),
    ]
    assert all(e.created_at for e in first.events.all())


def test_rollback_serves_the_previous_production_version_again(owner_source, owner, staff, stub_training):
    first, second, third = new_version(owner), new_version(owner), new_version(owner)
    for version in (first, third, second):  # the previous production version is v3, not the newest approved
        do_approve_model_version(version, staff)

    restored = do_rollback(owner, staff, "v2 answers too briefly")

    assert restored == third and ModelVersion.objects.for_user(owner).production() == third
    second.refresh_from_db()
    assert second.status == "approved"
    assert third.events.last().reason == "Rollback from v2: v2 answers too briefly"


def test_rollback_without_an_earlier_version_is_refused(owner_source, owner, staff, stub_training):
    with pytest.raises(TrainingRefused, match="no production version"):
        do_rollback(owner, staff)
    do_approve_model_version(new_version(owner), staff)
    with pytest.raises(TrainingRefused, match="no earlier approved version"):
        do_rollback(owner, staff)


def test_the_admin_rollback_button(client, owner_source, owner, staff, stub_training):
    first, second = new_version(owner), new_version(owner)
    do_approve_model_version(first, staff)
    do_approve_model_version(second, staff)
    client.force_login(staff)

    response = client.post(reverse("admin:training_modelversion_review", args=[second.pk]), {"_review": "rollback"})

    assert response.status_code == 302 and ModelVersion.objects.for_user(owner).production() == first


def test_export_round_trips_through_peft(owner_source, owner, owner_api, other_api, staff_api, tmp_path):
    """A real trained adapter (tiny model), downloaded as a zip, loads with PeftModel.from_pretrained
    and gives the same outputs as the adapter the twin serves."""
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    from training.base_models import resolve

    model_version = new_version(owner)
    url = f"/api/v1/models/{model_version.pk}/export/"

    assert other_api.get(url).status_code == 404
    assert staff_api.get(url).status_code == 200
    response = owner_api.get(url)
    assert response.status_code == 200 and response["Content-Type"] == "application/zip"
    folder = f"twinsite-{owner.pk}-v1"
    assert f'filename="{folder}.zip"' in response["Content-Disposition"]
    zipfile.ZipFile(io.BytesIO(response.content)).extractall(tmp_path)
    exported = tmp_path / folder
    assert {p.name for p in exported.iterdir()} >= {
        "adapter_config.json",
        "adapter_model.safetensors",
        "base_model.json",
        "prompt_template.json",
    }
    assert '"base_model_name_or_path": "tiny"' in (exported / "adapter_config.json").read_text()
    assert "You are {name}" in (exported / "prompt_template.json").read_text()

    path = resolve("tiny")
    ids = torch.tensor([[1, 2, 3, 4, 5]])
    loaded = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(path), str(exported)).eval()
    served = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(path), str(model_version.adapter_dir))
    with torch.no_grad():
        assert torch.allclose(loaded(ids).logits, served.eval()(ids).logits)
        with loaded.disable_adapter():
            assert not torch.allclose(loaded(ids).logits, served(ids).logits)  # the adapter matters


def test_hub_push_is_refused_until_configured(owner_source, owner, stub_training, settings):
    settings.TWIN_HF_TOKEN = ""
    with pytest.raises(HubNotConfigured, match="TWIN_HF_TOKEN"):
        push_to_hub(new_version(owner))


class RecordingHub:
    """Records the calls an HfApi would get (no network here); checks the folder while it exists."""

    def __init__(self):
        self.calls = []

    def create_repo(self, **kwargs):
        self.calls.append(("create_repo", kwargs))

    def upload_folder(self, **kwargs):
        from pathlib import Path

        files = sorted(p.name for p in Path(kwargs["folder_path"]).iterdir())
        self.calls.append(("upload_folder", {**kwargs, "folder_path": "…", "files": files}))


def test_hub_push_creates_a_private_repo_and_uploads_the_version(owner_source, owner, stub_training, settings):
    settings.TWIN_HF_TOKEN, settings.TWIN_HF_REPO_PREFIX = "hf_test", "acme/twin-"
    model_version = new_version(owner)
    hub = RecordingHub()

    assert push_to_hub(model_version, api=hub) == f"acme/twin-{owner.pk}"

    (create, created), (upload, uploaded) = hub.calls
    assert create == "create_repo" and created == {
        "repo_id": f"acme/twin-{owner.pk}",
        "private": True,
        "exist_ok": True,
        "repo_type": "model",
    }
    assert upload == "upload_folder" and uploaded["path_in_repo"] == "v1"
    assert uploaded["repo_id"] == f"acme/twin-{owner.pk}" and model_version.sha256[:12] in uploaded["commit_message"]
    assert {"adapter_config.json", "adapter_model.safetensors", "prompt_template.json"} <= set(uploaded["files"])

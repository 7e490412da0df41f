"""A model version as a standard PEFT adapter directory, zipped; optional push to a private Hub repo.

The directory is what `PeftModel.from_pretrained(base, path)` reads
(adapter_config.json + adapter_model.safetensors), with the base model named by
its hub id, plus the twin's prompt template (system prompt and notes fence) so
the adapter is served with the prompt it was trained with, and a short model card.
"""

import io
import json
import tempfile
import zipfile
from pathlib import Path

from accounts.hub import hub_api, hub_configured, twin_repo_id
from features import prompts

from .base_models import hub_id

ADAPTER_FILES = ("adapter_config.json", "adapter_model.safetensors")


class ExportRefused(Exception):
    pass


def folder_name(model_version) -> str:
    return f"twinsite-{model_version.owner_id}-v{model_version.version}"


def write_adapter_dir(model_version, out: Path) -> Path:
    """The PEFT directory for the version under `out`; ExportRefused when its files are missing."""
    source = model_version.adapter_dir
    if model_version.adapter_pruned_at:
        raise ExportRefused(f"Model v{model_version.version} was rejected and its files have since been deleted.")
    missing = [name for name in ADAPTER_FILES if not (source / name).exists()]
    if missing:
        raise ExportRefused(f"Model v{model_version.version} has no {', '.join(missing)} on disk.")
    out.mkdir(parents=True, exist_ok=True)
    config = json.loads((source / "adapter_config.json").read_text())
    base_id = hub_id(model_version.base_model.identifier)
    config["base_model_name_or_path"] = base_id  # not the path of this server's model cache
    (out / "adapter_config.json").write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
    (out / "adapter_model.safetensors").write_bytes((source / "adapter_model.safetensors").read_bytes())
    (out / "base_model.json").write_text(
        json.dumps(
            {
                "identifier": model_version.base_model.identifier,
                "name": model_version.base_model.name,
                "hub_id": base_id,
            },
            indent=2,
        )
        + "\n"
    )
    (out / "prompt_template.json").write_text(
        json.dumps(
            {
                "system_prompt": prompts.SYSTEM_PROMPT,
                "notes_fence": [prompts.FENCE_OPEN, prompts.FENCE_CLOSE],
                "format": "the base model's chat template (tokenizer.apply_chat_template) over "
                "[system, user] messages; see training/prompts.py build_messages",
            },
            indent=2,
        )
        + "\n"
    )
    (out / "README.md").write_text(
        f"# Twinsite adapter v{model_version.version}\n\nLoRA adapter for `{base_id}`, SHA-256 of the "
        f"trained directory `{model_version.sha256}`.\n\n```python\nfrom peft import PeftModel\n"
        f"from transformers import AutoModelForCausalLM\n\nbase = AutoModelForCausalLM.from_pretrained("
        f'"{base_id}")\nmodel = PeftModel.from_pretrained(base, "path/to/this/folder")\n```\n'
    )
    return out


def export_zip(model_version) -> bytes:
    buffer = io.BytesIO()
    with tempfile.TemporaryDirectory() as tmp:
        folder = write_adapter_dir(model_version, Path(tmp) / folder_name(model_version))
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
            for file in sorted(folder.iterdir()):
                archive.write(file, f"{folder.name}/{file.name}")
    return buffer.getvalue()


class HubNotConfigured(ExportRefused):
    pass


def hub_repo_id(model_version) -> str:
    return twin_repo_id(model_version.owner_id)  # the one repository that deleting the account deletes


def push_to_hub(model_version, api=None) -> str:
    """Upload the adapter directory to the twin's private Hub repository (one folder per version).

    Needs TWIN_HF_TOKEN and TWIN_HF_REPO_PREFIX; `api` is an `HfApi` (made from the token
    when not given). Returns the repository id.
    """
    if not hub_configured():
        raise HubNotConfigured("Hub push is not configured: set TWIN_HF_TOKEN and TWIN_HF_REPO_PREFIX.")
    if api is None:
        api = hub_api()
    repo_id = hub_repo_id(model_version)
    with tempfile.TemporaryDirectory() as tmp:
        folder = write_adapter_dir(model_version, Path(tmp) / folder_name(model_version))
        api.create_repo(repo_id=repo_id, private=True, exist_ok=True, repo_type="model")
        api.upload_folder(
            repo_id=repo_id,
            folder_path=str(folder),
            path_in_repo=f"v{model_version.version}",
            commit_message=f"Twinsite model v{model_version.version} ({model_version.sha256[:12]})",
            repo_type="model",
        )
    return repo_id

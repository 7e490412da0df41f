"""A production adapter whose files are missing, damaged or unreadable: the twin keeps
answering with the base model, says so on the answer and the chat page, and reports the
error; once the files are back, the adapter serves again."""

import json
import logging
import shutil

import pytest
from django.test import override_settings
from django.urls import reverse

from chat.llm import TwinModels
from chat.models import PromptTrace

pytestmark = pytest.mark.django_db

QUESTION = "Why do you tilt the hives forward?"


@pytest.fixture
def restart_serving(monkeypatch):
    """Put generation in the state of a freshly started serving worker: no adapter loaded yet."""

    def restart():
        models = TwinModels()
        monkeypatch.setattr("chat.serving.get_models", lambda: models)

    restart()
    return restart


def remove_files(model_version):
    shutil.rmtree(model_version.adapter_dir)


def flip_a_byte(model_version):
    weights = model_version.adapter_dir / "adapter_model.safetensors"
    data = bytearray(weights.read_bytes())
    data[len(data) // 2] ^= 0xFF
    weights.write_bytes(bytes(data))


def unreadable_config(model_version):
    """Files that match the registered sha256 but that peft cannot load (registered that way)."""
    from training.lora import directory_sha256

    (model_version.adapter_dir / "adapter_config.json").write_text(json.dumps({"peft_type": "NOT_A_METHOD"}))
    model_version.sha256 = directory_sha256(model_version.adapter_dir)
    model_version.save(update_fields=["sha256"])


DAMAGES = [
    (remove_files, "its files are missing"),
    (flip_a_byte, "its files are damaged"),
    (unreadable_config, "its files could not be loaded"),
]


def test_a_broken_adapter_is_replaced_by_the_base_model_with_a_notice(
    production_model_version, owner_api, owner_client, restart_serving, caplog, tmp_path
):
    pristine = shutil.copytree(production_model_version.adapter_dir, tmp_path / "pristine")
    for damage, problem in DAMAGES:  # one trained adapter, damaged three ways in turn
        shutil.rmtree(production_model_version.adapter_dir, ignore_errors=True)
        shutil.copytree(pristine, production_model_version.adapter_dir)
        production_model_version.refresh_from_db()
        damage(production_model_version)
        restart_serving()
        caplog.clear()

        with caplog.at_level(logging.ERROR, logger="chat.llm"):
            response = owner_api.post("/api/v1/chat/", {"message": QUESTION}, format="json")

        assert response.status_code == 200, problem
        message = response.json()["message"]
        assert message["status"] == "done" and message["content"] and message["model_version"] is None
        assert f"adapter v1 could not be used: {problem}" in message["notice"]
        assert "base model answered" in message["notice"] and "reported" in message["notice"]
        assert PromptTrace.objects.get(message_id=message["id"]).model_version is None
        reported = [r for r in caplog.records if r.name == "chat.llm" and r.levelno == logging.ERROR]
        assert len(reported) == 1 and f"model version {production_model_version.pk}" in reported[0].getMessage()

        page = owner_client.get(reverse("conversation", args=[response.json()["conversation"]])).content.decode()
        assert message["notice"] in page
        assert f"base model: your adapter v1 could not be used: {problem}" in page  # the "Answering with" line


@override_settings(TWIN_MAX_SENTENCES=1, TWIN_MAX_NEW_TOKENS=60)  # an answer that ends by itself: "stop"
def test_the_openai_endpoint_carries_the_notice_and_the_adapter_serves_again_once_repaired(
    production_model_version, owner_api, owner_client, restart_serving, tmp_path
):
    kept = shutil.copytree(production_model_version.adapter_dir, tmp_path / "kept")
    remove_files(production_model_version)
    body = {"messages": [{"role": "user", "content": QUESTION}]}

    plain = owner_api.post("/v1/chat/completions", body, format="json")
    streamed = owner_api.post("/v1/chat/completions", {**body, "stream": True}, format="json")
    chunks = [json.loads(line[6:]) for line in b"".join(streamed.streaming_content).decode().split("\n\n")[:-2]]

    assert plain.status_code == 200 and "its files are missing" in plain.json()["notice"]
    assert plain.json()["choices"][0]["message"]["content"]
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop" and "its files are missing" in chunks[-1]["notice"]

    shutil.copytree(kept, production_model_version.adapter_dir)
    message = owner_api.post("/api/v1/chat/", {"message": QUESTION}, format="json").json()["message"]

    assert message["model_version"] == production_model_version.pk and message["notice"] == ""
    assert "+ your adapter v1" in owner_client.get(reverse("chat")).content.decode()

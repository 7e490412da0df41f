"""The serving worker loads its models when its process starts, not on the first answer."""

import pytest

from chat import tasks
from chat.llm import TwinModels
from tests import processes


def test_warming_loads_the_base_model_tokenizer_and_embedder(monkeypatch, settings):
    fresh = TwinModels()  # this test process may have loaded the shared one already
    monkeypatch.setattr(tasks, "get_models", lambda: fresh)
    tasks.warm_serving_models()
    assert fresh.base_identifier == settings.TWIN_BASE_MODEL
    assert fresh.model is not None and fresh.tokenizer is not None
    assert not fresh.lock.locked()


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_a_serve_worker_loads_the_models_as_it_starts(tmp_path):
    env = processes.process_env()
    logs = {queue: tmp_path / f"{queue}.log" for queue in ("serve", "default")}
    workers = [processes.start_worker(queue, log, env) for queue, log in logs.items()]
    try:
        loaded = lambda: "serving models loaded: tiny" in logs["serve"].read_text()  # noqa: E731
        processes.wait_for(loaded, logs, "the serve worker to load its models")
        processes.wait_for(lambda: "ready." in logs["default"].read_text(), logs, "the default worker")
        assert "serving models loaded" not in logs["default"].read_text()  # only the serve queue's worker
    finally:
        for worker in workers:
            processes.kill(worker)

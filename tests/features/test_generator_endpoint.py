"""The optional OpenAI-compatible dataset generator, against a fake endpoint on loopback: it writes
the instruct dataset's instructions and the preference dataset's rejected answers; a failing endpoint
is a clear error and leaves nothing half-written."""

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from core.jobs import JobStatus
from features.actions import do_build_dataset_version
from features.datasets import read_records
from features.models import DatasetVersion, FeatureRun
from tests.conftest import add_markdown_source
from tests.features.test_datasets import essay
from training.actions import do_queue_preference_run
from training.models import PreferenceRun

pytestmark = pytest.mark.django_db
KEY = "sk-test-key"


class FakeOpenAI:
    """POST /v1/chat/completions: a canned completion, an HTTP 500 or a reply that is not JSON."""

    def __init__(self):
        self.mode = "ok"
        self.requests: list[dict] = []
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                fake.requests.append({"path": self.path, "auth": self.headers.get("Authorization"), **body})
                if fake.mode == "fail":
                    return self.reply(500, {"error": {"message": "the model is overloaded", "type": "server_error"}})
                if fake.mode == "garbage":
                    return self.reply(200, b"<html>not json</html>")
                return self.reply(200, fake.completion(body))

            def reply(self, status, payload):
                data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    @staticmethod
    def completion(body: dict) -> dict:
        system, user = body["messages"][0]["content"], body["messages"][-1]["content"]
        if "write the one instruction" in system:
            first_word = user.split("<passage>\n", 1)[1].split()[0]
            text = f"What does your passage starting with {first_word} say?"
        else:
            text = f"A generic answer to: {user}"
        return {
            "id": "chatcmpl-1",
            "object": "chat.completion",
            "created": 0,
            "model": body["model"],
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
        }

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_port}/v1"

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def endpoint(settings):
    fake = FakeOpenAI()
    settings.TWIN_GENERATOR_BASE_URL = fake.base_url
    settings.TWIN_GENERATOR_MODEL = "fake-writer"
    settings.TWIN_GENERATOR_API_KEY = KEY
    settings.TWIN_GENERATOR_TIMEOUT = 5
    settings.TWIN_PREFERENCE_MAX_PAIRS = 6
    yield fake
    fake.close()


def dataset_files(settings, owner) -> list[str]:
    folder = settings.TWIN_DATA_DIR / "datasets" / str(owner.pk)
    return sorted(str(p) for p in folder.rglob("*")) if folder.exists() else []


def test_the_endpoint_writes_the_style_instructions_of_the_instruct_dataset(owner, endpoint):
    add_markdown_source(owner, "garden.md", essay(3))

    dataset = DatasetVersion.objects.for_user(owner).get()
    records = read_records(dataset.file_path)
    style = [r for r in records if r["kind"] == "style"]
    assert style and all(
        r["instruction"] == f"What does your passage starting with {r['answer'].split()[0]} say?" for r in style
    )
    assert (
        dataset.lineage["builder"] == f"verbatim-extracts-v1+instructions-by:endpoint:fake-writer@{endpoint.base_url}"
    )
    assert {(r["path"], r["auth"], r["model"]) for r in endpoint.requests} == {
        ("/v1/chat/completions", f"Bearer {KEY}", "fake-writer")
    }
    assert len(endpoint.requests) == len({r["answer"] for r in style})


def test_a_rebuild_asks_the_endpoint_only_about_new_passages(owner, endpoint):
    add_markdown_source(owner, "garden.md", essay(3))
    first = DatasetVersion.objects.for_user(owner).get()
    asked = len(endpoint.requests)

    again, created = do_build_dataset_version(owner)

    assert (again, created) == (first, False) and len(endpoint.requests) == asked


@pytest.mark.parametrize(
    ("mode", "reason"),
    [("fail", "answered HTTP 500: the model is overloaded"), ("garbage", "sent a reply that is not a chat completion")],
)
def test_a_failing_endpoint_fails_the_run_clearly_and_writes_no_dataset(owner, endpoint, settings, mode, reason):
    endpoint.mode = mode

    add_markdown_source(owner, "garden.md", essay(3))

    run = FeatureRun.objects.get(owner=owner)
    assert run.status == JobStatus.FAILED
    assert reason in run.error and "127.0.0.1" in run.error and "no dataset version was written" in run.error
    assert KEY not in run.error
    assert not DatasetVersion.objects.filter(owner=owner).exists() and dataset_files(settings, owner) == []
    assert owner.chunks.exists()  # the chunks are saved and searchable


def test_an_unreachable_endpoint_says_so(owner, endpoint, settings):
    settings.TWIN_GENERATOR_BASE_URL = "http://127.0.0.1:9/v1"  # discard port: nothing listens

    add_markdown_source(owner, "garden.md", essay(3))

    run = FeatureRun.objects.get(owner=owner)
    assert run.status == JobStatus.FAILED and "could not be reached" in run.error
    assert not DatasetVersion.objects.filter(owner=owner).exists()


def test_the_endpoint_writes_the_rejected_answers_of_the_preference_dataset(owner, endpoint):
    add_markdown_source(owner, "garden.md", essay(3))
    instruct = DatasetVersion.objects.for_user(owner).get()

    run = do_queue_preference_run(instruct)

    run.refresh_from_db()
    assert run.status == JobStatus.SUCCEEDED, run.error
    pairs = read_records(run.dataset_version.file_path)
    assert len(pairs) == 6
    for pair in pairs:
        asked = pair["prompt"][-1]["content"]  # the write template around the brief
        assert pair["rejected"][0]["content"] == f"A generic answer to: {asked}" and pair["instruction"] in asked
        assert pair["chosen"][0]["content"] != pair["rejected"][0]["content"]
    assert run.dataset_version.lineage["generator"] == f"endpoint:fake-writer@{endpoint.base_url}"


def test_a_failing_endpoint_fails_the_preference_build_and_writes_nothing(owner, endpoint, settings):
    add_markdown_source(owner, "garden.md", essay(3))
    instruct = DatasetVersion.objects.for_user(owner).get()
    files_before = dataset_files(settings, owner)
    endpoint.mode = "fail"

    run = do_queue_preference_run(instruct)

    run.refresh_from_db()
    assert run.status == JobStatus.FAILED
    assert "answered HTTP 500" in run.error and "No preference dataset was written" in run.error
    assert not DatasetVersion.objects.filter(owner=owner).preference().exists()
    assert dataset_files(settings, owner) == files_before
    assert PreferenceRun.objects.get(owner=owner).dataset_version is None


def test_a_base_url_without_a_model_is_a_clear_error(owner, endpoint, settings):
    settings.TWIN_GENERATOR_MODEL = ""

    add_markdown_source(owner, "garden.md", essay(3))

    assert "TWIN_GENERATOR_MODEL is not" in FeatureRun.objects.get(owner=owner).error

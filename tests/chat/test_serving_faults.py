"""Faults with real processes: a gunicorn web server and a serving worker (queue "serve"),
each killed with SIGKILL in the middle of an answer. No answer stays "streaming": the
serving worker finishes what a dead web process was showing, and a dead serving worker's
answer is marked interrupted (with what it had said) by the web that follows it."""

import json

import pytest
import requests

from accounts.actions import do_issue_api_token
from chat.admission import INTERRUPTED
from chat.models import Message
from tests.conftest import add_markdown_source
from tests.processes import (
    forget_queued_tasks,
    free_port,
    kill,
    process_env,
    start_web,
    start_worker,
    stop,
    wait_for,
)
from twinsite.celery import app as celery_app

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]
QUESTION = "Why do you tilt the hives forward?"
# Long answers (the tiny model writes ~40 tokens/s here), so that a kill lands mid-answer.
LONG_ANSWERS = {"TWIN_TEST_MAX_NEW_TOKENS": "600", "TWIN_MAX_SENTENCES": "0"}


class Site:
    """The web and serving processes of one test, and their logs."""

    def __init__(self, tmp_path):
        self.tmp_path, self.logs, self.processes = tmp_path, {}, {}
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"

    def start(self, name: str):
        log = self.tmp_path / f"{name}-{len(self.logs)}.log"
        self.logs[f"{name}-{len(self.logs)}"] = log
        if name == "web":
            self.processes[name] = start_web(self.port, log, process_env())
            wait_for(self._web_answers, self.logs, "the web server")
        else:
            self.processes[name] = start_worker("serve", log, process_env(**LONG_ANSWERS))
            wait_for(lambda: "ready." in log.read_text(), self.logs, "the serving worker")

    def _web_answers(self) -> bool:
        try:
            return requests.get(f"{self.base}/login/", timeout=10).status_code == 200
        except requests.RequestException:  # not listening yet, or still importing
            return False

    def kill(self, name: str):
        kill(self.processes.pop(name))

    def close(self):
        for process in self.processes.values():
            stop(process, grace=5)


@pytest.fixture
def site(tmp_path, owner):
    add_markdown_source(owner)  # committed, through this process's eager pipeline
    forget_queued_tasks("serve")
    celery_app.conf.task_always_eager = False  # answers asked from this process go to the serving worker too
    site = Site(tmp_path)
    try:
        yield site
    finally:
        site.close()
        celery_app.conf.task_always_eager = True
        forget_queued_tasks("serve")


def stream_chat(site: Site, owner) -> requests.Response:
    _, token = do_issue_api_token(owner, "fault tests")
    return requests.post(
        f"{site.base}/v1/chat/completions",
        json={"messages": [{"role": "user", "content": QUESTION}], "stream": True},
        headers={"Authorization": f"Bearer {token}"},
        stream=True,
        timeout=120,
    )


def sse_payloads(response: requests.Response):
    for line in response.iter_lines():
        if line.startswith(b"data: ") and line != b"data: [DONE]":
            yield json.loads(line[6:])


def first_token(payloads) -> str:
    for payload in payloads:
        content = payload.get("choices", [{}])[0].get("delta", {}).get("content")
        if content:
            return content
    pytest.fail("the stream ended before any token")


def test_a_web_process_killed_mid_answer_leaves_nothing_streaming(site, owner, client):
    site.start("serve")
    site.start("web")
    response = stream_chat(site, owner)
    first_token(sse_payloads(response))
    answer = Message.objects.get(role="assistant")
    assert answer.status == "streaming"  # mid-answer

    site.kill("web")
    response.close()

    finished = wait_for(
        lambda: Message.objects.filter(pk=answer.pk, status__in=["done", "failed"]).first(), site.logs, "the answer"
    )
    assert finished.status == "done" and len(finished.content) > 100  # the serving worker finished it
    assert not Message.objects.in_flight().exists()

    site.start("web")  # a new web process shows the finished answer
    client.force_login(owner)
    replay = requests.get(
        f"{site.base}/chat/messages/{answer.pk}/stream/",
        cookies={"sessionid": client.cookies["sessionid"].value},
        timeout=30,
    ).text
    assert "event: done" in replay and "event: error" not in replay


def test_a_serving_worker_killed_mid_answer_is_marked_interrupted_and_another_serves(site, owner):
    site.start("serve")
    site.start("web")
    response = stream_chat(site, owner)
    payloads = sse_payloads(response)
    said = first_token(payloads)
    answer = Message.objects.get(role="assistant")
    assert answer.status == "streaming"

    site.kill("serve")
    rest = list(payloads)  # the web follower notices the missing heartbeat and ends the stream

    assert rest[-2] == {"error": {"message": INTERRUPTED}} and rest[-1]["choices"][0]["finish_reason"] == "stop"
    said += "".join(p["choices"][0]["delta"].get("content", "") for p in rest[:-2])
    answer.refresh_from_db()
    assert (answer.status, answer.error) == ("failed", INTERRUPTED)
    assert answer.content and answer.content == said  # what it had said is kept

    site.start("serve")
    _, token = do_issue_api_token(owner, "after the restart")
    again = requests.post(
        f"{site.base}/api/v1/chat/",
        json={"message": QUESTION},
        headers={"Authorization": f"Bearer {token}"},
        timeout=120,
    )
    assert again.status_code == 200 and again.json()["message"]["status"] == "done"
    assert not Message.objects.in_flight().exists()

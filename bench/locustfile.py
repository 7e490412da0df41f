"""Locust users for bench/load.py, which runs them against a site on loopback:
browsing users (pages, web and API search, documents) and chatting users (the web chat
with its SSE stream, and the OpenAI-compatible streaming endpoint), each signed in to an
account of its own that bench/load.py seeded (TWIN_LOAD_ACCOUNTS, a JSON file), and, in
the flood phase, visitors flooding the first account's published twin through its widget.

The site runs with production settings (DEBUG off: secure cookies, CSRF checks against
the Referer of an HTTPS origin), as if behind a TLS proxy on the same machine: requests
carry X-Forwarded-Proto and an https Referer, and the session's cookies go in a Cookie
header of their own (a cookie jar keeps secure cookies off plain HTTP).
Django never imports here: locust patches the standard library for gevent.
"""

import itertools
import json
import os
import random
import re
import secrets
import time
from pathlib import Path
from urllib.parse import urlparse

from locust import HttpUser, between, constant, task

ACCOUNTS = json.loads(Path(os.environ["TWIN_LOAD_ACCOUNTS"]).read_text())
CHATTERS = int(os.environ.get("TWIN_LOAD_CHATTERS", "0"))  # the first accounts belong to chatting users
FLOODERS = int(os.environ.get("TWIN_LOAD_FLOODERS", "0"))
_next_chatter, _next_browser = itertools.count(), itertools.count()

SEARCHES = ["sourdough starter", "winter cycling", "backups", "code review", "small tools", "slow mornings"]
QUESTIONS = [
    "What ratio do you feed your sourdough starter?",
    "How do you keep cycling through the winter?",
    "How do you test that your backups restore?",
    "What do you look for in a code review?",
    "Why do you write small tools?",
    "What changed when you slowed your mornings down?",
]
ANSWER_ID = re.compile(r"/chat/messages/(\d+)/stream/")


class SiteUser(HttpUser):
    abstract = True

    def on_start(self):
        self.client.headers.update({"X-Forwarded-Proto": "https", "Referer": f"https://{urlparse(self.host).netloc}/"})
        self.account = self.pick_account()
        self.csrf = self.client.get("/login/", name="/login/").cookies["csrftoken"]
        self.client.headers["Cookie"] = f"csrftoken={self.csrf}"
        credentials = {"username": self.account["username"], "password": self.account["password"]}
        with self.client.post(
            "/login/",
            {**credentials, "csrfmiddlewaretoken": self.csrf},
            name="/login/ (POST)",
            allow_redirects=False,
            catch_response=True,
        ) as response:
            if response.status_code != 302:
                response.failure(f"login answered {response.status_code}")
                return
            self.csrf = response.cookies["csrftoken"]  # rotated at login
            self.client.headers["Cookie"] = f"csrftoken={self.csrf}; sessionid={response.cookies['sessionid']}"

    def pick_account(self) -> dict:
        raise NotImplementedError


class BrowsingUser(SiteUser):
    """Reads the pages of their twin and searches their writing, a page every 1-3 s."""

    wait_time = between(1, 3)

    def pick_account(self):
        others = ACCOUNTS[CHATTERS:] or ACCOUNTS
        return others[next(_next_browser) % len(others)]

    @task(3)
    def dashboard(self):
        self.client.get("/dashboard/", name="/dashboard/")

    @task
    def sources(self):
        self.client.get("/sources/", name="/sources/")

    @task
    def datasets(self):
        self.client.get("/datasets/", name="/datasets/")

    @task
    def training(self):
        self.client.get("/training/", name="/training/")

    @task(2)
    def chat_page(self):
        self.client.get("/chat/", name="/chat/")

    @task(2)
    def document(self):
        self.client.get(f"/documents/{random.choice(self.account['documents'])}/", name="/documents/[id]/")

    @task(2)
    def search(self):
        self.client.get("/search/", params={"q": random.choice(SEARCHES)}, name="/search/?q=")

    @task
    def api_documents(self):
        self.client.get("/api/v1/documents/", name="/api/v1/documents/")

    @task(2)
    def api_search(self):
        self.client.get("/api/v1/search/", params={"q": random.choice(SEARCHES)}, name="/api/v1/search/?q=")


class ChattingUser(SiteUser):
    """Asks their twin a question, reads the streamed answer to its end, thinks 2-5 s, asks again;
    in the web chat and through the OpenAI-compatible endpoint in turn."""

    wait_time = between(2, 5)
    fixed_count = CHATTERS

    def pick_account(self):
        return ACCOUNTS[next(_next_chatter) % max(1, CHATTERS)]

    def _timed_stream(self, response, started: float, name: str, is_first_token, is_error) -> None:
        """Read a streamed answer to its end; report its first token and its end (locust times the headers)."""
        first = None
        for line in response.iter_lines():
            if first is None and is_first_token(line):
                first = time.perf_counter()
                self._report(f"{name}: first token", (first - started) * 1000)
            if is_error(line):
                response.failure(f"the answer failed: {line[:200]!r}")
                return
        if first is None:
            response.failure("the answer ended without a token")
            return
        self._report(f"{name}: whole answer", (time.perf_counter() - started) * 1000)

    def _report(self, name: str, milliseconds: float):
        self.environment.events.request.fire(
            request_type="SSE", name=name, response_time=milliseconds, response_length=0, exception=None
        )

    @task
    def web_chat(self):
        with self.client.post(
            "/chat/send/",
            {"message": random.choice(QUESTIONS), "csrfmiddlewaretoken": self.csrf},
            headers={"HX-Request": "true"},
            name="/chat/send/",
            catch_response=True,
        ) as response:
            found = ANSWER_ID.search(response.text)
            if response.status_code != 200 or not found:
                response.failure(f"send answered {response.status_code}: {response.text[:200]}")
                return
        started = time.perf_counter()
        with self.client.get(
            f"/chat/messages/{found.group(1)}/stream/",
            name="/chat/messages/[id]/stream/",
            stream=True,
            catch_response=True,
        ) as response:
            token, error = (lambda line: line == b"event: token"), (lambda line: line == b"event: error")
            self._timed_stream(response, started, "web chat", token, error)

    @task
    def openai_chat(self):
        started = time.perf_counter()
        with self.client.post(
            "/v1/chat/completions",
            json={"messages": [{"role": "user", "content": random.choice(QUESTIONS)}], "stream": True},
            headers={"Authorization": f"Bearer {self.account['token']}"},
            name="/v1/chat/completions (stream)",
            stream=True,
            catch_response=True,
        ) as response:
            if response.status_code != 200:
                response.failure(f"answered {response.status_code}")
                return
            token, error = (lambda line: b'"content"' in line), (lambda line: line.startswith(b'data: {"error"'))
            self._timed_stream(response, started, "openai chat", token, error)


class FloodingVisitor(HttpUser):
    """A visitor of the first account's published twin asking its widget as fast as it can, never
    waiting for an answer nor for Retry-After (bench/load.py's flood phase). 429 (throttled, quota)
    and 503 (the visitors' share of the answers in flight is full) are what it should get: counted
    per status under "visitor ask -> <status>", not as failures."""

    wait_time = constant(0.25)
    fixed_count = FLOODERS

    def on_start(self):
        self.key = ACCOUNTS[0]["widget_key"]
        self.visitor = secrets.token_hex(16)

    @task
    def ask(self):
        started = time.perf_counter()
        with self.client.post(
            f"/widget/{self.key}/ask/",
            data=json.dumps({"visitor": self.visitor, "message": random.choice(QUESTIONS)}),
            headers={"Content-Type": "text/plain", "Origin": ACCOUNTS[0]["widget_origin"]},
            name="/widget/[key]/ask/",
            catch_response=True,
        ) as response:
            if response.status_code in (202, 429, 503):
                response.success()
            else:
                response.failure(f"answered {response.status_code}: {response.text[:200]}")
            if response.status_code in (429, 503) and not response.headers.get("Retry-After"):
                response.failure(f"{response.status_code} without Retry-After")
        self.environment.events.request.fire(
            request_type="WIDGET",
            name=f"visitor ask -> {response.status_code}",
            response_time=(time.perf_counter() - started) * 1000,
            response_length=0,
            exception=None,
        )

"""Load: users browsing, searching and chatting at once, against the site as the Procfile
runs it (gunicorn `web` and the `serve` worker, started from the Procfile's own lines with
production settings), on loopback, for a bounded time. Locust drives the users
(bench/locustfile.py).

Two phases on the same seeded site, in the same run:
- baseline: browsing users only (no answer is being generated);
- load: the same browsing users while chatting users keep the serving worker busy, each
  asking again 2-5 s after its answer ends (web chat with SSE, and the OpenAI endpoint).

Rows: p95 of every page or API call under load against its p95 in the baseline phase
(the cost of answers being generated at the same time), p50 and p95 of the chat streams,
and the errors of both phases. Targets (issue 7): zero errors, and every non-chat
endpoint under 200 ms at p95 while answers are generated.

.venv/bin/python -m bench.load --seconds 120     # a shorter load phase (default 300, --quick 60)
"""

import argparse
import csv
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests

from . import common
from .common import info_row, log, row

BROWSERS, CHATTERS = 16, 3  # chatters stay under the site's answers in flight: no "busy" by design
ACCOUNTS = 6  # the chatters each have their own; browsing users share the others
PASSWORD = "load-test passphrase"  # noqa: S105 (scratch accounts on a scratch database)
PAGE_TARGET_MS = 200
CHAT_PREFIXES = ("/chat/send/", "/chat/messages/", "/v1/chat/", "web chat", "openai chat")
SIGN_IN = ("/login/",)  # each user signs in once; a password hash costs ~0.5 s of CPU on purpose


def procfile_command(name: str) -> str:
    """The Procfile's command line for one process (what `make run` starts)."""
    for line in (common.ROOT / "Procfile").read_text().splitlines():
        if line.startswith(f"{name}:"):
            return line.split(":", 1)[1].strip()
    raise KeyError(name)


def start(name: str, log_path: Path, env: dict) -> subprocess.Popen:
    with open(log_path, "w") as output:
        return subprocess.Popen(
            ["bash", "-c", procfile_command(name)],
            cwd=common.ROOT,
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: stopped with its children
        )


def stop(process: subprocess.Popen):
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def seed(count: int) -> list[dict]:
    """Accounts with two demo documents each, through the real pipeline (eager, in this process)."""
    from django.core.files.uploadedfile import SimpleUploadedFile

    from accounts.actions import do_create_user, do_issue_api_token
    from ingestion.actions import do_add_upload_source
    from ingestion.models import Document
    from twinsite.celery import app as celery_app

    files = sorted(p for p in common.CORPUS_DIR.iterdir() if p.suffix in (".md", ".txt"))
    celery_app.conf.task_always_eager = True
    accounts = []
    try:
        for i in range(count):
            user = do_create_user(f"load{i}", PASSWORD, twin_name=f"Load {i}")
            for path in (files[i % len(files)], files[(i + 1) % len(files)]):
                upload = SimpleUploadedFile(path.name, path.read_bytes(), content_type="text/plain")
                do_add_upload_source(user, upload, category="article")
            _, token = do_issue_api_token(user, "load test")
            documents = list(Document.objects.for_user(user).values_list("pk", flat=True))
            accounts.append({"username": user.username, "password": PASSWORD, "token": token, "documents": documents})
    finally:
        celery_app.conf.task_always_eager = False
    return accounts


def wait_until_serving(base: str, account: dict, logs: list[Path]):
    """The web answers pages, and the serving worker has answered once (its model is loaded)."""
    deadline = time.monotonic() + 300
    headers = {"Authorization": f"Bearer {account['token']}", "X-Forwarded-Proto": "https"}
    while time.monotonic() < deadline:
        try:
            response = requests.post(
                f"{base}/api/v1/chat/", json={"message": "Why do you write?"}, headers=headers, timeout=120
            )
            if response.status_code == 200:
                requests.get(f"{base}/api/v1/search/", params={"q": "warm up"}, headers=headers, timeout=60)
                return
        except requests.RequestException:
            pass
        time.sleep(2)
    tails = "\n".join(f"--- {p.name}\n{p.read_text()[-2000:]}" for p in logs)
    raise RuntimeError(f"the site did not start serving answers:\n{tails}")


def run_locust(base: str, accounts_file: Path, out: Path, seconds: int, chatters: int) -> dict[str, dict]:
    """One headless locust run; its per-endpoint stats by name."""
    users = ["BrowsingUser"] + (["ChattingUser"] if chatters else [])
    command = [
        str(Path(sys.executable).with_name("locust")),
        "-f",
        str(common.ROOT / "bench" / "locustfile.py"),
        "--headless",
        "--host",
        base,
        "--users",
        str(BROWSERS + chatters),
        "--spawn-rate",
        str(BROWSERS + chatters),
        "--run-time",
        f"{seconds}s",
        "--stop-timeout",
        "60",  # answers being read when the time is up are read to their end
        "--csv",
        str(out),
        "--only-summary",
        "--loglevel",
        "WARNING",
        *users,
    ]
    env = {**os.environ, "TWIN_LOAD_ACCOUNTS": str(accounts_file), "TWIN_LOAD_CHATTERS": str(chatters)}
    subprocess.run(command, env=env, check=False, timeout=seconds + 180, stdout=subprocess.DEVNULL)
    with open(f"{out}_stats.csv") as stats:
        return {r["Name"]: r for r in csv.DictReader(stats) if r["Name"] != "Aggregated"}


def failures(out: Path) -> list[dict]:
    path = Path(f"{out}_failures.csv")
    return list(csv.DictReader(path.open())) if path.exists() else []


def is_chat(name: str) -> bool:
    return name.startswith(CHAT_PREFIXES)


def run(quick: bool, seconds: int | None = None) -> dict:
    common.setup_django()
    from django.conf import settings
    from django.core.management import call_command

    from chat.models import Message

    load_seconds = seconds or (60 if quick else 300)
    baseline_seconds = max(30, load_seconds // 3)
    work = Path(tempfile.mkdtemp(prefix="twinsite-load-"))
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {
        **os.environ,
        "TWIN_PORT": str(port),
        "ALLOWED_HOSTS": "127.0.0.1",
        "SECURE_SSL_REDIRECT": "0",  # TLS would end at a proxy; its X-Forwarded-Proto is sent
        "CACHE_KEY_PREFIX": f"twinsite-load-{secrets.token_hex(4)}",  # throttles and streams of this run only
        "LOG_LEVEL": "WARNING",
    }
    processes, logs = [], [work / "web.log", work / "serve.log"]
    call_command("collectstatic", interactive=False, verbosity=0)  # as a deployment does (DEBUG off)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # a stopped bench still stops its processes
    with common.scratch_database():
        with common.timed() as seeding:
            accounts = seed(ACCOUNTS)
        log(f"seeded {len(accounts)} accounts with 2 documents each in {seeding.seconds:.0f} s")
        accounts_file = work / "accounts.json"
        accounts_file.write_text(json.dumps(accounts))
        try:
            processes = [start("web", logs[0], env), start("serve", logs[1], env)]
            wait_until_serving(base, accounts[-1], logs)
            log(f"browsing only, {BROWSERS} users, {baseline_seconds} s ...")
            idle = run_locust(base, accounts_file, work / "baseline", baseline_seconds, chatters=0)
            answers = Message.objects.filter(role="assistant")
            done_before = answers.filter(status="done").count()
            log(f"browsing with {CHATTERS} users chatting, {load_seconds} s ...")
            loaded = run_locust(base, accounts_file, work / "load", load_seconds, chatters=CHATTERS)
            answered = {"done": answers.filter(status="done").count() - done_before}
            answered["not done"] = answers.exclude(status="done").count()
        finally:
            for process in processes:
                stop(process)
    errors = failures(work / "baseline") + failures(work / "load")
    return report(idle, loaded, errors, answered, load_seconds, baseline_seconds, work, settings)


def report(idle, loaded, errors, answered, load_seconds, baseline_seconds, work, settings) -> dict:
    rows, worst_page = [], ("", 0.0)
    for name, stats in sorted(loaded.items()):
        p50, p95, count = float(stats["50%"]), float(stats["95%"]), int(stats["Request Count"])
        if is_chat(name) or name.startswith(SIGN_IN):
            rows.append(info_row(f"{name} p50", p50, float("nan"), "ms", note=f"{count} under load"))
            rows.append(info_row(f"{name} p95", p95, float("nan"), "ms"))
            continue
        if p95 > worst_page[1]:
            worst_page = (name, p95)
        before = idle.get(name)
        baseline_p95 = float(before["95%"]) if before else float("nan")
        rows.append(row(f"{name} p95", p95, baseline_p95, "ms", note=f"p50 {p50:.0f} ms, {count} requests"))
    rows.append(
        info_row(
            "answers generated under load",
            answered["done"],
            float("nan"),
            "answers",
            note=f"{answered['not done']} not done",
        )
    )
    rows.append(info_row("errors (both phases)", len(errors), 0, "requests", note="target 0"))
    met = worst_page[1] < PAGE_TARGET_MS and not errors
    notes = [
        f"Pages and API calls other than chat and sign-in: the slowest p95 under load is {worst_page[1]:.0f} ms "
        f"({worst_page[0]}); "
        f"target < {PAGE_TARGET_MS} ms: {'met' if worst_page[1] < PAGE_TARGET_MS else 'MISSED'}.",
        f"Errors: {len(errors)} (target 0)"
        + (
            ": " + "; ".join(f"{e['Method']} {e['Name']}: {e['Error']} x{e['Occurrences']}" for e in errors[:5])
            if errors
            else "."
        ),
        f"Users: {BROWSERS} browsing (a page every 1-3 s) throughout; {CHATTERS} chatting in the load phase "
        f"(ask, read the streamed answer to its end, wait 2-5 s), each on an account of its own.",
        "Chat rows: '... first token' and '... whole answer' are timed by the chatting user from the stream "
        "request; '/chat/messages/[id]/stream/' and '(stream)' rows are locust's own (time to headers).",
        "Latencies are locust's (rounded to 10 ms above 100 ms). Baseline: the same browsing users with no "
        "answer being generated, measured first in the same run.",
        f"Site: the Procfile's web and serve lines with DEBUG off; answers in flight capped at "
        f"{settings.TWIN_MAX_ANSWERS_IN_FLIGHT} site-wide, {settings.TWIN_MAX_PENDING_ANSWERS_PER_USER} per user. "
        f"Logs and locust CSVs: {work}.",
    ]
    for note in notes[:2]:
        log(note)
    return {
        "name": "load",
        "description": __doc__.split("\n\n")[0],
        "rows": rows,
        "notes": notes,
        "targets_met": met,
        "params": {
            "browsers": BROWSERS,
            "chatters": CHATTERS,
            "accounts": ACCOUNTS,
            "baseline_seconds": baseline_seconds,
            "load_seconds": load_seconds,
        },
        "samples": {"baseline": idle, "load": loaded, "errors": errors},
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=int, default=None, help="the load phase (default 300; --quick 60)")
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)
    result = run(args.quick, args.seconds)
    result.update(quick=args.quick, environment=common.environment())
    path = common.write_result(result)
    print("\n".join(common.table(result["rows"])))
    print(f"-> {path.relative_to(common.ROOT)}")
    return 0 if result["targets_met"] else 1


if __name__ == "__main__":
    sys.exit(main())

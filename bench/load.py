"""Load: users browsing, searching and chatting at once, against the site as the Procfile
runs it (gunicorn `web` and the `serve` worker, started from the Procfile's own lines with
production settings), on loopback, for a bounded time. Locust drives the users
(bench/locustfile.py).

Three phases on the same seeded site, in the same run:
- baseline: browsing users only (no answer is being generated);
- load: the same browsing users while chatting users keep the serving worker busy, each
  asking again 2-5 s after its answer ends (web chat with SSE, and the OpenAI endpoint);
- flood (issue 21): the same again while visitors flood the first chatter's published twin
  through its widget, never waiting: they must get 429 (throttles, the monthly quota) or 503
  (the visitors' share of the answers in flight), the twin's quota must hold, and its owner
  and the other chatters must still be answered, none refused, their time to first token
  compared with the load phase's.

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
FLOODERS, FLOOD_QUOTA = 4, 25  # visitors flooding the first chatter's twin, and its monthly quota
FLOOD_ORIGIN = "https://blog.example"  # the site that embeds its widget
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
        accounts[0].update(publish(accounts[0]["username"]))
    finally:
        celery_app.conf.task_always_eager = False
    return accounts


def publish(username: str) -> dict:
    """The twin that visitors flood: published, its sources shared with the audience, a small quota."""
    from accounts.models import User
    from accounts.publication import do_ensure_publication, do_update_publication
    from ingestion.models import Source

    user = User.objects.get(username=username)
    Source.objects.for_user(user).update(audience=True)
    publication = do_update_publication(
        do_ensure_publication(user), enabled=True, allowed_origins=[FLOOD_ORIGIN], monthly_quota=FLOOD_QUOTA
    )
    return {"widget_key": publication.widget_key, "widget_origin": FLOOD_ORIGIN}


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


def run_locust(
    base: str, accounts_file: Path, out: Path, seconds: int, chatters: int, flooders: int = 0
) -> dict[str, dict]:
    """One headless locust run; its per-endpoint stats by name."""
    users = ["BrowsingUser"] + (["ChattingUser"] if chatters else []) + (["FloodingVisitor"] if flooders else [])
    command = [
        str(Path(sys.executable).with_name("locust")),
        "-f",
        str(common.ROOT / "bench" / "locustfile.py"),
        "--headless",
        "--host",
        base,
        "--users",
        str(BROWSERS + chatters + flooders),
        "--spawn-rate",
        str(BROWSERS + chatters + flooders),
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
    env = {
        **os.environ,
        "TWIN_LOAD_ACCOUNTS": str(accounts_file),
        "TWIN_LOAD_CHATTERS": str(chatters),
        "TWIN_LOAD_FLOODERS": str(flooders),
    }
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
            flood_seconds = max(30, load_seconds // 2)
            log(f"the same, and {FLOODERS} visitors flooding {accounts[0]['username']}'s widget, {flood_seconds} s ...")
            flooded = run_locust(
                base, accounts_file, work / "flood", flood_seconds, chatters=CHATTERS, flooders=FLOODERS
            )
            visitor_answers = answers.exclude(conversation__visitor="")
            answered["visitors"] = visitor_answers.exclude(status="failed").count()
        finally:
            for process in processes:
                stop(process)
    errors = failures(work / "baseline") + failures(work / "load")
    result = report(idle, loaded, errors, answered, load_seconds, baseline_seconds, work, settings)
    return flood_report(result, loaded, flooded, failures(work / "flood"), answered, flood_seconds)


def flood_report(result: dict, loaded: dict, flooded: dict, errors: list[dict], answered: dict, seconds: int) -> dict:
    """The flood phase's rows: what the visitors got, the quota, and the chatters' answers against the load phase."""
    statuses = {
        name.rsplit(" ", 1)[1]: int(s["Request Count"]) for name, s in flooded.items() if "visitor ask ->" in name
    }
    rows = [
        info_row(f"flood: visitor asks answered {status}", n, float("nan"), "requests")
        for status, n in sorted(statuses.items())
    ]
    for name in ("web chat: first token", "openai chat: first token"):
        if name in flooded and name in loaded:
            for pct in ("50%", "95%"):
                rows.append(
                    row(
                        f"flood: {name} p{pct[:-1]}",
                        float(flooded[name][pct]),
                        float(loaded[name][pct]),
                        "ms",
                        note=f"{flooded[name]['Request Count']} answers; baseline: the load phase",
                    )
                )
    rows.append(info_row("flood: visitor answers (quota)", answered["visitors"], FLOOD_QUOTA, "answers"))
    rows.append(info_row("flood: errors", len(errors), 0, "requests", note="owners refused or failed; target 0"))
    throttled = statuses.get("429", 0) > 0
    quota_held = answered["visitors"] <= FLOOD_QUOTA
    notes = [
        f"Flood ({seconds} s): {FLOODERS} visitors asked the widget of one published twin every 0.25 s, ignoring "
        f"Retry-After; answered {statuses}. 429 seen: {'yes' if throttled else 'NO'}; visitor answers "
        f"{answered['visitors']} of a quota of {FLOOD_QUOTA}: {'held' if quota_held else 'BROKEN'}; errors "
        f"(chatters refused or failed, a 429/503 without Retry-After): {len(errors)}"
        + (
            ": " + "; ".join(f"{e['Method']} {e['Name']}: {e['Error']} x{e['Occurrences']}" for e in errors[:5])
            if errors
            else "."
        )
    ]
    log(notes[0])
    result["rows"] += rows
    result["notes"] += notes
    result["targets_met"] = result["targets_met"] and throttled and quota_held and not errors
    result["params"].update(flooders=FLOODERS, flood_quota=FLOOD_QUOTA, flood_seconds=seconds)
    result["samples"]["flood"] = flooded
    return result


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

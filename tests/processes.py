"""Real processes for the tests that need them: Celery workers (one per queue, as the
Procfile runs them) and a gunicorn web server, on the test database and data directory."""

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
import redis
from django.conf import settings
from django.db import connection

TIMEOUT = 180


def process_env(**extra) -> dict:
    """The environment of a process that serves this test run (committed rows only: transactional tests)."""
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.settings",
        "DATABASE_URL": f"postgres://postgres@127.0.0.1:5432/{connection.settings_dict['NAME']}",
        "TWIN_TEST_EAGER": "0",
        "TWIN_TEST_DATA_DIR": str(settings.TWIN_DATA_DIR),
        **extra,
    }


def forget_queued_tasks(*queues: str):
    """No messages left by an earlier test of this run (kombu keeps each queue in a Redis list of its
    name, under the run's own key prefix: tests/settings.py)."""
    prefix = settings.CELERY_BROKER_TRANSPORT_OPTIONS.get("global_keyprefix", "")
    keys = [prefix + key for key in (*queues, "unacked", "unacked_index")]
    redis.Redis.from_url(settings.CELERY_BROKER_URL).delete(*keys)


def forget_broker(prefix: str):
    """Every broker key of a run's namespace (its queues, kombu's bindings), once the run is over."""
    client = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    keys = list(client.scan_iter(match=f"{prefix}:broker:*"))
    if keys:
        client.delete(*keys)


def _pidfile() -> Path:
    """The processes that test runs on this test database started (one pid a line)."""
    return Path(tempfile.gettempdir()) / f"twinsite-test-processes-{settings.DATABASES['default']['TEST']['NAME']}"


def _environ(pid: int) -> dict[str, str]:
    try:
        raw = Path(f"/proc/{pid}/environ").read_bytes()
    except OSError:
        return {}  # gone (or not ours to read)
    return dict(item.split("=", 1) for item in raw.decode(errors="replace").split("\0") if "=" in item)


def reap_stale_processes() -> list[int]:
    """Kill what an interrupted earlier run on this test database left running (a timeout's SIGKILL
    skips every fixture's teardown, and each worker sits in its own session): the pids it wrote to
    the pidfile that are still test processes of that run, on this database. Returns the pids killed."""
    pidfile = _pidfile()
    try:
        pids = {int(line) for line in pidfile.read_text().split() if line.isdigit()}
    except OSError:
        return []
    this_run, database = os.environ["TWIN_TEST_CACHE_PREFIX"], settings.DATABASES["default"]["TEST"]["NAME"]
    killed = []
    for pid in sorted(pids):
        env = _environ(pid)  # a reused pid is some other process: its environment says so
        previous_run = env.get("TWIN_TEST_CACHE_PREFIX", this_run) != this_run
        if previous_run and env.get("DATABASE_URL", "").endswith(f"/{database}"):
            try:
                os.killpg(pid, signal.SIGKILL)
                killed.append(pid)
            except (ProcessLookupError, PermissionError):
                pass
    pidfile.write_text("")
    return killed


def spawn(command: list[str], log: Path, env: dict) -> subprocess.Popen:
    """The command in its own process group, so that a test can kill it with its children; its pid
    goes to the pidfile, for the next run to reap should this one be killed before its teardown."""
    with open(log, "w") as output:
        process = subprocess.Popen(command, env=env, stdout=output, stderr=subprocess.STDOUT, start_new_session=True)
    with open(_pidfile(), "a") as pidfile:
        pidfile.write(f"{process.pid}\n")
    return process


def _spawn(module_args: str, log: Path, env: dict) -> subprocess.Popen:
    """`python -m <module_args>`, spawned."""
    return spawn([sys.executable, "-m", *module_args.split()], log, env)


def start_worker(queue: str, log: Path, env: dict, name: str = "") -> subprocess.Popen:
    """One worker per queue, as the Procfile runs them: a task on the wrong queue is never picked up.
    The serve worker has a thread per row of its batch; `name` tells apart two workers of a queue."""
    batch = env.get("TWIN_SERVE_BATCH", settings.TWIN_SERVE_BATCH)
    pool = f"--pool threads --concurrency {batch}" if queue == "serve" else "--concurrency 1"
    return _spawn(
        f"celery -A twinsite worker --queues {queue} --hostname {name or queue}@%h {pool} --loglevel INFO "
        "--without-gossip --without-mingle",
        log,
        env,
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_web(port: int, log: Path, env: dict) -> subprocess.Popen:
    """gunicorn as the Procfile runs it (gthread)."""
    return _spawn(
        f"gunicorn twinsite.wsgi --bind 127.0.0.1:{port} --worker-class gthread --threads 4 --access-logfile -",
        log,
        env,
    )


def kill(process: subprocess.Popen):
    """SIGKILL to the whole process group (a worker and its pool child, gunicorn and its worker)."""
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()


def stop(process: subprocess.Popen, grace: float = 30):
    """A warm shutdown; killed when it outlasts the grace (still inside a task)."""
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        kill(process)


def wait_for(condition, logs: dict[str, Path], what: str, timeout: float = TIMEOUT):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.2)
    tails = "\n".join(f"--- {name} ---\n{log.read_text()[-3000:]}" for name, log in logs.items())
    pytest.fail(f"timed out waiting for {what}; logs:\n{tails}")


class PrivatePostgres:
    """A PostgreSQL cluster of the test's own (initdb + pg_ctl, on a free port), so that a test can
    stop and restart it without touching the shared server the rest of the suite uses. As root
    (initdb refuses root) the cluster runs as the `postgres` user."""

    def __init__(self):
        binaries = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))
        if not binaries:
            pytest.skip("PostgreSQL's initdb is not installed (/usr/lib/postgresql/*/bin/initdb)")
        self.bin = binaries[-1].parent
        self.dir = Path(tempfile.mkdtemp(prefix="twinsite-pg-"))
        self.port = free_port()
        self.url = f"postgres://postgres@127.0.0.1:{self.port}/twinsite"
        self.as_owner = []
        if os.geteuid() == 0:
            shutil.chown(self.dir, "postgres")
            self.as_owner = ["runuser", "-u", "postgres", "--"]

    def _run(self, *command: str):
        subprocess.run([*self.as_owner, *command], check=True, capture_output=True, timeout=120)

    def _ctl(self, *args: str):
        self._run(str(self.bin / "pg_ctl"), "-D", str(self.dir / "data"), "-w", "-t", "60", *args)

    def create(self, copy_of: str):
        """A new cluster holding a copy of the database `copy_of` of the shared server (schema and rows)."""
        self._run(str(self.bin / "initdb"), "-D", str(self.dir / "data"), "-A", "trust", "-U", "postgres")
        self.start()
        self._run(str(self.bin / "createdb"), "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", "twinsite")
        dump = subprocess.run(
            ["pg_dump", "--no-owner", "-h", "127.0.0.1", "-U", "postgres", copy_of],
            check=True,
            capture_output=True,
            timeout=120,
        ).stdout
        subprocess.run(
            [
                "psql",
                "-q",
                "-v",
                "ON_ERROR_STOP=1",
                "-h",
                "127.0.0.1",
                "-p",
                str(self.port),
                "-U",
                "postgres",
                "twinsite",
            ],
            input=dump,
            check=True,
            capture_output=True,
            timeout=120,
        )

    def start(self):
        options = f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.dir}"
        self._ctl("-o", options, "-l", str(self.dir / "server.log"), "start")

    def stop(self):
        self._ctl("-m", "fast", "stop")

    def destroy(self):
        try:
            self.stop()
        except subprocess.CalledProcessError:
            pass  # not running
        shutil.rmtree(self.dir, ignore_errors=True)

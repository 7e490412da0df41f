"""Shared pieces of the benchmarks: Django setup on a scratch database, timing
helpers, synthetic data, random LoRA adapters and result files.

Every benchmark compares the app's path with a baseline measured in the same
run, because the machine is shared and absolute numbers drift from minute to
minute. A row's ratio is always "app cost / baseline cost": 1.0 means the app
costs nothing extra, 1.25 means it is 25 % slower (or 25 % less throughput),
below 1.0 means it is faster than the baseline.
"""

import json
import math
import os
import platform
import random
import re
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace

ROOT = Path(__file__).resolve().parent.parent
RESULTS_DIR = ROOT / "bench" / "results"
CORPUS_DIR = ROOT / "demo" / "corpus"
BENCH_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/twinsite_bench"


# --- Django and the scratch database -------------------------------------------------


def setup_django():
    """Point Django at the scratch database and a temporary data directory, then set it up.

    Idempotent. The model cache stays the project's (var/models), so the packaged
    SmolLM2 is not converted again. DEBUG is off so Django does not record every
    query, as in production.
    """
    import django
    from django.apps import apps

    if apps.ready:
        return
    os.environ["DJANGO_SETTINGS_MODULE"] = "twinsite.settings"
    os.environ["DATABASE_URL"] = os.environ.get("BENCH_DATABASE_URL", BENCH_DATABASE_URL)
    os.environ["TWIN_DATA_DIR"] = tempfile.mkdtemp(prefix="twinsite-bench-")
    os.environ.setdefault("TWIN_MODEL_CACHE", str(ROOT / "var" / "models"))
    os.environ["TWIN_BASE_MODEL"] = "smollm2"
    os.environ["TWIN_EMBEDDING_MODEL"] = "packaged"
    os.environ["DEBUG"] = "0"
    os.environ.setdefault("SECRET_KEY", secrets.token_urlsafe(32))
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    django.setup()


def _connect(dbname: str, **options):
    import psycopg
    from django.conf import settings

    db = settings.DATABASES["default"]
    return psycopg.connect(
        host=db["HOST"] or None,
        port=db["PORT"] or None,
        user=db["USER"] or None,
        password=db["PASSWORD"] or None,
        dbname=dbname,
        **options,
    )


def _admin_connection():
    return _connect("postgres", autocommit=True)


def _scratch_name() -> str:
    from django.conf import settings

    name = settings.DATABASES["default"]["NAME"]
    if not name.endswith("_bench"):  # never drop a database we did not create
        raise RuntimeError(f"refusing to use {name!r} as the scratch database: its name must end in _bench")
    return name


def _drop(name: str):
    from django.db import connections

    connections.close_all()
    with _admin_connection() as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextmanager
def scratch_database():
    """Create the bench database, apply the migrations, drop it again afterwards."""
    from django.core.management import call_command

    setup_django()
    name = _scratch_name()
    _drop(name)
    with _admin_connection() as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        with timed() as t:
            call_command("migrate", interactive=False, verbosity=0)
        log(f"scratch database {name} migrated in {t.seconds:.1f} s")
        yield name
    finally:
        _drop(name)


def raw_connection():
    """A separate psycopg connection to the scratch database (for COPY), outside Django's."""
    from django.conf import settings

    return _connect(settings.DATABASES["default"]["NAME"])


def make_owners(count: int, prefix: str = "bench"):
    """Users with unusable passwords (bulk insert: password hashing would dominate)."""
    from accounts.models import User

    return User.objects.bulk_create(User(username=f"{prefix}{i}", password="!") for i in range(count))  # noqa: S106


# --- timing --------------------------------------------------------------------------


class Timer:
    seconds: float = 0.0


@contextmanager
def timed():
    """`with timed() as t: ...` then t.seconds (perf_counter)."""
    timer = Timer()
    start = time.perf_counter()
    try:
        yield timer
    finally:
        timer.seconds = time.perf_counter() - start


def finished_version(start):
    """Run a training job to its end (Celery eager): (run, its ModelVersion, seconds); raise if it failed."""
    from training.models import ModelVersion

    with timed() as t:
        run = start()
    run.refresh_from_db()
    if run.status != "succeeded":
        raise RuntimeError(f"{run} failed: {run.error}")
    return run, ModelVersion.objects.get(training_run=run), t.seconds


def backend_pid() -> int:
    """The PostgreSQL backend process serving Django's connection (it runs on this machine)."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        return cursor.fetchone()[0]


def process_cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (10 ms resolution: sum it over many calls)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@contextmanager
def cpu_timed(pid: int):
    """`with cpu_timed(backend) as c: ...` then c.client and c.server: CPU seconds of this thread (not
    BLAS helper threads spinning after numpy's work) and of the database backend. Unlike wall time,
    CPU time does not grow when others load the machine."""
    timer = SimpleNamespace(client=0.0, server=0.0)
    client, server = time.thread_time(), process_cpu_seconds(pid)
    try:
        yield timer
    finally:
        timer.client = time.thread_time() - client
        timer.server = process_cpu_seconds(pid) - server


def median(values) -> float:
    return statistics.median(values) if values else math.nan


def percentile(values, p: float) -> float:
    """Linear interpolation between closest ranks (numpy's default), p in 0..100."""
    data = sorted(values)
    if not data:
        return math.nan
    rank = (len(data) - 1) * p / 100
    low, high = math.floor(rank), math.ceil(rank)
    return data[low] + (data[high] - data[low]) * (rank - low)


def log(message: str):
    print(f"    {message}", flush=True)


# --- result rows and files -----------------------------------------------------------


def row(
    metric: str,
    app: float,
    baseline: float,
    unit: str,
    *,
    lower_is_better: bool = True,
    ratio: float | None = None,
    note: str = "",
) -> dict:
    """One comparison. ratio = app cost / baseline cost, whichever way the unit points.

    Pass `ratio` when it is computed otherwise, e.g. the median of paired ratios.
    """
    if ratio is None:
        if lower_is_better:
            ratio = app / baseline if baseline else math.nan
        else:
            ratio = baseline / app if app else math.nan
    return {"metric": metric, "app": app, "baseline": baseline, "unit": unit, "ratio": ratio, "note": note}


def info_row(metric: str, app: float, baseline: float, unit: str, note: str = "") -> dict:
    """A figure shown next to a reference value, without a cost ratio (recall, counts)."""
    return {"metric": metric, "app": app, "baseline": baseline, "unit": unit, "ratio": None, "note": note}


def fmt(value) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    if isinstance(value, int):
        return str(value)
    magnitude = abs(value)
    if magnitude >= 100:
        return f"{value:.0f}"
    if magnitude >= 10:
        return f"{value:.1f}"
    if magnitude >= 0.1:
        return f"{value:.2f}"
    return f"{value:.3f}"


def fmt_ratio(value) -> str:
    return "—" if value is None or math.isnan(value) else f"×{value:.2f}"


def table(rows: list[dict], first_column: str | None = None) -> list[str]:
    """Rows as a Markdown table; first_column prefixes each row with its benchmark."""
    head = ["metric", "app", "baseline", "unit", "ratio", "note"]
    if first_column:
        head.insert(0, "benchmark")
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        cells = [r["metric"], fmt(r["app"]), fmt(r["baseline"]), r["unit"], fmt_ratio(r["ratio"]), r["note"]]
        if first_column:
            cells.insert(0, r[first_column])
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def environment() -> dict:
    import torch

    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=False
        ).stdout.strip()
    except OSError:
        commit = ""
    return {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "commit": commit,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "cpus": os.cpu_count(),
        "machine": platform.machine(),
        "argv": sys.argv[1:],
    }


def result_stem(name: str, quick: bool) -> str:
    return f"{name}-quick" if quick else name


def write_and_print(result: dict) -> Path:
    """For a benchmark run on its own: its files, then its table and notes on stdout."""
    path = write_result(result)
    print("\n".join(table(result["rows"])))
    print("\n".join(f"- {note}" for note in result["notes"]))
    print(f"-> {path.relative_to(ROOT)}")
    return path


def write_result(result: dict) -> Path:
    """bench/results/<name>[-quick].json and .md; returns the JSON path."""
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    stem = result_stem(result["name"], result["quick"])
    json_path = RESULTS_DIR / f"{stem}.json"
    json_path.write_text(json.dumps(result, indent=2, default=str) + "\n")
    lines = [f"# {result['name']}{' (quick)' if result['quick'] else ''}", ""]
    if result.get("description"):
        lines += [result["description"], ""]
    lines += [*table(result["rows"]), ""]
    lines += [f"- {note}" for note in result.get("notes", [])]
    lines += ["", f"Parameters: `{json.dumps(result.get('params', {}))}`", ""]
    (RESULTS_DIR / f"{stem}.md").write_text("\n".join(lines))
    return json_path


# --- synthetic text from the demo corpus ---------------------------------------------


def corpus_sentences() -> list[str]:
    """Sentences of the demo writing (Markdown and text files; headings left out)."""
    from features.chunking import split_sentences
    from features.cleaning import clean_text

    sentences = []
    for path in sorted(CORPUS_DIR.glob("*")):
        if path.suffix not in (".md", ".txt"):
            continue
        for piece in split_sentences(clean_text(path.read_text())):
            if not piece.startswith("#") and "```" not in piece and len(piece.split()) >= 4:
                sentences.append(piece)
    return sentences


def synthetic_document(rng: random.Random, sentences: list[str], title: str, words: int) -> str:
    """Markdown with headings and paragraphs of 3-6 shuffled corpus sentences, about `words` long."""
    parts, count, section = [f"# {title}"], 0, 1
    while count < words:
        if count == 0 or rng.random() < 0.25:
            parts.append(f"## Part {section}")
            section += 1
        paragraph = " ".join(rng.choice(sentences) for _ in range(rng.randint(3, 6)))
        parts.append(paragraph)
        count += len(paragraph.split())
    return "\n\n".join(parts)


def words_of(text: str) -> list[str]:
    return re.findall(r"\S+", text)


# --- models --------------------------------------------------------------------------


def base_model_path() -> str:
    from training.base_models import resolve

    return resolve("smollm2")


def load_base(path: str):
    import torch
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32).eval()


def app_lora_config():
    """The LoRA shape the app trains (training.lora.Hyperparameters defaults)."""
    from peft import LoraConfig

    from training.lora import Hyperparameters

    hp = Hyperparameters()
    return LoraConfig(
        r=hp.lora_r,
        lora_alpha=hp.lora_alpha,
        lora_dropout=hp.lora_dropout,
        target_modules=hp.target_modules,
        task_type="CAUSAL_LM",
    )


def make_random_adapters(base_path: str, out_dirs: list[Path], seed: int = 0):
    """Save one LoRA adapter per directory, each with random lora_B so it changes the output.

    A freshly initialised LoRA has lora_B = 0 and is a no-op; real trained adapters are not.
    """
    import torch
    from peft import get_peft_model

    model = get_peft_model(load_base(base_path), app_lora_config())
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for out_dir in out_dirs:
            for name, param in model.named_parameters():
                if "lora_B" in name:
                    param.copy_(torch.randn(param.shape, generator=generator) * 0.02)
                elif "lora_A" in name:
                    param.copy_(torch.randn(param.shape, generator=generator) / math.sqrt(param.shape[1]))
            model.save_pretrained(out_dir)  # the default adapter name writes to out_dir itself


@dataclass
class AdapterVersion:
    """What TwinModels reads from a ModelVersion (pk, sha256, adapter_dir, base_model.identifier).

    Stands in for a registry row so the benchmarks do not need a whole training
    run in the database to serve an adapter.
    """

    pk: int
    adapter_dir: Path
    sha256: str
    base_model: SimpleNamespace


def adapter_version(pk: int, adapter_dir: Path) -> AdapterVersion:
    from training.lora import directory_sha256

    return AdapterVersion(pk, adapter_dir, directory_sha256(adapter_dir), SimpleNamespace(identifier="smollm2"))


def data_dir() -> Path:
    from django.conf import settings

    return Path(settings.TWIN_DATA_DIR)

"""Project-wide guards: migrations, deploy checks, the API schema, the import direction, setup facts."""

import ast
import os
import re
import subprocess
import sys
from io import StringIO
from pathlib import Path

import pytest
import redis
from django.conf import settings
from django.core.management import call_command
from django.db import connection

ROOT = Path(settings.BASE_DIR)
# Which first-party packages each app may import: data flows downstream only, and every app
# stands on the ground floor (`core`), never on the project package (`twinsite`) that imports them all.
ALLOWED_IMPORTS = {
    "core": set(),
    "accounts": {"core"},
    "ingestion": {"core", "accounts"},
    "features": {"core", "accounts", "ingestion"},
    "training": {"core", "accounts", "features"},
    "chat": {"core", "accounts", "ingestion", "features", "training"},
}


@pytest.mark.django_db
def test_migrations_are_complete():
    out = StringIO()
    call_command("makemigrations", "--check", "--dry-run", stdout=out)
    assert "No changes detected" in out.getvalue()


def test_the_deploy_checks_pass_under_production_settings():
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "twinsite.settings",
        "DEBUG": "0",
        "SECRET_KEY": "x" * 60 + "-production-like-secret",
        "ALLOWED_HOSTS": "twin.example.com",
    }
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_production_refuses_to_start_without_a_secret_key():
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "twinsite.settings", "DEBUG": "0", "SECRET_KEY": ""}
    result = subprocess.run([sys.executable, "manage.py", "check"], cwd=ROOT, env=env, capture_output=True, text=True)
    assert result.returncode != 0 and "SECRET_KEY must be set" in result.stderr


def test_debug_is_off_unless_asked_for():
    env = {k: v for k, v in os.environ.items() if k not in ("DEBUG", "SECRET_KEY")}
    env |= {"DJANGO_SETTINGS_MODULE": "twinsite.settings", "SECRET_KEY": "y" * 60}
    script = "import django; django.setup(); from django.conf import settings; print(settings.DEBUG)"
    result = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False"
    unset = subprocess.run(
        [sys.executable, "manage.py", "check"],
        cwd=ROOT,
        env={k: v for k, v in env.items() if k != "SECRET_KEY"},
        capture_output=True,
        text=True,
    )
    assert unset.returncode != 0 and "SECRET_KEY must be set" in unset.stderr


def test_make_run_starts_in_development_mode():
    result = subprocess.run(["make", "-n", "-p", "run"], cwd=ROOT, capture_output=True, text=True)
    assert "\nrun: DEBUG := 1\n" in result.stdout  # a target-specific, exported variable: seed_demo and honcho


def test_the_openapi_schema_is_valid():
    call_command("spectacular", "--validate", "--fail-on-warn", stdout=StringIO())


@pytest.mark.parametrize("app", sorted(ALLOWED_IMPORTS))
def test_imports_flow_downstream_only(app):
    first_party = set(ALLOWED_IMPORTS) | {"twinsite"}  # twinsite is in no app's allowed set
    offending = []
    for path in (ROOT / app).rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            for name in names:
                top = name.split(".")[0]
                if top in first_party and top != app and top not in ALLOWED_IMPORTS[app]:
                    offending.append(f"{path.relative_to(ROOT)} imports {name}")
    assert not offending, offending


OWNER_LOOKUP = re.compile(r"^(owner|owner_id|owner__\w+|\w+__owner(_id)?)$")
QUERY_METHODS = {"filter", "exclude", "get", "update", "delete", "count", "exists", "first"}


@pytest.mark.parametrize("package", ["core", *sorted(set(ALLOWED_IMPORTS) - {"core"}), "twinsite"])
def test_owner_scoping_has_one_spelling(package):
    """Reads of owned rows go through `.for_user(user)`: no `filter(owner=...)` beside it.
    Creating a row names its owner (`create(owner=...)`); only core.ownership filters by it."""
    offending = []
    for path in (ROOT / package).rglob("*.py"):
        if "migrations" in path.parts or path == ROOT / "core" / "ownership.py":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and getattr(node.func, "attr", "") in QUERY_METHODS:
                for keyword in node.keywords:
                    if keyword.arg and OWNER_LOOKUP.match(keyword.arg):
                        offending.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.func.attr}({keyword.arg}=...)")
    assert not offending, offending


def version_tuple(version: str) -> tuple[int, ...]:
    """ "0.10.0" -> (0, 10, 0): compared as numbers, "0.10" is newer than "0.8" (as strings it is older)."""
    return tuple(int(part) for part in re.findall(r"\d+", version))


@pytest.mark.parametrize(
    ("version", "ok"), [("0.8.0", True), ("0.10.0", True), ("1.0", True), ("0.7.4", False), ("0.8", True)]
)
def test_versions_compare_as_numbers(version, ok):
    assert (version_tuple(version) >= (0, 8)) is ok


@pytest.mark.django_db
def test_the_real_services_are_used():
    with connection.cursor() as cursor:
        cursor.execute("SELECT extversion FROM pg_extension WHERE extname = 'vector'")
        assert version_tuple(cursor.fetchone()[0]) >= (0, 8)
    assert redis.Redis.from_url(settings.REDIS_URL).ping()


def test_packaged_models_run_offline():
    assert os.environ["HF_HUB_OFFLINE"] == "1"
    from training.base_models import resolve

    assert (Path(resolve("smollm2")) / "model.safetensors").exists()
    assert (Path(resolve("tiny")) / "tokenizer.json").exists()


def test_every_task_has_time_limits_and_training_gets_hours():
    """A pathological input fails its job instead of holding a worker; training ends before redelivery."""
    from features.tasks import run_features
    from ingestion.tasks import crawl_source
    from training.tasks import train_model
    from twinsite.celery import app

    assert 0 < app.conf.task_soft_time_limit < app.conf.task_time_limit <= 3600
    limits = (app.conf.task_soft_time_limit, app.conf.task_time_limit)
    assert (run_features.soft_time_limit, run_features.time_limit) == limits  # the global limits apply
    # a crawl has its own run deadline, with its limits just past it and within the global hard limit
    assert 0 < crawl_source.soft_time_limit < crawl_source.time_limit <= app.conf.task_time_limit
    assert train_model.soft_time_limit >= 4 * 3600 and train_model.soft_time_limit < train_model.time_limit
    assert train_model.time_limit < settings.CELERY_BROKER_TRANSPORT_OPTIONS["visibility_timeout"]

"""Project-wide guards: migrations, deploy checks, the API schema, the import direction, setup facts."""

import ast
import os
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
# Which first-party packages each app may import: data flows downstream only.
ALLOWED_IMPORTS = {
    "accounts": {"twinsite"},
    "ingestion": {"twinsite", "accounts"},
    "features": {"twinsite", "accounts", "ingestion"},
    "training": {"twinsite", "accounts", "features"},
    "chat": {"twinsite", "accounts", "ingestion", "features", "training"},
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


def test_the_openapi_schema_is_valid():
    call_command("spectacular", "--validate", "--fail-on-warn", stdout=StringIO())


@pytest.mark.parametrize("app", sorted(ALLOWED_IMPORTS))
def test_imports_flow_downstream_only(app):
    first_party = set(ALLOWED_IMPORTS) | {"twinsite"}
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


@pytest.mark.django_db
def test_the_real_services_are_used():
    with connection.cursor() as cursor:
        cursor.execute("SELECT extversion FROM pg_extension WHERE extname = 'vector'")
        assert cursor.fetchone()[0] >= "0.8"
    assert redis.Redis.from_url(settings.REDIS_URL).ping()


def test_packaged_models_run_offline():
    assert os.environ["HF_HUB_OFFLINE"] == "1"
    from training.base_models import resolve

    assert (Path(resolve("smollm2")) / "model.safetensors").exists()
    assert (Path(resolve("tiny")) / "tokenizer.json").exists()

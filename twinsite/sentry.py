"""Sentry: errors, releases and performance traces of the web and the Celery workers.

settings.py calls `init_sentry()` when SENTRY_DSN is set; every process (gunicorn, each Celery
worker, beat) loads the settings, so each reports. Events carry the release (SENTRY_RELEASE, else
the RELEASE file a build writes with `git describe`, else `git describe` of a checkout) and the
environment; traces are sampled at SENTRY_TRACES_SAMPLE_RATE for web requests and at
SENTRY_TASKS_TRACES_SAMPLE_RATE (default: the same) for Celery tasks.
"""

import os
import subprocess
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent


def release() -> str | None:
    """What is deployed: the environment's word, the build's RELEASE file, or the checkout's tag."""
    if os.environ.get("SENTRY_RELEASE"):
        return os.environ["SENTRY_RELEASE"]
    built = BASE_DIR / "RELEASE"
    if built.is_file():
        return built.read_text().strip() or None
    if (BASE_DIR / ".git").exists():
        try:
            described = subprocess.run(
                ["git", "describe", "--tags", "--always", "--dirty"],  # noqa: S607 (git from PATH)
                cwd=BASE_DIR,
                capture_output=True,
                text=True,
                timeout=5,
                check=True,
            )
        except (OSError, subprocess.SubprocessError):
            return None
        return f"twinsite@{described.stdout.strip()}"
    return None


def traces_sampler(web_rate: float, tasks_rate: float):
    """Sentry's sampler: a Celery task (its context has "celery_job") at the tasks' rate, anything
    else at the web's; a trace already sampled upstream keeps its parent's decision."""

    def sample(context: dict) -> float:
        if context.get("parent_sampled") is not None:
            return float(context["parent_sampled"])
        return tasks_rate if "celery_job" in context else web_rate

    return sample


def options(debug: bool) -> dict:
    """sentry_sdk.init's options from the environment."""
    from sentry_sdk.integrations.celery import CeleryIntegration
    from sentry_sdk.integrations.django import DjangoIntegration

    web_rate = float(os.environ.get("SENTRY_TRACES_SAMPLE_RATE", "0"))
    tasks_rate = float(os.environ.get("SENTRY_TASKS_TRACES_SAMPLE_RATE", web_rate))
    return {
        "dsn": os.environ.get("SENTRY_DSN", ""),
        "release": release(),
        "environment": os.environ.get("SENTRY_ENVIRONMENT", "development" if debug else "production"),
        "traces_sampler": traces_sampler(web_rate, tasks_rate),
        "integrations": [DjangoIntegration(), CeleryIntegration(monitor_beat_tasks=False)],
    }


def init_sentry(debug: bool, **overrides):
    """Start reporting (overrides: e.g. a test's transport)."""
    import sentry_sdk

    sentry_sdk.init(**{**options(debug), **overrides})

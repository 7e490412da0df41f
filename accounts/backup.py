"""Backup and restore of everything users own: the database (pg_dump) and the artifacts
under TWIN_DATA_DIR (uploads, datasets, adapters, runs), in one .tar.gz.

The model cache is left out (it is rebuilt from packaged files by `make setup`), and
so is Celery beat's schedule. Restore replaces the database and each artifact folder
whole, so the files match the rows again; it refuses an archive it did not write.
"""

import io
import json
import os
import shutil
import subprocess
import tarfile
import tempfile
from pathlib import Path

from django.conf import settings
from django.db import connections
from django.utils import timezone

FORMAT = "twinsite-backup-1"
DUMP_NAME = "database.dump"
DATA_PREFIX = "data"
MANIFEST_NAME = "manifest.json"
ARTIFACT_FOLDERS = ("uploads", "datasets", "adapters", "runs")


class BackupError(Exception):
    """A backup or restore that could not be done; the message says why."""


def _artifact_roots() -> dict[str, Path]:
    root = Path(settings.TWIN_DATA_DIR)
    return {name: Path(settings.MEDIA_ROOT) if name == "uploads" else root / name for name in ARTIFACT_FOLDERS}


def _pg(command: str, *args: str) -> subprocess.CompletedProcess:
    db = settings.DATABASES["default"]
    env = {**os.environ, "PGPASSWORD": db.get("PASSWORD") or ""}
    connection_args = [
        f"--host={db.get('HOST') or '127.0.0.1'}",
        f"--port={db.get('PORT') or 5432}",
        f"--username={db.get('USER') or 'postgres'}",
        f"--dbname={db['NAME']}",
    ]
    result = subprocess.run([command, *connection_args, *args], env=env, capture_output=True, text=True)  # noqa: S603
    if result.returncode != 0:
        raise BackupError(f"{command} failed: {result.stderr.strip()[-2000:]}")
    return result


def create_backup(archive: Path) -> dict:
    """Write the archive (atomically: a partial file never carries the final name); returns its manifest."""
    archive = Path(archive)
    archive.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="twinsite-backup-") as scratch:
        dump = Path(scratch) / DUMP_NAME
        _pg("pg_dump", "--format=custom", "--no-owner", f"--file={dump}")
        manifest = {
            "format": FORMAT,
            "created_at": timezone.now().isoformat(),
            "database": settings.DATABASES["default"]["NAME"],
            "folders": {},
        }
        partial = archive.with_name(archive.name + ".partial")
        with tarfile.open(partial, "w:gz") as tar:
            tar.add(dump, arcname=DUMP_NAME)
            for name, folder in _artifact_roots().items():
                files = sorted(p for p in folder.rglob("*") if p.is_file()) if folder.is_dir() else []
                manifest["folders"][name] = len(files)
                for path in files:
                    tar.add(path, arcname=f"{DATA_PREFIX}/{name}/{path.relative_to(folder)}")
            body = json.dumps(manifest, indent=2).encode()
            info = tarfile.TarInfo(MANIFEST_NAME)
            info.size = len(body)
            tar.addfile(info, io.BytesIO(body))
        partial.replace(archive)
    return manifest


def restore_backup(archive: Path) -> dict:
    """Replace the database and the artifact folders with the archive's; returns its manifest."""
    with tempfile.TemporaryDirectory(prefix="twinsite-restore-") as scratch:
        scratch = Path(scratch)
        try:
            with tarfile.open(archive, "r:gz") as tar:
                tar.extractall(scratch, filter="data")  # refuses absolute paths, "..", links out
        except (OSError, tarfile.TarError) as exc:
            raise BackupError(f"Cannot read {archive}: {exc}") from exc
        try:
            manifest = json.loads((scratch / MANIFEST_NAME).read_text())
        except (OSError, ValueError) as exc:
            raise BackupError(f"{archive} is not a Twinsite backup (no manifest).") from exc
        if manifest.get("format") != FORMAT or not (scratch / DUMP_NAME).is_file():
            raise BackupError(f"{archive} is not a Twinsite backup of format {FORMAT}.")

        connections.close_all()  # pg_restore drops tables: no open connection of ours may hold a lock
        _pg("pg_restore", "--clean", "--if-exists", "--no-owner", "--single-transaction", str(scratch / DUMP_NAME))
        for name, folder in _artifact_roots().items():
            restored = scratch / DATA_PREFIX / name
            staged = folder.with_name(f".{folder.name}.restoring")
            shutil.rmtree(staged, ignore_errors=True)
            if restored.is_dir():
                shutil.copytree(restored, staged)  # the data dir may be on another filesystem than /tmp
            else:
                staged.mkdir(parents=True)
            if folder.exists():
                shutil.rmtree(folder)
            staged.rename(folder)
    return manifest

"""A shallow, pinned `git clone`.

git opens its own connections, so before it runs the host is resolved and vetted
like any crawl (safe_http.vetted_addresses), and git is told to use exactly that
address (http.curloptResolve): no second lookup can point it inside the network.
Only https is allowed (and, for tests only, TWIN_GIT_ALLOW_LOCAL: local paths and
file://), redirects are not followed, no credentials are asked for, and the clone
has a wall-clock limit and a size limit (TWIN_GIT_MAX_CLONE_BYTES: git is stopped as
soon as what it wrote passes it, so a huge repository cannot fill the worker's disk).
"""

import os
import subprocess
import time
from pathlib import Path
from urllib.parse import urlsplit

from django.conf import settings

from ...safe_http import FetchError, check_url, vetted_addresses
from ..base import ConnectorError

GIT = "/usr/bin/git"


def is_local(url: str) -> bool:
    return url.startswith("file://") or url.startswith("/")


SIZE_POLL_SECONDS = 0.2


def folder_bytes(folder: Path) -> int:
    total = 0
    for root, _dirs, files in os.walk(folder):
        for name in files:
            try:
                total += os.lstat(os.path.join(root, name)).st_size
            except FileNotFoundError:  # git renames its temporary files as it goes
                pass
    return total


def _too_large(max_bytes: int) -> ConnectorError:
    return ConnectorError(
        f"The repository is larger than the limit of {max_bytes // (1024 * 1024)} MB for one clone; "
        "nothing of it was read."
    )


def _git(args: list[str], *, cwd=None, timeout: float, watch: Path | None = None, max_bytes: int = 0) -> str:
    """Run git; with `watch`, stop it once that folder holds more than `max_bytes`."""
    env = {
        "PATH": "/usr/bin:/bin",
        "HOME": "/nonexistent",
        "GIT_TERMINAL_PROMPT": "0",
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_ASKPASS": "/bin/false",
        "LANG": "C",
    }
    deadline = time.monotonic() + max(1.0, timeout)
    process = subprocess.Popen(  # noqa: S603 (fixed program, arguments are not a shell line)
        [GIT, *args], cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    with process:
        while True:
            try:
                stdout, stderr = process.communicate(timeout=SIZE_POLL_SECONDS)
                break
            except subprocess.TimeoutExpired:
                if time.monotonic() > deadline:
                    process.kill()
                    raise ConnectorError(f"git took longer than {int(timeout)} seconds.") from None
                if watch is not None and folder_bytes(watch) > max_bytes:
                    process.kill()
                    raise _too_large(max_bytes) from None
    if process.returncode != 0:
        message = stderr.decode("utf-8", "replace").strip().splitlines()
        raise ConnectorError(f"git failed: {message[-1] if message else 'no reason given'}")
    return stdout.decode("utf-8", "replace")


def _pinned_options(url: str) -> list[str]:
    """-c options that allow only this transport and pin the host to its vetted address."""
    if is_local(url):
        if not settings.TWIN_GIT_ALLOW_LOCAL:
            raise ConnectorError("Only https:// repositories can be cloned.")
        return ["-c", "protocol.allow=never", "-c", "protocol.file.allow=always"]
    if urlsplit(url).scheme != "https":
        raise ConnectorError("Only https:// repositories can be cloned.")
    try:
        check_url(url)
        parts = urlsplit(url)
        port = parts.port or 443
        _family, sockaddr = vetted_addresses(parts.hostname, port)[0]
    except FetchError as exc:
        raise ConnectorError(str(exc)) from None
    address = f"[{sockaddr[0]}]" if ":" in sockaddr[0] else sockaddr[0]
    return [
        "-c", "protocol.allow=never",
        "-c", "protocol.https.allow=always",
        "-c", "http.followRedirects=false",
        "-c", f"http.curloptResolve={parts.hostname}:{port}:{address}",
    ]  # fmt: skip


def head_commit(url: str, timeout: float) -> str:
    """The remote's HEAD commit, to skip a clone when nothing changed."""
    out = _git([*_pinned_options(url), "ls-remote", url, "HEAD"], timeout=timeout)
    return out.split()[0] if out.strip() else ""


def shallow_clone(url: str, into: Path, timeout: float, max_bytes: int | None = None) -> str:
    """Clone the default branch at depth 1 into `into`, at most `max_bytes` (TWIN_GIT_MAX_CLONE_BYTES)
    on disk; returns its commit."""
    max_bytes = settings.TWIN_GIT_MAX_CLONE_BYTES if max_bytes is None else max_bytes
    args = [*_pinned_options(url), "clone", "--depth", "1", "--single-branch", "--no-tags", "--quiet"]
    _git([*args, url, str(into)], timeout=timeout, watch=into, max_bytes=max_bytes)
    if folder_bytes(into) > max_bytes:  # it finished between two looks
        raise _too_large(max_bytes)
    return _git(["rev-parse", "HEAD"], cwd=into, timeout=timeout).strip()


def tracked_files(repo: Path, timeout: float) -> list[str]:
    out = _git(["ls-files", "-z"], cwd=repo, timeout=timeout)
    return [path for path in out.split("\0") if path and not os.path.islink(repo / path)]

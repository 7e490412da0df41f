"""GitHub and git URLs: a fake GitHub API on loopback, and git repositories made here."""

import json
import subprocess

import pytest
from django.urls import reverse

from ingestion.actions import do_add_source, do_sync_source
from ingestion.models import Document, Source

pytestmark = pytest.mark.django_db

FILES = {
    "README.md": "# Tiny tools\n\nSmall command line tools I use every day.\n",
    "tools/slugify.py": (
        'def slugify(title):\n    """Lowercase words joined by dashes."""\n    return "-".join(title.lower().split())\n'
    ),
    "web/app.ts": "export const greet = (name: string) => `hello ${name}`;\n",
    "node_modules/left-pad/index.js": "module.exports = leftPad;\n",
    "static/app.min.js": "var a=1;\n",
    "package-lock.json": "{}\n",
    "logo.png": b"\x89PNG\r\n\x1a\n\x00\x00",
    "data/blob.py": b"x = 1\x00\x00binary",
    "big/huge.py": "# " + "x" * 5000 + "\n",
}


def git(*args, cwd):
    subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True)


def make_repo(path, files) -> str:
    path.mkdir(parents=True, exist_ok=True)
    git("init", "-q", "-b", "main", cwd=path)
    commit_files(path, files)
    return f"file://{path}"


def commit_files(path, files, message="work"):
    for name, content in files.items():
        target = path / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(content if isinstance(content, bytes) else content.encode())
    git("add", "-A", cwd=path)
    git("-c", "user.name=T", "-c", "user.email=t@example.com", "commit", "-q", "-m", message, cwd=path)


@pytest.fixture
def github(site, settings, tmp_path):
    """A fake api.github.com whose repositories clone from local paths (allowed in tests only)."""
    settings.TWIN_GITHUB_API_URL = site.base
    settings.TWIN_GIT_ALLOW_LOCAL = True
    settings.TWIN_GIT_MAX_FILE_BYTES = 4096
    tools = make_repo(tmp_path / "tools", FILES)
    fork = make_repo(tmp_path / "fork", {"x.py": "print('not mine')\n"})
    repos = [
        {
            "name": "tools",
            "full_name": "ada/tools",
            "fork": False,
            "clone_url": tools,
            "html_url": "https://github.com/ada/tools",
        },
        {
            "name": "fork",
            "full_name": "ada/fork",
            "fork": True,
            "clone_url": fork,
            "html_url": "https://github.com/ada/fork",
        },
    ]
    site.add("/users/ada/repos?type=owner&sort=pushed&per_page=100", json.dumps(repos), content_type="application/json")
    site.add("/repos/ada/tools", json.dumps(repos[0]), content_type="application/json")
    site.tools_path = tmp_path / "tools"
    return site


def test_a_users_public_repositories_become_code_documents(owner_client, owner, github):
    response = owner_client.post(reverse("add-source", args=["github"]), {"url": "https://github.com/ada"})

    assert response.status_code == 302
    source = Source.objects.get(owner=owner)
    run = source.last_run
    assert run.status == "succeeded", run.error
    documents = {d.metadata["path"]: d for d in Document.objects.filter(source=source)}
    assert set(documents) == {"README.md", "tools/slugify.py", "web/app.ts"}
    slugify = documents["tools/slugify.py"]
    assert slugify.category == "code" and slugify.metadata["language"] == "Python"
    assert slugify.url == "https://github.com/ada/tools/blob/HEAD/tools/slugify.py"
    assert slugify.raw_text == FILES["tools/slugify.py"]
    reasons = {f["url"].rsplit("/", 1)[-1]: f["reason"] for f in run.failures}
    assert reasons["index.js"] == "Vendored code (not yours)."
    assert reasons["app.min.js"] == reasons["package-lock.json"] == "A generated file."
    assert reasons["logo.png"] == "Not a source or docs file."
    assert reasons["blob.py"] == "A binary file."
    assert reasons["huge.py"] == "Larger than the size limit for one file."
    assert reasons["fork"] == "A fork: not your own writing."
    assert github.log[0][0] == "/users/ada/repos?type=owner&sort=pushed&per_page=100"
    assert "/robots.txt" not in github.paths()  # an API, not pages


def test_an_unchanged_repository_is_not_cloned_again_and_a_change_is_picked_up(owner, github, monkeypatch):
    source = do_add_source(owner, "github", {"url": "https://github.com/ada/tools"})
    assert source.last_run.documents_created == 3
    from ingestion.connectors.github import connector as github_connector

    clones = []
    real_clone = github_connector.shallow_clone
    monkeypatch.setattr(github_connector, "shallow_clone", lambda *a: clones.append(a) or real_clone(*a))

    run = do_sync_source(source)
    run.refresh_from_db()
    assert (run.documents_unchanged, run.documents_created, clones) == (3, 0, [])

    (github.tools_path / "web" / "app.ts").unlink()
    commit_files(github.tools_path, {"tools/slugify.py": "def slugify(t):\n    return t.lower()\n"})
    run = do_sync_source(source)

    run.refresh_from_db()
    assert len(clones) == 1 and (run.documents_updated, run.documents_gone, run.documents_unchanged) == (1, 1, 1)
    assert Document.objects.get(url__endswith="web/app.ts").gone_at is not None


def test_any_git_url_is_cloned(owner, settings, tmp_path):
    settings.TWIN_GIT_ALLOW_LOCAL = True
    url = make_repo(tmp_path / "plain", {"notes.md": "# Notes\n\nSome notes I keep.\n"})

    source = do_add_source(owner, "github", {"url": url})

    assert Document.objects.get(source=source).metadata["path"] == "notes.md"


def test_an_unknown_github_user_fails_with_the_reason(owner, github):
    source = do_add_source(owner, "github", {"url": "https://github.com/nobody"})

    assert source.last_run.status == "failed"
    assert source.last_run.error == "GitHub has no public user or repository at that address."


def test_local_repositories_are_refused_outside_tests(owner, owner_client, settings, tmp_path):
    settings.TWIN_GIT_ALLOW_LOCAL = False
    url = make_repo(tmp_path / "secret", {"a.py": "x = 1\n"})

    response = owner_client.post(reverse("add-source", args=["github"]), {"url": url})
    source = Source.objects.create(owner=owner, kind="github", url=url, name="direct")
    run = do_sync_source(source)

    assert response.status_code == 400
    run.refresh_from_db()
    assert run.status == "failed" and not Document.objects.exists()


def test_a_git_host_inside_the_network_is_refused_before_git_runs(owner, monkeypatch):
    import socket

    real = socket.getaddrinfo

    def getaddrinfo(host, port, *args, **kwargs):  # only the git host is faked: Redis and PostgreSQL stay reachable
        if host == "git.internal.example":
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("10.0.0.7", port))]
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    source = Source.objects.create(owner=owner, kind="github", url="https://git.internal.example/x.git", name="x")

    run = do_sync_source(source)

    run.refresh_from_db()
    assert run.status == "failed" and "resolves to a private network address" in run.error


def test_a_repository_past_the_file_cap_fails_the_sync_and_keeps_what_was_stored(owner, github, settings):
    source = do_add_source(owner, "github", {"url": "https://github.com/ada/tools"})
    stored = {d.pk: d.raw_text for d in Document.objects.filter(source=source)}
    assert len(stored) == 3
    commit_files(github.tools_path, {f"notes/{i}.md": f"# Note {i}\n\nA note.\n" for i in range(5)})
    settings.TWIN_GIT_MAX_FILES = 6  # the repository now has 9 files to take (one of them binary)

    run = do_sync_source(source)

    run.refresh_from_db()
    assert run.status == "failed"
    assert "has 9 source and docs files, more than the 6" in run.error
    assert {d.pk: d.raw_text for d in Document.objects.filter(source=source, gone_at__isnull=True)} == stored


def test_a_clone_past_the_size_cap_fails_the_sync_and_keeps_what_was_stored(owner, github, settings):
    import os

    source = do_add_source(owner, "github", {"url": "https://github.com/ada/tools"})
    stored = {d.pk: d.raw_text for d in Document.objects.filter(source=source)}
    commit_files(github.tools_path, {"assets/noise.bin": os.urandom(3 * 1024 * 1024)})  # incompressible
    settings.TWIN_GIT_MAX_CLONE_BYTES = 1024 * 1024

    run = do_sync_source(source)

    run.refresh_from_db()
    assert run.status == "failed"
    assert run.error == "The repository is larger than the limit of 1 MB for one clone; nothing of it was read."
    assert {d.pk: d.raw_text for d in Document.objects.filter(source=source, gone_at__isnull=True)} == stored

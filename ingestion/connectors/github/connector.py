"""GitHub, and any git URL: a user's public repositories (github.com/you) or one
repository, listed through the REST API (TWIN_GITHUB_API_URL, optional
TWIN_GITHUB_TOKEN), then shallow-cloned (git.py). Source and docs files become
documents of category `code` with their path and language; files.py says what is
skipped. A repository whose HEAD has not moved since the last sync is not cloned again.
A clone is capped in size (git.py) and a sync in the files it takes (TWIN_GIT_MAX_FILES):
a repository past either fails with the reason, and what was stored from it before stays.
"""

import json
import os
import tempfile
import time
from pathlib import Path
from urllib.parse import quote, urlsplit

from django.conf import settings

from ...safe_http import FetchError, HTTPStatusError
from ..base import Connector, ConnectorError, Item
from .files import is_binary, language_of, skip_reason
from .forms import GitSourceForm
from .git import head_commit, shallow_clone, tracked_files

GITHUB_HOSTS = ("github.com", "www.github.com")
JSON_TYPES = ("application/json",)


def github_owner_repo(url: str) -> tuple[str, str] | None:
    parts = urlsplit(url)
    if (parts.hostname or "").lower() not in GITHUB_HOSTS:
        return None
    segments = [s for s in parts.path.split("/") if s]
    if not segments:
        return None
    return segments[0], (segments[1].removesuffix(".git") if len(segments) > 1 else "")


class GitHubConnector(Connector):
    kind = "github"
    label = "GitHub or git repository"
    help_text = (
        "Paste github.com/you for all your public repositories, github.com/you/repo for one, or any https git URL."
    )
    form_class = GitSourceForm
    recrawls = True
    order = 40
    recognition_order = 10

    def recognises(self, *, url, filename):
        return bool(url) and (github_owner_repo(url) is not None or urlsplit(url).path.endswith(".git"))

    def source_fields(self, cleaned_data):
        return {**super().source_fields(cleaned_data), "category": cleaned_data.get("category") or "code"}

    def sync(self, crawl):
        repos = self._repositories(crawl)
        crawl.source.state.setdefault("heads", {})
        failures = []
        budget = [settings.TWIN_GIT_MAX_FILES]  # files this sync may still take, across its repositories
        for i, repo in enumerate(repos):
            crawl.progress(5 + 90 * i / max(1, len(repos)), f"Repository {repo['name']} ({i + 1}/{len(repos)})")
            if repo.get("skip"):
                crawl.skip(repo["html_url"], repo["skip"])
                continue
            try:
                self._sync_repository(crawl, repo, budget)
            except ConnectorError as exc:
                failures.append(exc)
                crawl.fail(repo["html_url"], str(exc))
        if failures and len(failures) == len([repo for repo in repos if not repo.get("skip")]):
            raise failures[-1]  # nothing could be read: the sync failed, for that reason
        if not failures:
            crawl.mark_unseen_gone()

    # -- listing ----------------------------------------------------------------------
    def _api(self, crawl, path: str):
        headers = {"Accept": "application/vnd.github+json", "X-GitHub-Api-Version": "2022-11-28"}
        if settings.TWIN_GITHUB_TOKEN:
            headers["Authorization"] = f"Bearer {settings.TWIN_GITHUB_TOKEN}"
        url = settings.TWIN_GITHUB_API_URL.rstrip("/") + path
        try:
            page = crawl.fetch(url, accept=JSON_TYPES, headers=headers, is_api=True)
            return json.loads(page.body)
        except HTTPStatusError as exc:
            if exc.status == 404:
                raise ConnectorError("GitHub has no public user or repository at that address.") from None
            if exc.status in (401, 403, 429):
                raise ConnectorError("GitHub refused the request (rate limit or token); try again later.") from None
            raise ConnectorError(str(exc)) from None
        except FetchError as exc:
            raise ConnectorError(str(exc)) from None
        except ValueError:
            raise ConnectorError("GitHub's API answered with something that is not JSON.") from None

    def _repositories(self, crawl) -> list[dict]:
        url = crawl.source.url
        owner_repo = github_owner_repo(url)
        if owner_repo is None:
            name = url.rstrip("/").rsplit("/", 1)[-1].removesuffix(".git") or url
            return [{"name": name, "clone_url": url, "html_url": url, "blob": f"{url}#"}]
        owner, repo = owner_repo
        if repo:
            listed = [self._api(crawl, f"/repos/{quote(owner)}/{quote(repo)}")]
        else:
            listed = self._api(crawl, f"/users/{quote(owner)}/repos?type=owner&sort=pushed&per_page=100")
        if not isinstance(listed, list) or not all(isinstance(r, dict) for r in listed):
            raise ConnectorError("GitHub's API answered in a shape we do not know.")
        repos = []
        for data in listed[: settings.TWIN_GIT_MAX_REPOS]:
            html_url = str(data.get("html_url") or "")
            repos.append(
                {
                    "name": str(data.get("full_name") or data.get("name") or ""),
                    "clone_url": str(data.get("clone_url") or ""),
                    "html_url": html_url,
                    "blob": f"{html_url}/blob/HEAD/",
                    "skip": "A fork: not your own writing." if data.get("fork") and not repo else "",
                }
            )
        return repos

    # -- one repository ---------------------------------------------------------------------
    def _time_left(self, crawl) -> float:
        return max(1.0, crawl.deadline - time.monotonic())

    def _sync_repository(self, crawl, repo, budget: list[int]):
        heads = crawl.source.state["heads"]
        head = head_commit(repo["clone_url"], self._time_left(crawl))
        mine = [url for url, doc in crawl.known.items() if doc.metadata.get("repo") == repo["name"]]
        if head and heads.get(repo["clone_url"]) == head and mine:
            for url in mine:
                if crawl.known[url].gone_at is None:
                    crawl.unchanged(url)
                else:
                    crawl.seen.add(url)
            return
        with tempfile.TemporaryDirectory(prefix="twinsite-git-") as tmp:
            checkout = Path(tmp) / "repo"
            commit = shallow_clone(repo["clone_url"], checkout, self._time_left(crawl))
            paths = tracked_files(checkout, self._time_left(crawl))
            takes = sum(1 for path in paths if not self._skip_reason(checkout, path))
            if takes > budget[0]:  # refused before storing any of it: its documents stay as they were
                raise ConnectorError(
                    f"The repository has {takes} source and docs files, more than the {budget[0]} this sync "
                    f"may still take (at most {settings.TWIN_GIT_MAX_FILES} per sync); nothing of it was read."
                )
            budget[0] -= takes
            for path in paths:
                self._take_file(crawl, repo, checkout, path, commit)
        heads[repo["clone_url"]] = head or commit

    @staticmethod
    def _skip_reason(checkout: Path, path: str) -> str:
        return skip_reason(path, os.path.getsize(checkout / path), settings.TWIN_GIT_MAX_FILE_BYTES)

    def _take_file(self, crawl, repo, checkout: Path, path: str, commit: str):
        url = repo["blob"] + path
        if reason := self._skip_reason(checkout, path):
            crawl.skip(url, reason)
            return
        data = (checkout / path).read_bytes()
        if is_binary(data):
            crawl.skip(url, "A binary file.")
            return
        try:
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError:
            crawl.skip(url, "Not UTF-8 text.")
            return
        if not text.strip():
            crawl.skip(url, "An empty file.")
            return
        metadata = {"repo": repo["name"], "path": path, "language": language_of(path), "commit": commit}
        crawl.store(Item(url=url, title=f"{repo['name']}/{path}", text=text, category="code", metadata=metadata))


connector = GitHubConnector()

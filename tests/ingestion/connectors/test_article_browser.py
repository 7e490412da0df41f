"""The article connector's browser path: Debian's Chromium for pages that render in JavaScript."""

import os
import pwd
from pathlib import Path

import pytest

from ingestion.actions import do_add_source
from ingestion.crawling import Crawl
from ingestion.models import Document
from tests.ingestion.sites import LONG_PARAGRAPH

pytestmark = [pytest.mark.browser, pytest.mark.django_db]

SHELL = (
    "<html><head><title>Rendered later</title><script src='/app.js'></script>"
    "<script src='http://169.254.169.254/latest/meta-data/'></script></head>"
    "<body><div id='root'>Loading…</div><img src='/huge.png'></body></html>"
)
RENDERED = (
    f"<article><h1>Rendered later</h1><p>{LONG_PARAGRAPH.format(topic='client-side rendering')}</p>"
    f"<p>{LONG_PARAGRAPH.format(topic='hydration')}</p></article>"
)
APP = (
    "document.addEventListener('DOMContentLoaded', function () {"
    f"  document.getElementById('root').innerHTML = {RENDERED!r};"
    "});"
)


@pytest.fixture
def js_site(site, monkeypatch):
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")  # Playwright runs an event loop in this thread
    site.add("/robots.txt", "", content_type="text/plain")
    site.add("/app.js", APP, content_type="application/javascript")
    site.add("/huge.png", b"\x89PNG" + b"\x00" * 100, content_type="image/png")
    return site


def test_a_page_with_too_little_static_text_is_rendered_in_the_browser(owner, js_site):
    url = js_site.add("/post", SHELL)

    source = do_add_source(owner, "article", {"url": url, "category": "article"})

    assert source.last_run.status == "succeeded", source.last_run.error
    document = Document.objects.get(source=source)
    assert "client-side rendering" in document.raw_text and "hydration" in document.raw_text
    assert "/app.js" in js_site.paths() and "/huge.png" not in js_site.paths()  # images are refused


def test_the_user_can_ask_for_the_browser(owner, js_site, settings):
    settings.TWIN_BROWSER_MIN_WORDS = 0  # static text would do; the option decides
    url = js_site.add("/post", SHELL)

    source = do_add_source(owner, "article", {"url": url, "category": "article", "render_js": True})

    assert source.options == {"render_js": True}
    assert "hydration" in Document.objects.get(source=source).raw_text


def test_without_javascript_the_static_page_fails_with_the_reason(owner, js_site, settings):
    settings.TWIN_BROWSER_PATH = "/nonexistent/chromium"
    url = js_site.add("/post", SHELL)

    source = do_add_source(owner, "article", {"url": url, "category": "article"})

    assert source.last_run.status == "failed" and "No article text was found" in source.last_run.error


PROBE = (
    "document.addEventListener('DOMContentLoaded', function () {"
    "  navigator.serviceWorker.register('/sw.js').catch(function () {}).then(function () {"
    "    return navigator.serviceWorker.getRegistrations();"
    "  }).then(function (registrations) {"
    f"    document.getElementById('root').innerHTML = {RENDERED.removesuffix('</article>')!r}"
    "      + '<p>The probe found WebAssembly ' + typeof WebAssembly + ' and ' + registrations.length"
    "      + ' service workers registered.</p></article>';"
    "  });"
    "});"
)


def browser_processes() -> list[tuple[int, str]]:
    """(real uid, command line) of each running process of a render's browser (its profile)."""
    found = []
    for status in Path("/proc").glob("[0-9]*/status"):
        try:
            cmdline = (status.parent / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            uid = next(line for line in status.read_text().splitlines() if line.startswith("Uid:")).split()[1]
        except (OSError, StopIteration):
            continue  # a process that ended meanwhile
        if "twinsite-browser-" in cmdline:
            found.append((int(uid), cmdline))
    return found


def test_the_browser_is_unprivileged_jitless_without_service_workers_and_resolves_only_the_page(
    owner, js_site, settings, monkeypatch
):
    """The page is an attacker's and Chromium has no sandbox: it ran as root, with its JIT,
    could register service workers and resolve any name by itself."""
    settings.TWIN_CRAWL_ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
    settings.TWIN_BROWSER_MIN_WORDS = 0
    js_site.add("/app.js", PROBE, content_type="application/javascript")
    js_site.add("/sw.js", "self.addEventListener('fetch', function () {});", content_type="application/javascript")
    url = js_site.add("/post", SHELL).replace("127.0.0.1", "localhost")
    seen, real_fetch = [], Crawl.fetch_quietly

    def fetch_quietly(crawl, url):
        seen.extend(browser_processes())
        return real_fetch(crawl, url)

    monkeypatch.setattr(Crawl, "fetch_quietly", fetch_quietly)

    source = do_add_source(owner, "article", {"url": url, "category": "article", "render_js": True})

    text = Document.objects.get(source=source).raw_text
    assert "The probe found WebAssembly undefined and 0 service workers registered." in text
    unprivileged = pwd.getpwnam("nobody").pw_uid if os.geteuid() == 0 else os.geteuid()
    assert seen and {uid for uid, _ in seen} == {unprivileged}
    assert any("--host-resolver-rules=MAP localhost 127.0.0.1, MAP * ~NOTFOUND" in cmdline for _, cmdline in seen)
    assert not browser_processes()  # and its profile is gone with it

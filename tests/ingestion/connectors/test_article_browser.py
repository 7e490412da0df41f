"""The article connector's browser path: Debian's Chromium for pages that render in JavaScript."""

import pytest

from ingestion.actions import do_add_source
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

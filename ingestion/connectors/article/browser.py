"""The browser path for pages that render their text in JavaScript.

Debian's Chromium, driven by Playwright (`executable_path`, `--no-sandbox`; never
`playwright install`). The browser never opens a connection itself: every request it
makes is answered by the crawl's own fetch (SSRF guard, robots.txt, politeness, size
and time limits) or refused. Images, fonts, media and styles are refused outright, and
a page may make at most TWIN_BROWSER_MAX_REQUESTS requests.
"""

import logging
from pathlib import Path
from urllib.parse import urlsplit

from django.conf import settings

from ...safe_http import FetchError
from ..base import ConnectorError, extract_article

logger = logging.getLogger(__name__)
CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-quic",
]
REFUSED_RESOURCES = {"image", "font", "media", "stylesheet", "websocket", "eventsource", "manifest"}


def browser_available() -> bool:
    return Path(settings.TWIN_BROWSER_PATH).exists()


def render(url: str, html: str, crawl) -> str:
    """The page's DOM after its scripts ran, with `html` as the page itself."""
    from playwright.sync_api import Error as PlaywrightError
    from playwright.sync_api import sync_playwright

    budget = {"requests": settings.TWIN_BROWSER_MAX_REQUESTS}

    def answer(route):
        request = route.request
        if request.url == url and request.resource_type == "document":
            return route.fulfill(status=200, content_type="text/html; charset=utf-8", body=html)
        if request.resource_type in REFUSED_RESOURCES or budget["requests"] <= 0:
            return route.abort()
        if urlsplit(request.url).scheme not in ("http", "https") or request.method != "GET":
            return route.abort()
        budget["requests"] -= 1
        try:
            page = crawl.fetch_quietly(request.url)
        except FetchError:
            return route.abort()
        return route.fulfill(status=200, content_type=page.content_type or "text/plain", body=page.body)

    timeout_ms = settings.TWIN_BROWSER_TIMEOUT * 1000
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(
                executable_path=settings.TWIN_BROWSER_PATH, args=CHROMIUM_ARGS, headless=True
            )
            try:
                context = browser.new_context(user_agent=crawl.user_agent, java_script_enabled=True)
                context.route("**/*", answer)
                page = context.new_page()
                page.goto(url, wait_until="load", timeout=timeout_ms)
                try:
                    page.wait_for_load_state("networkidle", timeout=timeout_ms)
                except PlaywrightError:
                    pass  # a page that keeps polling: take what it shows now
                return page.content()
            finally:
                browser.close()
    except PlaywrightError as exc:
        logger.warning("browser rendering of %s failed: %s", url, exc)
        raise ConnectorError("The page could not be rendered in the browser.") from None


def extractor_for(crawl, source):
    """extract(page) -> (title, text): static extraction, or the browser when asked or when too little text."""
    always = bool(source.options.get("render_js"))

    def extract(page):
        static_error, title, text = None, "", ""
        if not always:
            try:
                title, text = extract_article(page.text, page.url)
            except ConnectorError as exc:
                static_error = exc
            if len(text.split()) >= settings.TWIN_BROWSER_MIN_WORDS or not browser_available():
                if static_error:
                    raise static_error
                return title, text
        crawl.progress(50, "Rendering the page in a browser")
        return extract_article(render(page.url, page.text, crawl), page.url)

    return extract

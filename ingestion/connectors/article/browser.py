"""The browser path for pages that render their text in JavaScript.

Debian's Chromium, driven by Playwright (`executable_path`; never `playwright install`).
The browser never opens a connection itself: every request it makes is answered by the
crawl's own fetch (SSRF guard, robots.txt, politeness, size and time limits) or refused.
Images, fonts, media and styles are refused outright, and a page may make at most
TWIN_BROWSER_MAX_REQUESTS requests.

The page is an attacker's, and Chromium runs with `--no-sandbox` (a container has no
user namespaces for its sandbox), so the browser is confined otherwise:
- as root, it runs as TWIN_BROWSER_USER (nobody) through run-unprivileged.sh, with a
  profile of its own that it owns and that is deleted afterwards;
- V8 runs without its JIT (`--js-flags=--jitless`: no WebAssembly, no generated code,
  most of the engine's exploitable surface gone; a bare `--jitless` is no Chromium switch);
- service workers are blocked (nothing outlives the page);
- it resolves no host name but the page's own, mapped to the address the crawl vetted
  (`--host-resolver-rules`): a name that rebinds after vetting cannot move the browser.
"""

import ipaddress
import logging
import os
import pwd
import shutil
import tempfile
from pathlib import Path
from urllib.parse import urlsplit

from django.conf import settings

from ...safe_http import FetchError, vetted_addresses
from ..base import ConnectorError, extract_article

logger = logging.getLogger(__name__)
CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--js-flags=--jitless",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-quic",
]
REFUSED_RESOURCES = {"image", "font", "media", "stylesheet", "websocket", "eventsource", "manifest"}
UNPRIVILEGED_LAUNCHER = Path(__file__).with_name("run-unprivileged.sh")


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
    args = [*CHROMIUM_ARGS, f"--host-resolver-rules={resolver_rules(url)}"]
    profile = Path(tempfile.mkdtemp(prefix="twinsite-browser-"))
    try:
        executable, env = _launcher(profile)
        with sync_playwright() as playwright:
            context = playwright.chromium.launch_persistent_context(
                profile,
                executable_path=executable,
                env=env,
                args=args,
                headless=True,
                user_agent=crawl.user_agent,
                java_script_enabled=True,
                service_workers="block",
            )
            try:
                context.route("**/*", answer)
                page = context.new_page()
                page.goto(url, wait_until="load", timeout=timeout_ms)
                try:
                    page.wait_for_load_state("networkidle", timeout=timeout_ms)
                except PlaywrightError:
                    pass  # a page that keeps polling: take what it shows now
                return page.content()
            finally:
                context.close()
    except PlaywrightError as exc:
        logger.warning("browser rendering of %s failed: %s", url, exc)
        raise ConnectorError("The page could not be rendered in the browser.") from None
    finally:
        shutil.rmtree(profile, ignore_errors=True)


def resolver_rules(url: str) -> str:
    """Chromium's --host-resolver-rules: the page's host maps to the address the crawl
    vetted for it (looked up once, here), every other name to "not found"."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    try:
        ipaddress.ip_address(host)
        return "MAP * ~NOTFOUND"  # an address: nothing to resolve
    except ValueError:
        pass
    address = vetted_addresses(host, parts.port or (443 if parts.scheme == "https" else 80))[0][1][0]
    return f"MAP {host} {f'[{address}]' if ':' in address else address}, MAP * ~NOTFOUND"


def _launcher(profile: Path) -> tuple[str, dict]:
    """The executable Playwright starts and the browser's environment: Chromium itself, or,
    when this process is root, the launcher that runs it as TWIN_BROWSER_USER in a profile
    that user owns."""
    env = {"HOME": str(profile), "PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C.UTF-8"}
    if os.geteuid() != 0:
        return settings.TWIN_BROWSER_PATH, env
    try:
        user = pwd.getpwnam(settings.TWIN_BROWSER_USER)
    except KeyError:
        raise ConnectorError(f"The browser's user {settings.TWIN_BROWSER_USER!r} does not exist.") from None
    if user.pw_uid == 0:
        raise ConnectorError("The browser may not run as root: set TWIN_BROWSER_USER to an unprivileged user.")
    os.chown(profile, user.pw_uid, user.pw_gid)
    env.update(TWIN_BROWSER_UID=str(user.pw_uid), TWIN_BROWSER_GID=str(user.pw_gid))
    env["TWIN_BROWSER_BINARY"] = settings.TWIN_BROWSER_PATH
    return str(UNPRIVILEGED_LAUNCHER), env


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

"""The "Ask my twin" widget in headless Chromium, embedded in a page of a SECOND origin (another
port on loopback): a visitor asks, reads the answer streamed by a real serving worker, and the
owner's session cookie on the twin's site (signed in, in the same browser) is neither sent nor
exposed; the same page on an origin the owner did not allow gets nothing."""

from itertools import pairwise
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import expect

from accounts.publication import do_ensure_publication, do_update_publication
from chat.models import Conversation, Message
from tests.conftest import LocalSite, add_markdown_source
from tests.test_browser import page, serving_worker  # noqa: F401 (fixtures: Chromium, the serving worker)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

QUESTION = "How much honey does a hive give in July?"
# Each text the answer bubble shows, as it changes: the tokens arriving one after another.
RECORD_WIDGET_FRAMES = """() => {
    window.widgetFrames = [];
    const root = document.querySelector(".twinsite-widget").shadowRoot;
    new MutationObserver(() => {
        const answer = [...root.querySelectorAll(".a .text")].pop();
        if (answer && answer.textContent !== window.widgetFrames[window.widgetFrames.length - 1])
            window.widgetFrames.push(answer.textContent);
    }).observe(root, {childList: true, subtree: true, characterData: true});
}"""


def embedding_page(site: LocalSite, twin_url: str, widget_key: str) -> str:
    return site.page(
        "/blog/",
        f"""<!doctype html><html><head><title>A blog</title></head><body>
        <h1>My blog</h1>
        <script src="{twin_url}/static/widget/twin-widget.js" data-twin-key="{widget_key}" async></script>
        </body></html>""",
    )


@pytest.fixture
def sites():
    blog, elsewhere = LocalSite(), LocalSite()
    yield blog, elsewhere
    blog.close()
    elsewhere.close()


def test_a_visitor_on_another_site_asks_the_widget_without_the_owners_session(
    page,  # noqa: F811
    serving_worker,  # noqa: F811
    live_server,
    owner,
    sites,
):
    blog, elsewhere = sites
    source = add_markdown_source(owner)
    type(source).objects.filter(pk=source.pk).update(audience=True)  # the owner shares it with the audience
    publication = do_update_publication(do_ensure_publication(owner), enabled=True, allowed_origins=[blog.base])
    blog_url = embedding_page(blog, live_server.url, publication.widget_key)
    refused_url = embedding_page(elsewhere, live_server.url, publication.widget_key)

    # The owner is signed in to the twin's site in this browser.
    page.goto(f"{live_server.url}/login/")
    page.fill("#id_username", owner.username)
    page.fill("#id_password", "correct horse battery")
    page.click("button[type=submit]")
    session = next(c for c in page.context.cookies() if c["name"] == "sessionid")
    widget_requests, widget_responses = [], []
    page.on("request", lambda r: "/widget/" in r.url and widget_requests.append(r))
    page.on("response", lambda r: "/widget/" in r.url and widget_responses.append(r))

    serving_worker()
    page.goto(blog_url)
    widget = page.locator(".twinsite-widget")
    expect(widget.locator(".title")).to_have_text("Ask Alice's twin")
    page.evaluate(RECORD_WIDGET_FRAMES)
    widget.locator("textarea").fill(QUESTION)
    widget.locator("button[type=submit]").click()

    expect(widget.locator(".q")).to_have_text(QUESTION)
    expect(widget.locator(".a[data-done='1']")).to_have_count(1, timeout=120_000)  # the worker loads its models
    conversation = Conversation.objects.get(owner=owner)
    assert conversation.visitor and conversation.asker is None  # a visitor's, not the signed-in owner's
    answer = conversation.messages.get(role="assistant")
    assert answer.status == "done" and answer.content.strip()
    expect(widget.locator(".a .text")).to_have_text(answer.content)
    frames = page.evaluate("window.widgetFrames")
    assert len(frames) >= 3 and frames[-1] == answer.content, frames  # it grew token by token
    streamed = frames[:-1]  # the last one is the finished answer's text (done), which may be tidied
    assert all(later.startswith(earlier) for earlier, later in pairwise(streamed)), frames

    # The owner's session never left the twin's site: no widget request carried a cookie, no answer set one,
    # and the embedding page cannot see it.
    endpoint = f"/widget/{publication.widget_key}/"
    assert {urlsplit(r.url).path for r in widget_requests} >= {
        endpoint + "ask/",
        endpoint + "conversation/",
        endpoint + f"messages/{answer.pk}/stream/",
    }
    for request in widget_requests:
        headers = request.all_headers()
        assert "cookie" not in headers and session["value"] not in str(headers), request.url
        assert headers.get("origin") in (blog.base, None)
    assert all("set-cookie" not in r.all_headers() for r in widget_responses)
    assert session["value"] not in page.evaluate("document.cookie")

    # A visitor's next visit shows their conversation again (the id kept in the blog's localStorage).
    page.reload()
    expect(widget.locator(".q")).to_have_text(QUESTION)
    expect(widget.locator(".a .text")).to_have_text(answer.content)

    # The same widget on a site the owner did not allow: refused, nothing asked.
    stored = Message.objects.count()
    page.goto(refused_url)
    widget = page.locator(".twinsite-widget")
    expect(widget.locator(".status")).to_have_text("The twin cannot be reached from this page.")
    expect(widget.locator(".title")).to_have_text("Ask my twin")
    widget.locator("textarea").fill(QUESTION)
    widget.locator("button[type=submit]").click()
    expect(widget.locator(".status")).to_have_text("The twin cannot be reached from this page.")
    assert Message.objects.count() == stored
    assert widget.locator(".q").count() == 0

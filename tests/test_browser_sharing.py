"""Sharing in headless Chromium: the owner invites a reader and shares one source on the Sharing page;
the reader finds the twin under "Shared with me", asks, and gets an answer from the shared source
only; once revoked, the twin is gone on the reader's next request. Then all three together: the
owner, an invited reader, and an anonymous visitor of the widget on a second origin; the owner reads
both on the Audience page. (Answers are made eagerly in the test server; tests/test_browser.py and
tests/test_browser_widget.py cover the real serving worker.)"""

import pytest
from playwright.sync_api import expect

from tests.conftest import GARDEN_NOTES, LocalSite, add_markdown_source, make_user
from tests.test_browser import page  # noqa: F401  (the Chromium page fixture)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
PASSWORD = "correct horse battery"  # tests.conftest.make_user's


def log_in(page, username):  # noqa: F811
    page.context.clear_cookies()
    page.goto("/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", PASSWORD)
    page.click("form.card button[type=submit]")
    expect(page.locator(".topbar form button")).to_contain_text(username)


def test_invite_share_a_source_chat_as_the_reader_and_revoke(page, owner):  # noqa: F811
    add_markdown_source(owner)  # private: the honey is only here
    garden = add_markdown_source(owner, "garden.md", GARDEN_NOTES)
    make_user("dave")

    log_in(page, "alice")
    page.click("nav >> text=Sharing")
    page.fill("#invite-form input[name=who]", "dave")
    page.click("#invite-form button[type=submit]")
    expect(page.locator("#invitations")).to_contain_text("dave")
    row = page.locator(f"#audience-source-{garden.pk}")
    expect(row.locator(".audience-state")).to_have_text("private")
    row.locator("button").click()  # htmx swaps the row in place
    expect(page.locator(f"#audience-source-{garden.pk} .audience-state")).to_have_text("shared")

    log_in(page, "dave")
    page.click("nav >> text=Shared with me")
    page.click("text=Alice")
    page.fill("textarea[name=message]", "When do your tomatoes ripen?")
    page.click("#chat-form button[type=submit]")
    answer = page.locator(".bubble.answer").last
    expect(answer.locator(".source-list li").first).to_contain_text("My allotment by the river", timeout=60_000)
    page.fill("textarea[name=message]", "How much honey does a hive give in July?")
    page.click("#chat-form button[type=submit]")
    honey = page.locator(".bubble.answer").nth(1)
    expect(honey.locator(".sources")).not_to_contain_text("Searching", timeout=60_000)  # the answer is in
    expect(honey).not_to_contain_text("twelve kilograms")
    expect(honey).not_to_contain_text("Keeping bees on a city roof")
    chat_url = page.url

    log_in(page, "alice")
    page.goto("/sharing/")
    page.locator("#invitations tr", has_text="dave").locator("button", has_text="Revoke").click()
    expect(page.locator("#invitations")).to_contain_text("Nobody is invited yet")

    log_in(page, "dave")
    assert page.goto(chat_url).status == 404
    page.goto("/twins/")
    expect(page.locator(".shared-twins")).to_contain_text("Nobody has shared a twin with you yet")


def ask_in_chat(page, question):  # noqa: F811
    page.fill("textarea[name=message]", question)
    page.click("#chat-form button[type=submit]")
    answer = page.locator(".bubble.answer").last
    expect(answer.locator(".sources")).not_to_contain_text("Searching", timeout=60_000)  # the answer is in
    return answer


def test_the_owner_a_reader_and_a_widget_visitor_on_another_site_together(page, owner):  # noqa: F811
    add_markdown_source(owner)  # private: the honey is only here
    garden = add_markdown_source(owner, "garden.md", GARDEN_NOTES)
    make_user("dave")
    blog = LocalSite()
    try:
        # The owner invites dave, shares the garden notes and publishes, allowing the blog's origin.
        log_in(page, "alice")
        page.goto("/sharing/")
        page.fill("#invite-form input[name=who]", "dave")
        page.click("#invite-form button[type=submit]")
        expect(page.locator("#invitations")).to_contain_text("dave")
        page.locator(f"#audience-source-{garden.pk} button").click()
        expect(page.locator(f"#audience-source-{garden.pk} .audience-state")).to_have_text("shared")
        page.goto("/sharing/publication/")
        page.check("#id_enabled")
        page.fill("#id_allowed_origins", blog.base)
        page.click("#publication-form button[type=submit]")
        expect(page.locator("#publication-state")).to_contain_text("Published")
        snippet = page.locator("#embed-snippet").input_value()  # what the owner pastes into the blog
        blog_url = blog.page("/blog/", f"<!doctype html><html><body><h1>My blog</h1>{snippet}</body></html>")

        # The invited reader asks in the twin's chat.
        log_in(page, "dave")
        page.goto("/twins/alice/chat/")
        answer = ask_in_chat(page, "When do your tomatoes ripen?")
        expect(answer.locator(".source-list li").first).to_contain_text("My allotment by the river")

        # A visitor, signed in nowhere, asks the widget on the blog.
        visitor = page.context.browser.new_context()
        try:
            blog_page = visitor.new_page()
            blog_page.goto(blog_url)
            widget = blog_page.locator(".twinsite-widget")
            widget.locator("textarea").fill("How do you water your tomatoes?")
            widget.locator("button[type=submit]").click()
            expect(widget.locator(".a[data-done='1']")).to_have_count(1, timeout=60_000)
            expect(widget.locator(".a .src")).to_contain_text("My allotment by the river")
            expect(widget.locator(".a .text")).not_to_be_empty()
        finally:
            visitor.close()

        # The owner reads both conversations on the Audience page; neither is in the owner's own chat.
        log_in(page, "alice")
        page.click("nav >> text=Audience")
        members = page.locator("table.members")
        expect(members).to_contain_text("dave")
        expect(members).to_contain_text("Visitor #")
        conversations = page.locator("table.conversations")
        for question, who in (
            ("When do your tomatoes ripen?", "dave talked to your twin here (invited)"),
            ("How do you water your tomatoes?", "a visitor of your public page"),
        ):
            conversations.locator("a", has_text=question).click()
            expect(page.locator("p.muted").first).to_contain_text(who)
            expect(page.locator(".bubble.question").first).to_contain_text(question)
            expect(page.locator(".bubble.answer .source-list li").first).to_contain_text("My allotment by the river")
            page.go_back()
        page.goto("/chat/")
        expect(page.locator("aside.conversations")).not_to_contain_text("tomatoes")
    finally:
        blog.close()

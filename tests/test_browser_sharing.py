"""Sharing in headless Chromium: the owner invites a reader and shares one source on the Sharing page;
the reader finds the twin under "Shared with me", asks, and gets an answer from the shared source
only; once revoked, the twin is gone on the reader's next request. (Answers are made eagerly in the
test server; tests/test_browser.py covers the real serving worker.)"""

import pytest
from playwright.sync_api import expect

from tests.conftest import GARDEN_NOTES, add_markdown_source, make_user
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

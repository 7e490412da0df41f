"""A new user in headless Chromium: sign up, upload a file, watch it ingest, chat and see the sources."""

import os
import re
from pathlib import Path

import pytest
from django.conf import settings
from playwright.sync_api import expect, sync_playwright

from chat.actions import no_notes_answer
from ingestion.connectors.article.browser import CHROMIUM_ARGS  # one set of flags for Debian's Chromium

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

CHROMIUM = "/usr/bin/chromium"  # Debian's build, installed by `make setup`; never `playwright install`


@pytest.fixture
def page(live_server, monkeypatch):
    # Playwright's sync API runs an event loop in this thread; the ORM calls made by the
    # test itself are still synchronous and safe.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        context = browser.new_context(base_url=live_server.url)
        context.set_default_timeout(30_000)
        yield context.new_page()
        browser.close()


def test_signup_upload_and_chat_with_cited_sources(page):
    page.goto("/signup/")
    page.fill("#id_username", "dana")
    page.fill("#id_password1", "a long enough passphrase")
    page.fill("#id_password2", "a long enough passphrase")
    page.fill("#id_twin_name", "Dana")
    page.click("button[type=submit]")
    expect(page.locator("h1")).to_have_text("Dana's twin")

    page.goto("/chat/")
    expect(page.locator("#chat-blocked")).to_contain_text("add a source")

    page.goto("/sources/")
    corpus = Path(settings.BASE_DIR) / "demo" / "corpus" / "sourdough-starter.md"
    page.set_input_files("#upload-form input[type=file]", str(corpus))
    page.click("#upload-form button[type=submit]")
    expect(page.locator(".messages")).to_contain_text("ingesting it now")
    row = page.locator("#source-table tr", has_text="Gerald")
    expect(row.locator(".status")).to_have_text("Succeeded")

    page.goto("/dashboard/")
    expect(page.get_by_role("link", name="Dataset v1")).to_be_visible()

    page.goto("/chat/")
    expect(page.locator(".serving")).to_contain_text("no approved adapter yet")
    page.fill("textarea[name=message]", "What ratio do you feed Gerald?")
    page.click("#chat-form button[type=submit]")

    answer = page.locator(".bubble.answer").last
    expect(answer.locator(".source-list summary")).to_contain_text("Sources (")
    expect(answer.locator(".source-list li").first).to_contain_text("Gerald")
    expect(page.locator(".bubble.question").last).to_have_text("What ratio do you feed Gerald?")
    # The streamed answer states the note's fact (the test model is random: steering puts it there),
    # and once the grounding check arrives its sentence is marked as supported by that note.
    expect(answer.locator(".answer-text")).to_contain_text("1:5:5")
    expect(answer.locator(".sentence.supported").first).to_have_attribute("title", re.compile("Gerald"))
    expect(answer.locator(".grounding-score")).to_have_text("Grounded: 100%")

    page.fill("textarea[name=message]", "What do you think of the opera in Vienna?")
    page.click("#chat-form button[type=submit]")
    off_topic = page.locator(".bubble.answer").nth(1)
    expect(off_topic.locator(".answer-text")).to_have_text(no_notes_answer())
    expect(off_topic.locator(".grounding")).to_contain_text("did not guess")

    page.reload()  # a finished conversation renders the checked sentences without streaming
    expect(page.locator(".bubble.answer").first.locator(".sentence.supported").first).to_contain_text("1:5:5")
    assert os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] == "true"

"""The owner's Audience in headless Chromium: from the top bar to a reader's conversation, an answer
revised there, and the correction it made on the dashboard. (The audience rows are made with the
ORM, as the sharing and widget code leaves them.)"""

import pytest
from playwright.sync_api import expect

from features.embeddings import embed
from tests.audience import NO_NOTES, an_audience, exchange, invited_reader
from tests.test_browser import page  # noqa: F401  (the Chromium page fixture)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_the_owner_reads_a_readers_conversation_and_revises_an_answer(page, owner, other):  # noqa: F811
    embed(["a question"])  # the embedding model, loaded once for this process (the live server's too)
    first = an_audience(owner, other, invited_reader(owner))
    exchange(owner, "What flour do you use for sourdough bread?", visitor="v2", grounding=NO_NOTES)
    page.goto("/login/")
    page.fill("#id_username", "alice")
    page.fill("#id_password", "correct horse battery")
    page.click("button[type=submit]")

    page.click("nav >> text=Audience")
    expect(page.locator("table.members")).to_contain_text("Dave Reader")
    expect(page.locator("table.members")).to_contain_text("Visitor #")
    expect(page.locator("svg.day-chart")).to_have_count(3)
    page.click(f"a[href='/audience/conversations/{first.conversation_id}/']")
    expect(page.locator("h1")).to_have_text("How much honey in July?")
    page.click(f"#answer-{first.pk} summary")
    page.fill(f"#answer-{first.pk} textarea[name=text]", "About twelve kilos a hive, in a good July.")
    page.click(f"#answer-{first.pk} button[type=submit]")

    expect(page.locator(f"#answer-{first.pk} .answer-text")).to_have_text("About twelve kilos a hive, in a good July.")
    page.goto("/dashboard/")
    expect(page.locator("#corrections")).to_contain_text("1 correction waiting")
    page.goto("/audience/unanswered/")
    expect(page.locator(".topic h2").first).to_contain_text("(1 question)")
    expect(page.locator(".topic")).to_have_count(2)  # winter feeding; sourdough flour

"""The published twin's visitors: the widget's endpoints (/widget/<key>/…) and the public page.

Cookie-less (no session read or set, even when the owner's cookie comes along), CORS only for the
owner's allow-list and this site, a visitor id that reaches only that visitor's conversation,
throttles per visitor and per address, the twin's monthly quota, visitor answers that never take
the owner's answers in flight, and unpublishing or a new key taking effect on the next request,
an open stream included."""

import json
import secrets
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from accounts.publication import do_ensure_publication, do_rotate_widget_key, do_update_publication
from chat.following import wait_for_answer
from chat.models import Conversation, Message
from chat.visitors import do_visitor_ask
from tests.chat.test_busy import in_flight_answers
from tests.conftest import GARDEN_NOTES, add_markdown_source

pytestmark = pytest.mark.django_db

BLOG = "https://blog.example"
SITE = "http://testserver"
QUESTION = "How much honey does a hive give in July?"


def new_visitor() -> str:
    return secrets.token_hex(16)


@pytest.fixture
def publication(owner, owner_source):
    owner_source.set_audience(True)  # visitors' answers draw on the sources shared with the audience
    publication = do_ensure_publication(owner)
    return do_update_publication(publication, enabled=True, allowed_origins=[BLOG])


def ask(client, publication, visitor, message=QUESTION, origin=BLOG, **body):
    headers = {"HTTP_ORIGIN": origin} if origin else {}
    payload = json.dumps({"visitor": visitor, "message": message, **body})
    return client.post(f"/widget/{publication.widget_key}/ask/", payload, content_type="text/plain", **headers)


def read_conversation(client, publication, visitor, origin=BLOG):
    headers = {"HTTP_ORIGIN": origin} if origin else {}
    return client.get(f"/widget/{publication.widget_key}/conversation/", {"visitor": visitor}, **headers)


def sse_events(response) -> list[tuple[str, object]]:
    text = b"".join(response.streaming_content).decode()
    events = []
    for block in text.strip().split("\n\n"):
        lines = dict(line.split(": ", 1) for line in block.split("\n"))
        events.append((lines["event"], json.loads(lines["data"])))
    return events


def test_a_visitor_asks_from_an_allowed_site_and_reads_the_streamed_answer(publication, owner):
    client, visitor = Client(), new_visitor()

    response = ask(client, publication, visitor)

    assert response.status_code == 202, response.content
    assert response["Access-Control-Allow-Origin"] == BLOG and "Origin" in response["Vary"]
    assert "Access-Control-Allow-Credentials" not in response
    body = response.json()
    conversation = Conversation.objects.get(pk=body["conversation"])
    assert (conversation.owner, conversation.visitor, conversation.asker) == (owner, visitor, None)
    assert Conversation.objects.for_user(owner).audience().filter(pk=conversation.pk).exists()
    assert not Conversation.objects.for_user(owner).own().filter(pk=conversation.pk).exists()
    stream = client.get(body["stream"], HTTP_ORIGIN=BLOG)
    assert stream["Content-Type"] == "text/event-stream" and stream["Access-Control-Allow-Origin"] == BLOG
    events = sse_events(stream)
    kinds = [kind for kind, _ in events]
    assert kinds[0] == "sources" and kinds[-1] == "done" and "token" in kinds
    answer = Message.objects.get(pk=body["answer"])
    assert events[-1][1]["content"] == answer.content and answer.status == Message.Status.DONE
    assert answer.mode == Message.Mode.ASK

    again = ask(client, publication, visitor, "And in winter?", conversation=body["conversation"])
    assert again.status_code == 202 and again.json()["conversation"] == body["conversation"]
    shown = read_conversation(client, publication, visitor).json()
    assert shown["conversation"] == body["conversation"] and shown["twin"] == "Alice"
    assert [m["content"] for m in shown["messages"] if m["role"] == "user"] == [QUESTION, "And in winter?"]


def test_a_visitor_never_reaches_another_visitors_conversation_nor_the_owners(publication, owner):
    from chat.actions import do_answer

    own = do_answer(owner, "What do the bees do in winter?")  # the owner's own conversation
    client, alice, mallory = Client(), new_visitor(), new_visitor()
    body = ask(client, publication, alice).json()

    assert read_conversation(client, publication, mallory).json()["messages"] == []
    stream = f"/widget/{publication.widget_key}/messages/{body['answer']}/stream/"
    assert client.get(stream, {"visitor": mallory}).status_code == 404
    assert client.get(stream).status_code == 404  # no visitor id: nobody's
    owner_stream = f"/widget/{publication.widget_key}/messages/{own.pk}/stream/"
    assert client.get(owner_stream, {"visitor": alice}).status_code == 404
    assert client.get(owner_stream, {"visitor": ""}).status_code == 404
    refused = ask(client, publication, mallory, "Let me in", conversation=body["conversation"])
    assert refused.status_code == 400 and "not yours" in refused.json()["detail"]
    refused = ask(client, publication, alice, "And the owner's?", conversation=own.conversation_id)
    assert refused.status_code == 400
    assert ask(client, publication, "short").status_code == 400  # not a visitor id
    assert read_conversation(client, publication, "").status_code == 400


def test_an_origin_not_allowed_is_refused_before_anything_is_done(publication):
    client, visitor = Client(), new_visitor()
    stored = Message.objects.count()

    refused = ask(client, publication, visitor, origin="https://evil.example")

    assert refused.status_code == 403 and "Access-Control-Allow-Origin" not in refused
    assert Message.objects.count() == stored
    assert read_conversation(client, publication, visitor, origin="null").status_code == 403
    # this site's own public page may always; a caller without Origin is no cross-site browser page
    assert ask(client, publication, visitor, origin=SITE).status_code == 202
    assert read_conversation(client, publication, visitor, origin=None).status_code == 200


def test_the_widget_neither_reads_nor_sets_the_session_even_with_the_owners_cookie(publication, owner, owner_client):
    visitor = new_visitor()
    owner_client.get("/chat/")  # the owner's browser has a session (and a CSRF cookie) for this site
    assert owner_client.cookies.get("sessionid")

    responses = [
        ask(owner_client, publication, visitor),  # no CSRF token either: none is needed, no cookie counts
        read_conversation(owner_client, publication, visitor),
        owner_client.get(f"/t/{publication.slug}/"),
    ]
    responses.append(owner_client.get(responses[0].json()["stream"], HTTP_ORIGIN=BLOG))

    for response in responses:
        assert response.status_code in (200, 202)
        assert not response.cookies, response.cookies  # nothing set
        assert "Cookie" not in response.get("Vary", "")  # the session was never read
    conversation = Conversation.objects.get(pk=responses[0].json()["conversation"])
    assert conversation.visitor == visitor  # the owner's session made it nobody's but this visitor's


def test_the_public_page_serves_the_widget_and_only_while_published(publication, anon_client):
    page = anon_client.get(f"/t/{publication.slug}/")
    assert page.status_code == 200
    html = page.content.decode()
    assert "Alice's twin" in html and f'data-twin-key="{publication.widget_key}"' in html
    assert "/static/widget/twin-widget.js" in html

    do_update_publication(publication, enabled=False)
    assert anon_client.get(f"/t/{publication.slug}/").status_code == 404


def test_unpublishing_or_a_new_key_takes_effect_on_the_next_request(publication):
    client, visitor = Client(), new_visitor()
    old_key = publication.widget_key
    do_rotate_widget_key(publication)

    gone = client.post(f"/widget/{old_key}/ask/", json.dumps({"visitor": visitor, "message": QUESTION}), "text/plain")
    assert gone.status_code == 404
    assert ask(client, publication, visitor).status_code == 202

    do_update_publication(publication, enabled=False)
    refused = ask(client, publication, visitor)
    assert refused.status_code == 404 and "no longer published" in refused.json()["detail"]
    assert refused["Access-Control-Allow-Origin"] == BLOG  # the widget can say why


@pytest.mark.parametrize("change", ["unpublish", "rotate"])
def test_an_open_stream_ends_when_the_twin_is_unpublished_or_its_key_rotated(publication, owner, change):
    visitor = new_visitor()
    conversation = Conversation.objects.create(owner=owner, visitor=visitor, title="A long wait")
    Message.objects.create(conversation=conversation, role="user", content=QUESTION)
    answer = Message.objects.create(conversation=conversation, role="assistant", status=Message.Status.PENDING)
    response = Client().get(
        f"/widget/{publication.widget_key}/messages/{answer.pk}/stream/", {"visitor": visitor}, HTTP_ORIGIN=BLOG
    )
    assert response.status_code == 200  # the stream is open, waiting for the serving worker

    if change == "unpublish":
        do_update_publication(publication, enabled=False)
    else:
        do_rotate_widget_key(publication)

    assert sse_events(response) == [("revoked", "This twin is no longer published here.")]


def test_a_flooding_visitor_gets_429_with_retry_after_per_visitor_and_per_address(publication, settings):
    rates = settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {**rates, "widget_visitor": "2/min", "widget_ip": "4/min"},
    }
    client, visitor = Client(), new_visitor()
    assert [ask(client, publication, visitor).status_code for _ in range(2)] == [202, 202]

    flooded = ask(client, publication, visitor)
    assert flooded.status_code == 429 and int(flooded["Retry-After"]) > 0
    assert "wait" in flooded.json()["detail"] and flooded["Access-Control-Allow-Origin"] == BLOG
    assert flooded["Access-Control-Expose-Headers"] == "Retry-After"
    # new visitor ids from the same address: the address's budget (4, 2 of them used) runs out too
    statuses = [ask(client, publication, new_visitor()).status_code for _ in range(3)]
    assert statuses == [202, 202, 429]
    other_address = ask(Client(REMOTE_ADDR="10.0.0.9"), publication, new_visitor())
    assert other_address.status_code == 202


def test_the_monthly_quota_holds_with_a_clear_message(publication, owner):
    client = Client()
    do_update_publication(publication, monthly_quota=2)
    last_month = ask(client, publication, new_visitor()).json()
    Message.objects.filter(conversation_id=last_month["conversation"]).update(
        created_at=timezone.now() - timedelta(days=40)
    )
    failed = ask(client, publication, new_visitor()).json()  # a failed answer gave nothing: not counted
    Message.objects.filter(pk=failed["answer"]).update(status=Message.Status.FAILED)
    assert ask(client, publication, new_visitor()).status_code == 202
    assert ask(client, publication, new_visitor()).status_code == 202
    stored = Message.objects.count()

    over = ask(client, publication, new_visitor())

    assert over.status_code == 429
    assert "answered all 2 visitor questions its owner allows this month" in over.json()["detail"]
    assert int(over["Retry-After"]) > 0
    assert Message.objects.count() == stored
    from chat.actions import do_answer

    assert do_answer(owner, QUESTION).status == Message.Status.DONE  # the owner's own chat is not limited


def test_visitor_answers_never_take_the_owners_answers_in_flight(publication, owner, settings, owner_api):
    settings.TWIN_MAX_ANSWERS_IN_FLIGHT = 6
    settings.TWIN_MAX_VISITOR_ANSWERS_PER_TWIN = 2
    busy = []
    for _ in range(2):  # two visitors are waiting for answers: the twin's visitor share is full
        conversation = Conversation.objects.create(owner=owner, visitor=new_visitor(), title="Waiting")
        busy.append(Message.objects.create(conversation=conversation, role="assistant", status="pending"))

    refused = ask(Client(), publication, new_visitor())
    assert refused.status_code == 503 and "other visitors" in refused.json()["detail"]
    assert owner_api.post("/api/v1/chat/", {"message": QUESTION}, format="json").status_code == 200

    Message.objects.filter(pk__in=[m.pk for m in busy]).update(status="done")
    in_flight_answers(owner, settings.TWIN_MAX_PENDING_ANSWERS_PER_USER)  # the owner's own slots are full
    assert owner_api.post("/api/v1/chat/", {"message": QUESTION}, format="json").status_code == 429
    assert ask(Client(), publication, new_visitor()).status_code == 202  # and visitors are not held up by them


def test_one_visitor_has_one_answer_in_flight_and_all_visitors_a_share_of_the_site(publication, owner, other, settings):
    from tests.conftest import add_markdown_source

    visitor = new_visitor()
    conversation = Conversation.objects.create(owner=owner, visitor=visitor, title="Waiting")
    Message.objects.create(conversation=conversation, role="assistant", status="pending")
    again = ask(Client(), publication, visitor)
    assert again.status_code == 429 and "earlier question" in again.json()["detail"]

    settings.TWIN_MAX_VISITOR_ANSWERS_IN_FLIGHT = 2
    settings.TWIN_MAX_VISITOR_ANSWERS_PER_TWIN = 2  # the site's share binds, not the twin's
    add_markdown_source(
        other, "sailing.md", "# Sailing\n\nI sail a small dinghy on the lake every Sunday."
    ).set_audience(True)
    other_publication = do_update_publication(do_ensure_publication(other), enabled=True)
    elsewhere = Conversation.objects.create(owner=other, visitor=new_visitor(), title="Waiting")
    Message.objects.create(conversation=elsewhere, role="assistant", status="pending")
    site_share_full = ask(Client(), other_publication, new_visitor(), origin=SITE)
    assert site_share_full.status_code == 503 and "busy answering other questions" in site_share_full.json()["detail"]


def test_a_visitors_answer_draws_only_on_shared_sources(owner, owner_source):
    """The honey is only in the owner's private source: a visitor's answer neither cites nor uses it."""
    add_markdown_source(owner, "garden.md", GARDEN_NOTES).set_audience(True)
    publication = do_update_publication(do_ensure_publication(owner), enabled=True)

    answer = wait_for_answer(do_visitor_ask(publication, new_visitor(), QUESTION))

    assert answer.conversation.visitor and answer.conversation.owner == owner
    assert {s["title"] for s in answer.sources} <= {"My allotment by the river"}
    assert "twelve kilograms" not in answer.content + str(answer.sources) + str(answer.grounding)
    tomatoes = wait_for_answer(do_visitor_ask(publication, new_visitor(), "When do your tomatoes ripen?"))
    assert tomatoes.sources and tomatoes.sources[0]["title"] == "My allotment by the river"

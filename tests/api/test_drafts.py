"""The drafts API: write, follow, read, edit (a correction), regenerate, export; answers revised."""

from chat.models import Draft, Message
from features.models import Correction


def test_post_a_brief_and_read_the_finished_draft(owner_api, owner_source):
    response = owner_api.post(
        "/api/v1/drafts/", {"brief": "why I keep bees on a roof", "format": "post", "length": "short"}, format="json"
    )

    assert response.status_code == 202
    body = response.json()
    assert body["status"] in ("pending", "running", "done") and body["format"] == "post"
    detail = owner_api.get(f"/api/v1/drafts/{body['id']}/").json()  # eager Celery: already written
    assert detail["status"] == "done" and detail["text"] and detail["text"] == detail["generated_text"]
    assert detail["alternatives"][0]["text"] == detail["text"] and isinstance(detail["specifics"], list)
    listed = owner_api.get("/api/v1/drafts/").json()["results"]
    assert [d["id"] for d in listed] == [body["id"]]


def test_edit_regenerate_and_export(owner_api, owner_source):
    draft_id = owner_api.post(
        "/api/v1/drafts/", {"brief": "linden trees", "format": "paragraph"}, format="json"
    ).json()["id"]
    edited = owner_api.patch(f"/api/v1/drafts/{draft_id}/", {"text": "Linden trees, my bees' July."}, format="json")
    assert edited.status_code == 200 and edited.json()["text"] == "Linden trees, my bees' July."
    assert Correction.objects.get().chosen == "Linden trees, my bees' July."

    export = owner_api.get(f"/api/v1/drafts/{draft_id}/export/")
    assert export.status_code == 200 and export["Content-Type"].startswith("text/markdown")
    assert export.content.decode() == "# linden trees\n\nLinden trees, my bees' July.\n"

    again = owner_api.post(f"/api/v1/drafts/{draft_id}/regenerate/")
    assert again.status_code == 202
    draft = Draft.objects.get(pk=draft_id)
    assert draft.status == "done" and draft.edited_at is None and draft.text == draft.generated_text
    assert draft.message.conversation.messages.filter(role="assistant").count() == 2  # the earlier text kept


def test_bad_briefs_get_a_400_and_store_nothing(owner_api, owner_source):
    for body in ({}, {"brief": ""}, {"brief": "x", "format": "sonnet"}, {"brief": "x", "alternatives": 9}, ["x"]):
        response = owner_api.post("/api/v1/drafts/", body, format="json")
        assert response.status_code == 400, body
    assert not Draft.objects.exists() and not Message.objects.exists()
    draft_id = owner_api.post("/api/v1/drafts/", {"brief": "bees"}, format="json").json()["id"]
    assert owner_api.patch(f"/api/v1/drafts/{draft_id}/", {"text": "  "}, format="json").status_code == 400
    assert not Correction.objects.exists()


def test_chat_mode_write_and_revising_an_answer(owner_api, owner_source):
    written = owner_api.post("/api/v1/chat/", {"message": "bees in winter", "mode": "write"}, format="json").json()
    assert written["mode"] == "write" and written["draft"] == Draft.objects.get().pk
    asked = owner_api.post("/api/v1/chat/", {"message": "Write about bees?", "mode": "ask"}, format="json").json()
    assert asked["mode"] == "ask" and asked["draft"] is None

    revised = owner_api.post(
        f"/api/v1/messages/{asked['message']['id']}/revise/", {"text": "Twelve kilograms."}, format="json"
    )
    assert revised.status_code == 200 and revised.json()["content"] == "Twelve kilograms."
    assert revised.json()["revised_from"] == asked["message"]["content"]
    assert Correction.objects.get().origin == "answer"

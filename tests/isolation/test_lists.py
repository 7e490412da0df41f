"""Lists never show another user's objects: every list page and list endpoint, seen by two users
who both have objects at every pipeline stage, shows each only their own."""

import pytest
from django.urls import reverse

from chat import audience
from features.models import Chunk, DatasetVersion
from tests.conftest import api_client_for

from .world import OPERA, VISITOR_ID, World

pytestmark = pytest.mark.django_db


def strangers_markers(world: World) -> list[str]:
    """What would give away one of the world's objects on someone else's page."""
    return [
        *(
            f'"{reverse(name, args=[getattr(world, attribute).pk])}"'
            for name, attribute in [
                ("source-detail", "source"),
                ("document-detail", "document"),
                ("document-chunks", "document"),
                ("dataset-detail", "dataset"),
                ("training-run", "run"),
                ("experiment", "experiment"),
                ("model-detail", "model_version"),
                ("conversation", "conversation"),
                ("chat-stream", "answer"),
                ("draft", "draft"),
                ("audience-conversation", "audience_conversation"),
                ("audience-conversation", "unanswered_conversation"),
                ("revoke-token", "token"),
            ]
        ),
        world.source.name,
        world.question,
        world.unanswered_question,
        world.token.key_prefix,
    ]


def pages_of(world: World) -> list[tuple[str, str]]:
    """Each list page, with one of the world's own objects that it must show."""
    href = lambda name, obj: f'"{reverse(name, args=[obj.pk])}"'  # noqa: E731
    return [
        ("/dashboard/", href("dataset-detail", world.dataset)),
        ("/sources/", href("source-detail", world.source)),
        ("/datasets/", href("dataset-detail", world.dataset)),
        ("/training/", href("model-detail", world.model_version)),
        ("/training/", href("experiment", world.experiment)),
        ("/chat/", href("conversation", world.conversation)),
        (reverse("conversation", args=[world.conversation.pk]), world.question),
        ("/account/tokens/", world.token.key_prefix),
        ("/drafts/", href("draft", world.draft)),
        ("/write/", href("draft", world.draft)),
        (reverse("draft", args=[world.draft.pk]), "The owner&#x27;s own version."),
        ("/search/?q=sailing+a+dinghy+and+keeping+bees", href("document-detail", world.document)),
        ("/audience/", href("audience-conversation", world.audience_conversation)),
        ("/audience/", href("audience-conversation", world.unanswered_conversation)),
        ("/audience/unanswered/", world.unanswered_question),
    ]


@pytest.fixture(params=["owner", "other"])
def viewer(request, owner_world, other_world):
    """(viewer, their world, the other world), both built: each user in turn looks at their own lists."""
    mine, theirs = (owner_world, other_world) if request.param == "owner" else (other_world, owner_world)
    return request.param, mine.build_all(), theirs.build_all()


def test_pages_never_show_another_users_objects(request, viewer):
    viewer, mine, theirs = viewer
    client = request.getfixturevalue(f"{viewer}_client")

    for path, own_marker in pages_of(mine):
        content = client.get(path).content.decode()
        assert own_marker in content, f"{path} does not show {viewer}'s own {own_marker}"
        for marker in strangers_markers(theirs):
            assert marker not in content, f"{path} shows another user's {marker}"


def test_api_lists_never_show_another_users_objects(request, viewer):
    viewer, mine, theirs = viewer
    client = request.getfixturevalue(f"{viewer}_api")

    def ids(path, key="id"):
        response = client.get(path)
        assert response.status_code == 200, path
        return [row[key] for row in response.json()["results"]]

    # The world's two sources: its private one and the one it shares with its audience (each with its dataset).
    shared = mine.shared_source
    assert sorted(ids("/api/v1/sources/")) == sorted([mine.source.pk, shared.pk])
    assert sorted(ids("/api/v1/documents/")) == sorted([mine.document.pk, shared.documents.get().pk])
    assert ids(f"/api/v1/documents/?source={theirs.source.pk}") == []
    instruct = set(DatasetVersion.objects.for_user(mine.user).filter(kind="instruct").values_list("pk", flat=True))
    assert mine.dataset.pk in instruct and set(ids("/api/v1/datasets/?kind=instruct")) == instruct
    assert set(ids("/api/v1/datasets/")) == instruct | {mine.preference_run.dataset_version_id}
    sweep = [run["id"] for run in client.get(f"/api/v1/experiments/{mine.experiment.pk}/").json()["runs"]]
    assert len(sweep) == 2
    assert sorted(ids("/api/v1/training-runs/")) == [mine.run.pk, *sweep]
    assert ids("/api/v1/models/")[-1] == mine.model_version.pk and len(ids("/api/v1/models/")) == 3
    assert ids("/api/v1/experiments/") == [mine.experiment.pk]
    assert sorted(ids("/api/v1/conversations/")) == [mine.conversation.pk, mine.draft.message.conversation_id]
    assert ids("/api/v1/drafts/") == [mine.draft.pk]
    assert sorted(ids("/api/v1/audience/conversations/")) == sorted(
        [mine.audience_conversation.pk, mine.unanswered_conversation.pk, mine.visitor_answer.conversation_id]
    )
    unanswered = ids("/api/v1/audience/unanswered/", key="name")  # the widget visitor's opera question too
    assert mine.unanswered_question in unanswered and set(unanswered) <= {mine.unanswered_question, OPERA}
    assert {m["name"] for m in client.get("/api/v1/audience/members/").json()["results"]} == {
        f"Visitor #{audience.visitor_tag(f'visitor-of-{mine.user.username}')[:6]}",
        f"Visitor #{audience.visitor_tag(VISITOR_ID)[:6]}",
        audience.member_name(mine.invited, ""),
    }
    found = set(ids("/api/v1/search/?q=sailing+a+dinghy+and+keeping+bees&k=50", key="chunk_id"))
    assert found and found <= set(Chunk.objects.for_user(mine.user).values_list("id", flat=True))


def test_staff_may_review_any_twins_model(owner_world, staff):
    response = api_client_for(staff).post(f"/api/v1/models/{owner_world.model_version.pk}/approve/")

    assert response.status_code == 200 and response.json()["status"] == "production"

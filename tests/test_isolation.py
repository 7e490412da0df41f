"""Tenant isolation, systematically: every page and endpoint, hit as the owner, another user and a stranger.

Every route that takes an object id (in the path or in the body) is a row of
OBJECT_ROUTES and is hit three ways: the owner reaches it, another signed-in
user gets 404 and changes nothing, an anonymous caller is sent to log in (pages)
or refused with 401/403 (API) and changes nothing. Routes without an id are rows
of COLLECTION_ROUTES (anonymous callers are refused) and list pages and endpoints
are checked to never show another user's objects.

A new route must get a row: the registered routes are compared with the rows,
minus an explicit list of public ones.
"""

from dataclasses import dataclass, field
from functools import cached_property
from types import SimpleNamespace

import pytest
from django.urls import URLResolver, get_resolver, resolve, reverse

from accounts.actions import do_issue_api_token
from accounts.models import ApiToken
from chat.actions import do_answer
from chat.models import Conversation, Message
from features.models import Chunk, DatasetVersion
from ingestion.models import CrawlRun, Document, Source
from tests.api.conftest import stub_evaluate, stub_train_lora
from tests.conftest import SAMPLE_MARKDOWN, add_markdown_source, api_client_for
from training.actions import do_start_training_run
from training.models import ModelVersion, TrainingRun

pytestmark = pytest.mark.django_db

SAILING_LOG = """# A season of sailing

## The boat

I sail a small dinghy on the lake every Sunday morning when the wind is light. The boat is eleven feet
long and I bought it second hand for four hundred euros from a retired teacher in the next village.

## Capsizing

I capsized twice in the first month and learned to right the boat from the water by standing on the
centreboard and leaning back until the mast comes up. Now I practise it every spring in warm shallow water.
"""

PUBLIC = {
    "home",
    "login",
    "logout",
    "signup",
    "api:token",  # exchanges a password for a token
    "api-schema",
    "api-docs",
}


class World:
    """One user's objects at every pipeline stage, built on first use through the real actions."""

    def __init__(self, user, filename, text, question):
        self.user, self.filename, self.text, self.question = user, filename, text, question

    @cached_property
    def source(self):
        return add_markdown_source(self.user, self.filename, self.text)

    @cached_property
    def document(self):
        return self.source.documents.get()

    @cached_property
    def dataset(self):
        return DatasetVersion.objects.for_user(self.source.owner).get()  # the source's pipeline builds it

    @cached_property
    def run(self):
        return do_start_training_run(self.user, self.dataset)

    @cached_property
    def model_version(self):
        return ModelVersion.objects.get(training_run=self.run)

    @cached_property
    def answer(self):
        return do_answer(self.source.owner, self.question)

    @cached_property
    def conversation(self):
        return self.answer.conversation

    @cached_property
    def token(self):
        return do_issue_api_token(self.user, f"{self.user.username}'s laptop")[0]

    def build_all(self):
        for name in ("source", "document", "dataset", "run", "model_version", "answer", "conversation", "token"):
            getattr(self, name)
        return self


@pytest.fixture(autouse=True)
def _quick_training(monkeypatch):
    monkeypatch.setattr("training.tasks.train_lora", stub_train_lora)
    monkeypatch.setattr("training.tasks.evaluate", stub_evaluate)


@pytest.fixture
def owner_world(owner):
    return World(owner, "bees.md", SAMPLE_MARKDOWN, "How much honey does a hive give in July?")


@pytest.fixture
def other_world(other):
    return World(other, "sailing.md", SAILING_LOG, "How long is your boat?")


@dataclass(frozen=True)
class Route:
    name: str  # "namespace:name" as registered
    method: str
    path: str  # with {object} placeholders filled from a World
    data: dict = field(default_factory=dict)
    expect: dict = field(default_factory=dict)  # role -> status, where a row differs from the rule

    @property
    def is_api(self) -> bool:
        return self.path.startswith(("/api/", "/v1/"))

    def __str__(self):
        return f"{self.method.upper()} {self.path}" + (f" {self.data}" if self.data else "")

    def fill(self, world: World) -> tuple[str, dict]:
        def value(template):
            if isinstance(template, str) and "{" in template:
                return template.format(**{key: getattr(world, key).pk for key in _placeholders(template)})
            return template

        return value(self.path), {key: value(item) for key, item in self.data.items()}


def _placeholders(template: str) -> list[str]:
    return [part.split("}", 1)[0] for part in template.split("{")[1:]]


STAFF_ONLY = {"owner": 403, "other": 403}

OBJECT_ROUTES = [
    # pages
    Route("source-detail", "get", "/sources/{source}/"),
    Route("source-progress", "get", "/sources/{source}/progress/"),
    Route("sync-source", "post", "/sources/{source}/sync/"),
    Route("cancel-sync", "post", "/sources/{source}/cancel/"),
    Route("reprocess-source", "post", "/sources/{source}/reprocess/"),
    Route("delete-source", "post", "/sources/{source}/delete/"),
    Route("document-detail", "get", "/documents/{document}/"),
    Route("document-chunks", "get", "/documents/{document}/chunks/"),
    Route("dataset-detail", "get", "/datasets/{dataset}/"),
    Route("dataset-download", "get", "/datasets/{dataset}/download/"),
    Route("training-run", "get", "/training/runs/{run}/"),
    Route("cancel-training", "post", "/training/runs/{run}/cancel/"),
    Route("retry-training", "post", "/training/runs/{run}/retry/"),
    Route("tune-training", "get", "/training/runs/{run}/hyperparameters/", expect=STAFF_ONLY),
    Route("model-detail", "get", "/models/{model_version}/"),
    Route("conversation", "get", "/chat/{conversation}/"),
    Route("chat-send", "post", "/chat/send/", {"message": "And in winter?", "conversation": "{conversation}"}),
    Route("chat-stream", "get", "/chat/messages/{answer}/stream/"),
    Route("revoke-token", "post", "/account/tokens/{token}/revoke/"),
    # API
    Route("api:source-detail", "get", "/api/v1/sources/{source}/"),
    Route("api:source-detail", "get", "/api/v1/sources/{source}.json"),  # format suffixes: the same views
    Route("api:source-detail", "delete", "/api/v1/sources/{source}/"),
    Route("api:source-sync", "post", "/api/v1/sources/{source}/sync/"),
    Route("api:source-cancel", "post", "/api/v1/sources/{source}/cancel/", expect={"owner": 409}),
    Route("api:source-reprocess", "post", "/api/v1/sources/{source}/reprocess/"),
    Route("api:document-detail", "get", "/api/v1/documents/{document}/"),
    Route("api:dataset-detail", "get", "/api/v1/datasets/{dataset}/"),
    Route("api:training-run-detail", "get", "/api/v1/training-runs/{run}/"),
    Route("api:training-run-list", "post", "/api/v1/training-runs/", {"dataset_version": "{dataset}"}),
    Route(
        "api:training-run-hyperparameters",
        "patch",
        "/api/v1/training-runs/{run}/hyperparameters/",
        {"hyperparameters": {"seed": 7}},
        expect=STAFF_ONLY,
    ),
    Route("api:model-version-detail", "get", "/api/v1/models/{model_version}/"),
    Route("api:model-version-approve", "post", "/api/v1/models/{model_version}/approve/", expect=STAFF_ONLY),
    Route("api:model-version-reject", "post", "/api/v1/models/{model_version}/reject/", expect=STAFF_ONLY),
    Route("api:model-version-rollback", "post", "/api/v1/models/{model_version}/rollback/", expect=STAFF_ONLY),
    Route("api:model-version-export", "get", "/api/v1/models/{model_version}/export/"),
    Route("api:conversation-detail", "get", "/api/v1/conversations/{conversation}/"),
    Route("api:chat", "post", "/api/v1/chat/", {"message": "And in winter?", "conversation": "{conversation}"}),
    Route("api:api-token-detail", "get", "/api/v1/auth/tokens/{token}/"),
    Route("api:api-token-revoke", "post", "/api/v1/auth/tokens/{token}/revoke/"),
]

COLLECTION_ROUTES = [
    # pages
    Route("dashboard", "get", "/dashboard/"),
    Route("tokens", "get", "/account/tokens/"),
    Route("tokens", "post", "/account/tokens/", {"name": "sneaky"}),
    Route("twin-settings", "get", "/account/twin/"),
    Route("delete-account", "get", "/account/delete/"),
    Route("delete-account", "post", "/account/delete/", {"password": "correct horse battery"}),
    Route("sources", "get", "/sources/"),
    Route("add-source", "post", "/sources/add/upload/", {"category": "article"}),
    Route("add-source", "post", "/sources/add/article/", {"url": "https://example.com/", "category": "article"}),
    Route("datasets", "get", "/datasets/"),
    Route("search", "get", "/search/", {"q": "honey"}),
    Route("training", "get", "/training/"),
    Route("start-training", "post", "/training/runs/start/"),
    Route("chat", "get", "/chat/"),
    Route("chat-send", "post", "/chat/send/", {"message": "Hello?"}),
    # API
    Route("api:api-root", "get", "/api/v1/"),
    Route("api:source-list", "get", "/api/v1/sources/"),
    Route("api:source-list", "post", "/api/v1/sources/", {"url": "https://example.com/"}),
    Route("api:document-list", "get", "/api/v1/documents/"),
    Route("api:dataset-list", "get", "/api/v1/datasets/"),
    Route("api:training-run-list", "get", "/api/v1/training-runs/"),
    Route("api:training-run-list", "post", "/api/v1/training-runs/"),
    Route("api:model-version-list", "get", "/api/v1/models/"),
    Route("api:conversation-list", "get", "/api/v1/conversations/"),
    Route("api:api-token-list", "get", "/api/v1/auth/tokens/"),
    Route("api:account-delete", "post", "/api/v1/account/delete/", {"password": "correct horse battery"}),
    Route("api:search", "get", "/api/v1/search/", {"q": "honey"}),
    Route("api:chat", "post", "/api/v1/chat/", {"message": "Hello?"}),
    Route("openai-chat-completions", "post", "/v1/chat/completions", {"messages": [{"role": "user", "content": "Hi"}]}),
]


def registered_route_names() -> set[str]:
    """Every named route in twinsite/urls.py and the apps' urls.py, as "namespace:name" (admin aside)."""

    def walk(patterns, namespace):
        for pattern in patterns:
            if isinstance(pattern, URLResolver):
                if pattern.namespace != "admin":
                    yield from walk(pattern.url_patterns, pattern.namespace or namespace)
            elif pattern.name:
                yield f"{namespace}:{pattern.name}" if namespace else pattern.name

    return set(walk(get_resolver().url_patterns, None))


class AnyIds:
    """Stands in for a World where only the shape of a path or body matters: every object has this id."""

    def __init__(self, pk=7):
        self.pk = pk

    def __getattr__(self, name):
        return SimpleNamespace(pk=self.pk)


def hit(client, route: Route, world: World | None):
    path, data = route.fill(world)
    if route.is_api and route.method != "get":
        return getattr(client, route.method)(path, data, format="json")
    return getattr(client, route.method)(path, data)


def owned_rows(user) -> dict:
    """Everything the user owns, as stored: what a refused request must leave untouched."""
    return {
        model.__name__: list(model.objects.filter(**{lookup: user}).order_by("pk").values())
        for model, lookup in [
            (Source, "owner"),
            (CrawlRun, "owner"),
            (Document, "owner"),
            (DatasetVersion, "owner"),
            (TrainingRun, "owner"),
            (ModelVersion, "owner"),
            (Conversation, "owner"),
            (Message, "conversation__owner"),
            (ApiToken, "owner"),
        ]
    }


def client_for(request, role: str, route: Route):
    prefix = {"owner": "owner", "other": "other", "anonymous": "anon"}[role]
    return request.getfixturevalue(f"{prefix}_{'api' if route.is_api else 'client'}")


def assert_sent_to_login(response, route):
    if route.is_api:
        assert response.status_code in (401, 403), f"{route}: {response.status_code}"
    else:
        assert response.status_code == 302, f"{route}: {response.status_code}"
        assert response["Location"].startswith(reverse("login") + "?next="), response["Location"]


def close(response):
    """Read a streamed body to its end, as a client would; the test client then closes it."""
    if response.streaming:
        b"".join(response.streaming_content)


def test_every_registered_route_has_a_row_or_is_public():
    covered = {route.name for route in OBJECT_ROUTES + COLLECTION_ROUTES}

    assert covered | PUBLIC == registered_route_names()
    assert not covered & PUBLIC


@pytest.mark.parametrize("route", OBJECT_ROUTES + COLLECTION_ROUTES, ids=str)
def test_every_row_resolves_to_its_route(route):
    path, _ = route.fill(AnyIds())

    assert resolve(path).view_name == route.name


@pytest.mark.parametrize("route", OBJECT_ROUTES, ids=str)
def test_only_the_owner_reaches_an_object(request, route, owner_world):
    route.fill(owner_world)  # builds the owner's object (and what it is made from) before the snapshot
    before = owned_rows(owner_world.user)

    response = hit(client_for(request, "other", route), route, owner_world)
    close(response)
    assert response.status_code == route.expect.get("other", 404), f"another user: {route}"
    assert owned_rows(owner_world.user) == before, f"another user changed the owner's data: {route}"

    response = hit(client_for(request, "anonymous", route), route, owner_world)
    close(response)
    assert_sent_to_login(response, route)
    assert owned_rows(owner_world.user) == before, f"an anonymous caller changed the owner's data: {route}"

    response = hit(client_for(request, "owner", route), route, owner_world)
    close(response)
    if "owner" in route.expect:
        assert response.status_code == route.expect["owner"], f"owner: {route}"
    else:
        assert response.status_code in (200, 201, 202, 204, 302), f"owner: {route}: {response.status_code}"
        assert not response.get("Location", "").startswith(reverse("login")), f"owner: {route}"


@pytest.mark.parametrize("route", OBJECT_ROUTES, ids=str)
def test_a_malformed_id_is_refused_not_a_server_error(request, route, staff):
    client = api_client_for(staff) if route.expect else client_for(request, "owner", route)

    response = hit(client, route, AnyIds("abc"))

    assert response.status_code in (400, 404), f"{route}: {response.status_code}"


READABLE = {route.name for route in OBJECT_ROUTES + COLLECTION_ROUTES if route.method == "get"}
WRITE_ONLY_ROUTES = list({r.path: r for r in OBJECT_ROUTES + COLLECTION_ROUTES if r.name not in READABLE}.values())


@pytest.mark.parametrize("route", WRITE_ONLY_ROUTES, ids=str)
def test_a_write_only_route_refuses_get(request, route, staff):
    client = api_client_for(staff) if route.expect else client_for(request, "owner", route)
    path, _ = route.fill(AnyIds())

    assert client.get(path).status_code == 405, str(route)


@pytest.mark.parametrize("route", COLLECTION_ROUTES, ids=str)
def test_an_anonymous_caller_reaches_no_list_and_creates_nothing(request, route):
    counts = {model: model.objects.count() for model in (Source, TrainingRun, Conversation, Message, ApiToken)}

    response = hit(client_for(request, "anonymous", route), route, None)
    close(response)

    assert_sent_to_login(response, route)
    assert {model: model.objects.count() for model in counts} == counts


@pytest.mark.parametrize(
    "path", ["/admin/", "/admin/chat/prompttrace/", "/admin/ingestion/document/", "/admin/accounts/apitoken/"]
)
@pytest.mark.parametrize("role", ["owner", "anonymous"])
def test_the_admin_is_for_staff_only(request, role, path):
    client = request.getfixturevalue("owner_client" if role == "owner" else "anon_client")

    response = client.get(path)

    assert response.status_code == 302 and response["Location"].startswith("/admin/login/")


def test_staff_may_review_any_twins_model(owner_world, staff):
    response = api_client_for(staff).post(f"/api/v1/models/{owner_world.model_version.pk}/approve/")

    assert response.status_code == 200 and response.json()["status"] == "production"


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
                ("model-detail", "model_version"),
                ("conversation", "conversation"),
                ("chat-stream", "answer"),
                ("revoke-token", "token"),
            ]
        ),
        world.source.name,
        world.question,
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
        ("/chat/", href("conversation", world.conversation)),
        (reverse("conversation", args=[world.conversation.pk]), world.question),
        ("/account/tokens/", world.token.key_prefix),
        ("/search/?q=sailing+a+dinghy+and+keeping+bees", href("document-detail", world.document)),
    ]


@pytest.mark.parametrize("viewer", ["owner", "other"])
def test_pages_never_show_another_users_objects(request, viewer, owner_world, other_world):
    mine, theirs = (owner_world, other_world) if viewer == "owner" else (other_world, owner_world)
    mine.build_all()
    theirs.build_all()
    client = request.getfixturevalue(f"{viewer}_client")

    for path, own_marker in pages_of(mine):
        content = client.get(path).content.decode()
        assert own_marker in content, f"{path} does not show {viewer}'s own {own_marker}"
        for marker in strangers_markers(theirs):
            assert marker not in content, f"{path} shows another user's {marker}"


@pytest.mark.parametrize("viewer", ["owner", "other"])
def test_api_lists_never_show_another_users_objects(request, viewer, owner_world, other_world):
    mine, theirs = (owner_world, other_world) if viewer == "owner" else (other_world, owner_world)
    mine.build_all()
    theirs.build_all()
    client = request.getfixturevalue(f"{viewer}_api")

    def ids(path, key="id"):
        response = client.get(path)
        assert response.status_code == 200, path
        return [row[key] for row in response.json()["results"]]

    assert ids("/api/v1/sources/") == [mine.source.pk]
    assert ids("/api/v1/documents/") == [mine.document.pk]
    assert ids(f"/api/v1/documents/?source={theirs.source.pk}") == []
    assert ids("/api/v1/datasets/") == [mine.dataset.pk]
    assert ids("/api/v1/training-runs/") == [mine.run.pk]
    assert ids("/api/v1/models/") == [mine.model_version.pk]
    assert ids("/api/v1/conversations/") == [mine.conversation.pk]
    found = set(ids("/api/v1/search/?q=sailing+a+dinghy+and+keeping+bees&k=50", key="chunk_id"))
    assert found and found <= set(Chunk.objects.for_user(mine.user).values_list("id", flat=True))

"""The REST API fuzzed from its own OpenAPI schema (schemathesis): no operation answers 5xx.

Every operation in /api/schema/ is called with generated bodies and query strings (valid and
invalid), by a caller who gets past its checks to its logic: the owner of a twin with data at
every pipeline stage (a source, its document, datasets, a training run and its model version, a
sweep, a conversation), and staff for the staff operations (approve, reject, roll back, tune, sweep).
Path ids are those of the owner's real rows: a random id would answer 404 before any logic ran
(tests/isolation covers other users' and malformed ids).
CI runs a bounded number of examples per operation; `make fuzz` (part of `make bench`)
runs many more with TWIN_FUZZ_EXAMPLES.
"""

import os
from functools import cache
from types import SimpleNamespace

import pytest
import schemathesis
from django.core import signals
from django.db import close_old_connections
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error

from accounts.actions import do_issue_api_token
from tests.conftest import SAMPLE_MARKDOWN, add_markdown_source
from tests.isolation.world import World
from twinsite.wsgi import application

EXAMPLES = int(os.environ.get("TWIN_FUZZ_EXAMPLES", "8"))
STAFF_OPERATIONS = {
    ("POST", "/api/v1/models/{id}/approve/"),
    ("POST", "/api/v1/models/{id}/reject/"),
    ("POST", "/api/v1/models/{id}/rollback/"),
    ("PATCH", "/api/v1/training-runs/{id}/hyperparameters/"),
    ("POST", "/api/v1/experiments/"),  # a sweep of staff's own twin
}
# The row of the World whose id each collection's {id} takes. The token is a spare one of the
# owner's: revoking the fuzzer's own would answer 401 to every later example.
PATH_IDS = {
    "/api/v1/audience/conversations/": "audience_conversation",
    "/api/v1/auth/tokens/": "token",
    "/api/v1/conversations/": "conversation",
    "/api/v1/datasets/": "dataset",
    "/api/v1/documents/": "document",
    "/api/v1/drafts/": "draft",
    "/api/v1/experiments/": "experiment",
    "/api/v1/models/": "model_version",
    "/api/v1/sharing/groups/": "group",
    "/api/v1/sharing/invitations/": "invitation",
    "/api/v1/sharing/sources/": "shared_source",
    "/api/v1/sources/": "source",
    "/api/v1/training-runs/": "run",
}


# Read from the WSGI app once, at collection: one test per operation.
schema = schemathesis.openapi.from_wsgi("/api/schema/?format=json", application)


def real_id(path: str) -> str:
    collection = path.split("{id}")[0]
    assert collection in PATH_IDS, f"{path}: which row's id does it take? (PATH_IDS)"
    return PATH_IDS[collection]


@pytest.fixture
def keep_connection(db):
    """Like Django's test client, keep the test's database connection open across requests
    (its transaction holds the fixtures); a real request cycle would close it."""
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    yield
    signals.request_started.connect(close_old_connections)
    signals.request_finished.connect(close_old_connections)


@pytest.fixture
def fuzz(keep_connection, owner, staff, stub_training):
    """The owner's twin at every pipeline stage, and full-access tokens of the owner and of staff.
    (Training runs are started for real, with the LoRA step stubbed: this is about the API.)"""
    world = World(owner, "bees.md", SAMPLE_MARKDOWN, "How much honey does a hive give in July?").build_all()
    tokens = {user: do_issue_api_token(user, "fuzzer")[1] for user in (owner, staff)}

    @cache
    def staff_twin():  # staff sweep their own twin: it needs a dataset to get past the first check
        return add_markdown_source(staff, "staff.md", SAMPLE_MARKDOWN)

    return SimpleNamespace(world=world, owner=owner, staff=staff, tokens=tokens, staff_twin=staff_twin)


def test_every_path_id_and_staff_operation_is_known():
    operations = {(op.method.upper(), op.path) for op in (result.ok() for result in schema.get_all_operations())}
    assert STAFF_OPERATIONS <= operations
    for _, path in operations:
        if "{id}" in path:
            real_id(path)


@schema.parametrize()
@settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,
    derandomize=EXAMPLES <= 8,  # CI: the same examples every run
    suppress_health_check=list(HealthCheck),
)
def test_no_operation_answers_with_a_server_error(case, fuzz):
    operation = (case.operation.method.upper(), case.operation.path)
    caller = fuzz.staff if operation in STAFF_OPERATIONS else fuzz.owner
    if operation == ("POST", "/api/v1/experiments/"):
        fuzz.staff_twin()
    if "{id}" in case.operation.path:
        case.path_parameters = {"id": getattr(fuzz.world, real_id(case.operation.path)).pk}
    if "{message_id}" in case.operation.path:  # revising an answer: the world's own answer
        case.path_parameters = {"message_id": fuzz.world.answer.pk}
    case.call_and_validate(headers={"Authorization": f"Bearer {fuzz.tokens[caller]}"}, checks=[not_a_server_error])

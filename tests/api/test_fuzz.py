"""The REST API fuzzed from its own OpenAPI schema (schemathesis): no operation answers 5xx.

Every operation in /api/schema/ is called with generated bodies, paths and query
strings (valid and invalid), as a signed-in owner with data at every pipeline stage.
CI runs a bounded number of examples per operation; `make fuzz` (part of `make bench`)
runs many more with TWIN_FUZZ_EXAMPLES.
"""

import os

import pytest
import schemathesis
from django.core import signals
from django.db import close_old_connections
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error

from accounts.actions import do_issue_api_token
from twinsite.wsgi import application

EXAMPLES = int(os.environ.get("TWIN_FUZZ_EXAMPLES", "8"))


# Read from the WSGI app once, at collection: one test per operation.
schema = schemathesis.openapi.from_wsgi("/api/schema/?format=json", application)


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
def fuzz_headers(keep_connection, owner, owner_source, stub_training):
    """A full-access token of a user with a source, its documents, chunks and dataset.
    (Training runs are started for real, with the LoRA step stubbed: this is about the API.)"""
    _, raw = do_issue_api_token(owner, "fuzzer")
    return {"Authorization": f"Bearer {raw}"}


@schema.parametrize()
@settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,
    derandomize=EXAMPLES <= 8,  # CI: the same examples every run
    suppress_health_check=list(HealthCheck),
)
def test_no_operation_answers_with_a_server_error(case, fuzz_headers):
    case.call_and_validate(headers=fuzz_headers, checks=[not_a_server_error])

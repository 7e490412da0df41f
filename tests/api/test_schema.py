"""/api/schema/: the OpenAPI description of every public endpoint, and the docs page."""

import pytest

pytestmark = pytest.mark.django_db

ENDPOINTS = {
    "/api/v1/auth/token/": {"post"},
    "/api/v1/auth/tokens/": {"get"},
    "/api/v1/auth/tokens/{id}/": {"get"},
    "/api/v1/auth/tokens/{id}/revoke/": {"post"},
    "/api/v1/account/delete/": {"post"},
    "/api/v1/sources/": {"get", "post"},
    "/api/v1/sources/{id}/": {"get", "delete"},
    "/api/v1/sources/{id}/sync/": {"post"},
    "/api/v1/sources/{id}/cancel/": {"post"},
    "/api/v1/sources/{id}/reprocess/": {"post"},
    "/api/v1/documents/": {"get"},
    "/api/v1/documents/{id}/": {"get"},
    "/api/v1/search/": {"get"},
    "/api/v1/datasets/": {"get"},
    "/api/v1/datasets/{id}/": {"get"},
    "/api/v1/datasets/{id}/preference/": {"get", "post"},
    "/api/v1/training-runs/": {"get", "post"},
    "/api/v1/training-runs/{id}/": {"get"},
    "/api/v1/training-runs/{id}/hyperparameters/": {"patch"},
    "/api/v1/experiments/": {"get", "post"},
    "/api/v1/experiments/{id}/": {"get"},
    "/api/v1/models/": {"get"},
    "/api/v1/models/{id}/": {"get"},
    "/api/v1/models/{id}/approve/": {"post"},
    "/api/v1/models/{id}/reject/": {"post"},
    "/api/v1/models/{id}/rollback/": {"post"},
    "/api/v1/models/{id}/export/": {"get"},
    "/api/v1/chat/": {"post"},
    "/api/v1/conversations/": {"get"},
    "/api/v1/conversations/{id}/": {"get"},
    "/v1/chat/completions": {"post"},
    "/api/v1/drafts/": {"get", "post"},
    "/api/v1/drafts/{id}/": {"get", "patch", "delete"},
    "/api/v1/drafts/{id}/regenerate/": {"post"},
    "/api/v1/drafts/{id}/export/": {"get"},
    "/api/v1/messages/{message_id}/revise/": {"post"},
    "/api/v1/sharing/publication/": {"get", "put", "patch"},
    "/api/v1/sharing/publication/rotate-key/": {"post"},
    "/api/v1/training-runs/refine/": {"post"},
    "/api/v1/sharing/invitations/": {"get", "post"},
    "/api/v1/sharing/invitations/{id}/": {"get", "patch"},
    "/api/v1/sharing/invitations/{id}/revoke/": {"post"},
    "/api/v1/sharing/groups/": {"get", "post"},
    "/api/v1/sharing/groups/{id}/": {"get", "patch", "delete"},
    "/api/v1/sharing/groups/{id}/revoke/": {"post"},
    "/api/v1/sharing/sources/": {"get"},
    "/api/v1/sharing/sources/{id}/": {"get", "patch"},
    "/api/v1/audience/members/": {"get"},
    "/api/v1/audience/conversations/": {"get"},
    "/api/v1/audience/conversations/{id}/": {"get"},
    "/api/v1/audience/revisions/": {"get", "post"},
    "/api/v1/audience/unanswered/": {"get"},
}


@pytest.fixture
def schema(anon_client):
    response = anon_client.get("/api/schema/", {"format": "json"})
    assert response.status_code == 200
    return response.json()


def test_the_schema_is_openapi_3(schema):
    assert schema["openapi"].startswith("3.")
    assert schema["info"]["title"] == "Twinsite API"


def test_the_schema_lists_every_endpoint_with_its_methods(schema):
    documented = {path: set(operations) - {"parameters"} for path, operations in schema["paths"].items()}

    assert documented == ENDPOINTS


def test_the_schema_says_how_to_ask_a_shared_twin(schema):
    assert "twin" in schema["components"]["schemas"]["ChatRequest"]["properties"]
    assert "twin" in {p["name"] for p in schema["paths"]["/api/v1/conversations/"]["get"]["parameters"]}


def test_the_schema_declares_bearer_token_auth(schema):
    assert schema["components"]["securitySchemes"]["bearerAuth"] == {
        "type": "http",
        "scheme": "bearer",
        "description": "A Twinsite API token (tw_...).",
    }


def test_the_search_query_is_documented_as_required(schema):
    parameters = {p["name"]: p for p in schema["paths"]["/api/v1/search/"]["get"]["parameters"]}

    assert parameters["q"]["required"] is True and "k" in parameters


def test_the_schema_is_served_as_yaml_by_default(anon_client):
    response = anon_client.get("/api/schema/")

    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/vnd.oai.openapi")
    assert b"/api/v1/sources/" in response.content


def test_the_docs_page_renders_offline(anon_client):
    response = anon_client.get("/api/docs/")

    assert response.status_code == 200
    assert b"swagger-ui" in response.content and b"/api/schema/" in response.content
    assert b"cdn.jsdelivr" not in response.content


def test_the_audience_endpoints_are_described(schema):
    paths = schema["paths"]
    members = paths["/api/v1/audience/members/"]["get"]["responses"]["200"]["content"]["application/json"]
    listed = paths["/api/v1/audience/conversations/"]["get"]["parameters"]

    assert "member" in {p["name"] for p in listed}
    assert members["schema"]["$ref"].endswith("PaginatedMemberList")
    assert "201" in paths["/api/v1/audience/revisions/"]["post"]["responses"]

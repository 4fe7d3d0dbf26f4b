"""One shape for each thing in the public surface (issue 18 item 5): the routes Flask serves
are the operations the OpenAPI document lists, and each says truly whether it needs a token."""

from __future__ import annotations

import re

import pytest

from api.auth import PUBLIC_ENDPOINTS
from tests.api.helpers import BASE

IGNORED_METHODS = {"HEAD", "OPTIONS"}  # Flask answers them for every route by itself


def flask_operations(app) -> dict[tuple[str, str], str]:
    """(method, path in OpenAPI's spelling) -> endpoint, for every rule of the url_map."""
    operations = {}
    for rule in app.url_map.iter_rules():
        path = re.sub(r"<(?:[^<>:]+:)?([^<>]+)>", r"{\1}", rule.rule)  # <int:id> -> {id}
        for method in rule.methods - IGNORED_METHODS:
            operations[(method.lower(), path)] = rule.endpoint
    return operations


def document_operations(doc: dict) -> dict[tuple[str, str], str]:
    return {
        (method, path): operation["operationId"]
        for path, methods in doc["paths"].items()
        for method, operation in methods.items()
    }


def test_flask_routes_and_the_openapi_document_list_the_same_operations(app, client):
    doc = client.get(f"{BASE}/openapi.json").get_json()
    assert document_operations(doc) == flask_operations(app)


def test_the_document_holds_the_page_its_files_and_the_metrics(client):
    """Decided: the page is in the document. API.md says ``/openapi.json`` describes every
    route of API.md, and ``GET /`` is one; its files (``/static``) are routes of the same
    server, so they are in it too, and "the same operations" has no exception."""
    paths = client.get(f"{BASE}/openapi.json").get_json()["paths"]
    assert "text/html" in paths["/"]["get"]["responses"]["200"]["content"]
    assert "/static/{filename}" in paths
    assert "text/plain" in paths["/metrics"]["get"]["responses"]["200"]["content"]
    assert "security" in paths["/metrics"]["get"]  # a token when auth is on


def test_every_429_and_413_in_the_document_has_its_one_details_shape(client):
    doc = client.get(f"{BASE}/openapi.json").get_json()
    refs = {
        status: {
            answer["content"]["application/json"]["schema"]["$ref"]
            for methods in doc["paths"].values()
            for operation in methods.values()
            for code, answer in operation["responses"].items()
            if code == status
        }
        for status in ("413", "429")
    }
    assert refs == {
        "413": {"#/components/schemas/PayloadTooLargeResponse"},
        "429": {"#/components/schemas/RateLimitedResponse"},
    }


def example_url(path: str) -> str:
    return path.replace("{job_id}", "no-such-job").replace("{script_id}", "1").replace(
        "{filename}", "page.css"
    )  # fmt: skip


class TestWithAuth:
    @pytest.fixture
    def settings(self, settings):
        return settings.with_overrides(auth="required")

    def test_an_operation_without_security_needs_no_token_and_the_others_do(self, client):
        doc = client.get(f"{BASE}/openapi.json").get_json()
        public = set()
        for path, methods in doc["paths"].items():
            for method, operation in methods.items():
                response = getattr(client, method)(example_url(path), json={})
                response.close()  # a static file's answer holds the file open
                if "security" in operation:
                    assert response.status_code == 401, (method, path)
                    assert response.get_json()["error"]["type"] == "Unauthorized"
                else:
                    assert response.status_code != 401, (method, path)
                    public.add(operation["operationId"])
        assert public == PUBLIC_ENDPOINTS

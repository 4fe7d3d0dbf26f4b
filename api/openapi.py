"""The OpenAPI 3 document, generated from the same models that validate requests.

It lists every route the app serves, once (``tests/api/test_public_surface.py`` compares it
with Flask's url_map): API.md's routes, ``/metrics`` and the page with its files. The answers
every route shares are added here from what the app does, not written per route: 401 and 503
(the token's look-up) unless the route is public (``api.auth.PUBLIC_ENDPOINTS``), 429 unless
it is exempt from the rate limits (``api.limits.EXEMPT``), 400/413/415 with a body, 400 with a
query.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from api import schemas as s
from api.auth import PUBLIC_ENDPOINTS
from api.limits import EXEMPT

PREFIX = "/api/custom-calculations"

# A response: a model (a JSON body), a media type (a body of another kind), or None (no body
# described: a 204, or static files of many types).
Answer = type[BaseModel] | str | None


@dataclass(frozen=True)
class Route:
    method: str
    path: str  # under PREFIX, unless ``root``
    endpoint: str  # Flask's endpoint: the operationId, and whether it is public or limited
    summary: str
    responses: dict[int, Answer]
    body: type[BaseModel] | None = None
    query: type[BaseModel] | None = None
    headers: tuple[str, ...] = ()
    root: bool = False  # outside the prefix (the page, /metrics)

    @property
    def url(self) -> str:
        return self.path if self.root else PREFIX + self.path


_E = s.ErrorResponse
SUBMITTED: dict[int, Answer] = {200: s.JobResponse, 202: s.JobResponse, 404: _E, 409: _E}
CSV: dict[int, Answer] = {200: "text/csv", 404: _E, 409: _E}
ROUTES: tuple[Route, ...] = (
    Route(
        "post",
        "/execute",
        "execute.execute",
        "Queue a script over symbols",
        SUBMITTED,
        body=s.ExecuteRequest,
        headers=("Idempotency-Key",),
    ),
    Route(
        "post",
        "/evaluate",
        "evaluate.evaluate",
        "Evaluate a signal over history (a script at many past dates, against forward returns)",
        SUBMITTED,
        body=s.EvaluateRequest,
        headers=("Idempotency-Key",),
    ),
    Route(
        "get",
        "/jobs/{job_id}/results.csv",
        "exports.results",
        "A finished execute job's results as CSV (streamed)",
        CSV,
    ),
    Route(
        "get",
        "/jobs/{job_id}/panel.csv",
        "exports.panel",
        "A finished evaluation's panel as CSV (streamed)",
        CSV,
    ),
    Route(
        "post",
        "/validate",
        "execute.validate",
        "Compile code without saving or running it",
        {200: s.ValidResponse},
        body=s.ValidateRequest,
    ),
    Route(
        "get",
        "/jobs",
        "jobs.list_jobs",
        "The caller's recent jobs",
        {200: s.JobList},
        query=s.JobListQuery,
    ),
    Route(
        "get",
        "/jobs/{job_id}",
        "jobs.get_job",
        "A job",
        {200: s.JobResponse, 404: _E},
    ),
    Route(
        "delete",
        "/jobs/{job_id}",
        "jobs.cancel_job",
        "Cancel a job",
        {200: s.JobResponse, 404: _E},
    ),
    Route(
        "post",
        "/scripts",
        "scripts.create",
        "Save a script",
        {201: s.ScriptResponse, 409: _E},
        body=s.ScriptBody,
    ),
    Route(
        "get",
        "/scripts",
        "scripts.index",
        "The caller's scripts, newest first",
        {200: s.ScriptList},
        query=s.ScriptListQuery,
    ),
    Route(
        "get",
        "/scripts/{script_id}",
        "scripts.show",
        "A script",
        {200: s.ScriptResponse, 404: _E},
    ),
    Route(
        "put",
        "/scripts/{script_id}",
        "scripts.replace",
        "Replace a script",
        {200: s.ScriptResponse, 404: _E, 409: _E},
        body=s.ScriptBody,
    ),
    Route(
        "delete",
        "/scripts/{script_id}",
        "scripts.delete",
        "Delete a script",
        {204: None, 404: _E},
    ),
    Route(
        "get",
        "/scripts/{script_id}/results",
        "scripts.results",
        "The newest finished run of a script",
        {200: s.ScriptRunResponse, 404: _E},
    ),
    Route(
        "get",
        "/universe",
        "universe.universe",
        "The symbols with market data, their sectors, the data's date range",
        {200: s.UniverseResponse},
    ),
    Route(
        "get",
        "/health",
        "health.health",
        "Database, Redis and workers",
        {200: s.HealthResponse, 503: s.HealthResponse},
    ),
    Route("get", "/openapi.json", "openapi.openapi", "This document", {200: "application/json"}),
    Route(
        "get",
        "/metrics",
        "metrics.metrics",
        "Prometheus metrics of the API (with auth on, any API token: README, Operations)",
        {200: "text/plain"},
        root=True,
    ),
    Route(
        "get",
        "/",
        "page.index",
        "The analysts' page (API.md, The playground)",
        {200: "text/html"},
        root=True,
    ),
    Route(
        "get",
        "/static/{filename}",
        "page.static",
        "The page's own scripts, styles and editor",
        {200: None, 404: _E},
        root=True,
    ),
)


def answers(route: Route) -> dict[int, Answer]:
    """The route's own answers and those it shares with others (the module's docstring)."""
    shared: dict[int, Answer] = {}
    if route.body is not None:
        shared |= {400: _E, 413: s.PayloadTooLargeResponse, 415: _E}
    if route.query is not None:
        shared[400] = _E
    if route.endpoint not in PUBLIC_ENDPOINTS:
        shared |= {401: _E, 503: _E}
    if route.endpoint not in EXEMPT:
        shared[429] = s.RateLimitedResponse
    return dict(sorted((shared | route.responses).items()))


def build_document() -> dict[str, Any]:
    models = {s.ErrorResponse, s.HealthResponse}
    for route in ROUTES:
        models.update(m for m in answers(route).values() if isinstance(m, type))
        if route.body is not None:
            models.add(route.body)
    keyed = [(m, "validation" if _is_request(m) else "serialization") for m in models]
    _, defs = models_json_schema(keyed, ref_template="#/components/schemas/{model}")
    paths: dict[str, Any] = {}
    for route in ROUTES:
        paths.setdefault(route.url, {})[route.method] = _operation(route)
    return {
        "openapi": "3.1.0",
        "info": {"title": "Custom calculation service", "version": "1.0.0"},
        "paths": paths,
        "components": {
            "schemas": defs.get("$defs", {}),
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
    }


def _is_request(model: type[BaseModel]) -> bool:
    return model in {r.body for r in ROUTES}


def _operation(route: Route) -> dict[str, Any]:
    op: dict[str, Any] = {"operationId": route.endpoint, "summary": route.summary}
    params: list[dict[str, Any]] = []
    for name in re.findall(r"\{(\w+)\}", route.path):
        kind = {"type": "integer", "minimum": 0} if name == "script_id" else {"type": "string"}
        params.append({"name": name, "in": "path", "required": True, "schema": kind})
    if route.query is not None:
        schema = route.query.model_json_schema()
        for name, prop in schema.get("properties", {}).items():
            params.append({"name": name, "in": "query", "required": False, "schema": prop})
    for name in route.headers:
        params.append(
            {
                "name": name,
                "in": "header",
                "required": False,
                "schema": {"type": "string", "minLength": 1, "maxLength": 100},
            }
        )
    if params:
        op["parameters"] = params
    if route.body is not None:
        op["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": _ref(route.body)}},
        }
    op["responses"] = {str(status): _response(status, a) for status, a in answers(route).items()}
    if route.endpoint not in PUBLIC_ENDPOINTS:
        op["security"] = [{"bearer": []}, {}]  # a token when CALC_AUTH=required
    return op


def _response(status: int, answer: Answer) -> dict[str, Any]:
    entry: dict[str, Any] = {"description": str(status)}
    if isinstance(answer, str):
        entry["content"] = {answer: {}}
    elif answer is not None:
        entry["content"] = {"application/json": {"schema": _ref(answer)}}
    if status == 429:
        retry = {"type": "integer", "minimum": 1}
        entry["headers"] = {"Retry-After": {"required": True, "schema": retry}}
    return entry


def _ref(model: type[BaseModel]) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{model.__name__}"}

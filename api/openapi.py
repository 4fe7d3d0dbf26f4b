"""The OpenAPI 3 document, generated from the same models that validate requests."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from api import schemas as s

PREFIX = "/api/custom-calculations"


@dataclass(frozen=True)
class Route:
    method: str
    path: str
    summary: str
    responses: dict[int, type[BaseModel] | None]
    body: type[BaseModel] | None = None
    query: type[BaseModel] | None = None
    path_params: tuple[str, ...] = ()
    headers: tuple[str, ...] = field(default=())


_E = s.ErrorResponse
ROUTES: tuple[Route, ...] = (
    Route(
        "post",
        "/execute",
        "Queue a script over symbols",
        {
            200: s.JobResponse,
            202: s.JobResponse,
            400: _E,
            401: _E,
            404: _E,
            409: _E,
            413: _E,
            415: _E,
            429: _E,
            503: _E,
        },
        body=s.ExecuteRequest,
        headers=("Idempotency-Key",),
    ),
    Route(
        "post",
        "/evaluate",
        "Evaluate a signal over history (a script at many past dates, against forward returns)",
        {
            200: s.JobResponse,
            202: s.JobResponse,
            400: _E,
            401: _E,
            404: _E,
            409: _E,
            413: _E,
            415: _E,
            429: _E,
            503: _E,
        },
        body=s.EvaluateRequest,
        headers=("Idempotency-Key",),
    ),
    Route(
        "get",
        "/jobs/{job_id}/results.csv",
        "A finished execute job's results as CSV (streamed)",
        {200: None, 401: _E, 404: _E, 409: _E, 503: _E},
        path_params=("job_id",),
    ),
    Route(
        "get",
        "/jobs/{job_id}/panel.csv",
        "A finished evaluation's panel as CSV (streamed)",
        {200: None, 401: _E, 404: _E, 409: _E, 503: _E},
        path_params=("job_id",),
    ),
    Route(
        "post",
        "/validate",
        "Compile code without saving or running it",
        {200: s.ValidResponse, 400: _E, 401: _E, 413: _E, 415: _E},
        body=s.ValidateRequest,
    ),
    Route(
        "get",
        "/jobs",
        "The caller's recent jobs",
        {200: s.JobList, 400: _E, 401: _E, 503: _E},
        query=s.JobListQuery,
    ),
    Route(
        "get",
        "/jobs/{job_id}",
        "A job",
        {200: s.JobResponse, 401: _E, 404: _E, 503: _E},
        path_params=("job_id",),
    ),
    Route(
        "delete",
        "/jobs/{job_id}",
        "Cancel a job",
        {200: s.JobResponse, 401: _E, 404: _E, 503: _E},
        path_params=("job_id",),
    ),
    Route(
        "post",
        "/scripts",
        "Save a script",
        {201: s.ScriptResponse, 400: _E, 401: _E, 409: _E, 413: _E, 415: _E, 503: _E},
        body=s.ScriptBody,
    ),
    Route(
        "get",
        "/scripts",
        "The caller's scripts, newest first",
        {200: s.ScriptList, 400: _E, 401: _E, 503: _E},
        query=s.ScriptListQuery,
    ),
    Route(
        "get",
        "/scripts/{script_id}",
        "A script",
        {200: s.ScriptResponse, 401: _E, 404: _E, 503: _E},
        path_params=("script_id",),
    ),
    Route(
        "put",
        "/scripts/{script_id}",
        "Replace a script",
        {200: s.ScriptResponse, 400: _E, 401: _E, 404: _E, 409: _E, 413: _E, 415: _E, 503: _E},
        body=s.ScriptBody,
        path_params=("script_id",),
    ),
    Route(
        "delete",
        "/scripts/{script_id}",
        "Delete a script",
        {204: None, 401: _E, 404: _E, 503: _E},
        path_params=("script_id",),
    ),
    Route(
        "get",
        "/scripts/{script_id}/results",
        "The newest finished run of a script",
        {200: s.ScriptRunResponse, 401: _E, 404: _E, 503: _E},
        path_params=("script_id",),
    ),
    Route(
        "get",
        "/universe",
        "The symbols with market data, their sectors, the data's date range",
        {200: s.UniverseResponse, 401: _E, 503: _E},
    ),
    Route(
        "get",
        "/health",
        "Database, Redis and workers",
        {200: s.HealthResponse, 503: s.HealthResponse},
    ),
)


def build_document() -> dict[str, Any]:
    models = {s.ErrorResponse, s.HealthResponse}
    for route in ROUTES:
        models.update(m for m in route.responses.values() if m is not None)
        if route.body is not None:
            models.add(route.body)
    keyed = [(m, "validation" if _is_request(m) else "serialization") for m in models]
    _, defs = models_json_schema(keyed, ref_template="#/components/schemas/{model}")
    paths: dict[str, Any] = {}
    for route in ROUTES:
        paths.setdefault(PREFIX + route.path, {})[route.method] = _operation(route)
    paths[PREFIX + "/openapi.json"] = {
        "get": {"summary": "This document", "responses": {"200": {"description": "OpenAPI 3"}}}
    }
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
    op: dict[str, Any] = {"summary": route.summary, "responses": {}}
    params: list[dict[str, Any]] = []
    for name in route.path_params:
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
    for status, model in route.responses.items():
        entry: dict[str, Any] = {"description": str(status)}
        if model is not None:
            entry["content"] = {"application/json": {"schema": _ref(model)}}
        op["responses"][str(status)] = entry
    if route.path != "/health":
        op["security"] = [{"bearer": []}, {}]
    return op


def _ref(model: type[BaseModel]) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{model.__name__}"}

"""``/scripts``: saved scripts (CRUD) and their newest run."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from flask import Blueprint

from api.auth import current_owner
from api.errors import Conflict, NotFound
from api.extension import calc, db_session
from api.parsing import parse_body, parse_query
from api.schemas import MAX_ID, ScriptBody, ScriptListQuery
from api.submitting import check_code_size
from db.audit import latest_run
from db.models import CustomScript
from db.scripts import (
    NameTaken,
    ScriptFields,
    create_script,
    delete_script,
    get_script,
    list_scripts,
    replace_script,
)
from sandbox.compiler import compile_script

bp = Blueprint("scripts", __name__, url_prefix="/api/custom-calculations")


def iso(dt: datetime) -> str:
    """ISO 8601 in UTC with a ``Z``, to the millisecond (so an update's ``updated_at`` moves)."""
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}Z"


def script_json(script: CustomScript) -> dict[str, Any]:
    return {
        "id": script.id,
        "name": script.name,
        "description": script.description,
        "code": script.code,
        "schedule": script.schedule,
        "user_id": script.user_id,
        "created_at": iso(script.created_at),
        "updated_at": iso(script.updated_at),
    }


def _checked_body() -> ScriptBody:
    body = parse_body(ScriptBody)
    check_code_size(body.code, calc().settings.max_code_bytes)
    compile_script(body.code)  # a saved script always compiles
    return body


def _owned(script_id: int) -> CustomScript:
    script = None
    if script_id <= MAX_ID:
        script = get_script(script_id, owner=current_owner(), session=db_session())
    if script is None:
        raise NotFound(f"no script {script_id}")
    return script


def _fields(body: ScriptBody) -> ScriptFields:
    schedule = None if body.schedule is None else body.schedule.model_dump(mode="json")
    return ScriptFields(body.name, body.description, body.code, schedule)


@bp.post("/scripts")
def create():
    body = _checked_body()
    session = db_session()
    try:
        script = create_script(_fields(body), owner=current_owner(), session=session)
    except NameTaken as exc:
        raise Conflict(str(exc), {"name": "already used"}) from None
    session.commit()
    location = f"{bp.url_prefix}/scripts/{script.id}"
    return script_json(script), 201, {"Location": location}


@bp.get("/scripts")
def index():
    query = parse_query(ScriptListQuery)
    rows, total = list_scripts(
        owner=current_owner(),
        session=db_session(),
        limit=query.limit,
        offset=query.offset,
        q=query.q,
    )
    return {
        "items": [script_json(s) for s in rows],
        "total": total,
        "limit": query.limit,
        "offset": query.offset,
    }


@bp.get("/scripts/<int:script_id>")
def show(script_id: int):
    return script_json(_owned(script_id))


@bp.put("/scripts/<int:script_id>")
def replace(script_id: int):
    body = _checked_body()
    script = _owned(script_id)
    session = db_session()
    try:
        replace_script(script, _fields(body), session=session)
    except NameTaken as exc:
        raise Conflict(str(exc), {"name": "already used"}) from None
    session.commit()
    return script_json(script)


@bp.delete("/scripts/<int:script_id>")
def delete(script_id: int):
    script = _owned(script_id)
    delete_script(script, session=db_session())
    db_session().commit()
    return "", 204


@bp.get("/scripts/<int:script_id>/results")
def results(script_id: int):
    _owned(script_id)
    run = latest_run(script_id, session=db_session())
    if run is None:
        raise NotFound(f"script {script_id} has no finished run yet")
    return {
        "job_id": run.job_id,
        "code_sha256": run.code_sha256,
        "finished_at": iso(run.finished_at),
        "results": run.results,
        "errors": run.errors,
    }

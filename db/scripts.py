"""Saved scripts: CRUD scoped to their owner (another owner's script does not exist)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from db.models import CustomScript, utcnow


class NameTaken(Exception):
    """The owner already has a script with this name."""


def _owner_filter(owner: str | None):
    return CustomScript.owner_key == (owner or "")


def get_script(script_id: int, *, owner: str | None, session: Session) -> CustomScript | None:
    return session.scalar(
        select(CustomScript).where(CustomScript.id == script_id, _owner_filter(owner))
    )


def list_scripts(
    *, owner: str | None, session: Session, limit: int, offset: int, q: str | None = None
) -> tuple[Sequence[CustomScript], int]:
    """A page of the owner's scripts, newest first, and how many match in all."""
    where = [_owner_filter(owner)]
    if q:
        pattern = (
            "%" + q.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        )
        where.append(
            or_(
                func.lower(CustomScript.name).like(pattern, escape="\\"),
                func.lower(func.coalesce(CustomScript.description, "")).like(pattern, escape="\\"),
            )
        )
    total = session.scalar(select(func.count()).select_from(CustomScript).where(*where)) or 0
    rows = session.scalars(
        select(CustomScript)
        .where(*where)
        .order_by(CustomScript.created_at.desc(), CustomScript.id.desc())
        .limit(limit)
        .offset(offset)
    ).all()
    return rows, total


@dataclass(frozen=True, slots=True)
class ScriptFields:
    """What a user writes of a saved script, as creating and replacing it take it."""

    name: str
    description: str | None
    code: str
    schedule: dict[str, Any] | None


def create_script(fields: ScriptFields, *, owner: str | None, session: Session) -> CustomScript:
    now = utcnow()  # one instant: a new script's updated_at equals its created_at
    script = CustomScript(user_id=owner, created_at=now, updated_at=now, **asdict(fields))
    session.add(script)
    _flush_unique(session)
    return script


def replace_script(script: CustomScript, fields: ScriptFields, *, session: Session) -> CustomScript:
    for name, value in asdict(fields).items():
        setattr(script, name, value)
    script.updated_at = utcnow()
    _flush_unique(session)
    return script


def delete_script(script: CustomScript, *, session: Session) -> None:
    session.delete(script)
    session.flush()


def scheduled_scripts(*, session: Session) -> Sequence[CustomScript]:
    return session.scalars(select(CustomScript).where(CustomScript.schedule.is_not(None))).all()


def _flush_unique(session: Session) -> None:
    try:
        with session.begin_nested():
            session.flush()
    except IntegrityError as exc:
        raise NameTaken("a script with this name already exists") from exc

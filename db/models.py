"""The service's tables: saved scripts, their runs, the audit trail, API tokens, market data.

Every schema change goes through an Alembic migration under ``db/migrations``; a test checks
that these models and the migrations agree.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    CheckConstraint,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    func,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.engine.default import DefaultExecutionContext
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, validates

# Deterministic constraint names: Alembic can then drop or alter them on PostgreSQL and
# recreate them in SQLite batch mode without guessing generated names.
NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

JOB_SOURCES = ("api", "schedule")
JOB_KINDS = ("execute", "evaluation")


def utcnow() -> dt.datetime:
    """Now, timezone-aware in UTC: the only kind of time this schema stores."""
    return dt.datetime.now(dt.UTC)


class UTCDateTime(TypeDecorator[dt.datetime]):
    """A timestamp that goes in and comes out as an aware UTC datetime on both databases.

    SQLite has no time zones (it would hand back naive values) and PostgreSQL returns
    ``timestamptz`` in the session's zone; this type normalises both to UTC. Naive datetimes
    are refused: they are almost always a local-time bug.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(f"naive datetime {value!r}: pass a timezone-aware UTC datetime")
        value = value.astimezone(dt.UTC)
        # SQLite stores text; keep it zone-free so values sort and compare as text.
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: dt.datetime | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=dt.UTC)
        return value.astimezone(dt.UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


def _owner_key_default(context: DefaultExecutionContext) -> str:
    return context.get_current_parameters().get("user_id") or ""


class CustomScript(Base):
    """A saved, reusable script; its name is unique per owner (anonymous included)."""

    __tablename__ = "custom_scripts"
    # UNIQUE (user_id, name) would let any number of NULL-owner scripts share a name, on
    # SQLite and PostgreSQL alike; owner_key is user_id with NULL folded to '' so it does not.
    __table_args__ = (UniqueConstraint("owner_key", "name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    description: Mapped[str | None] = mapped_column(Text)
    code: Mapped[str] = mapped_column(Text)
    # none_as_null: Python None must be SQL NULL (no schedule), not the JSON text 'null'.
    schedule: Mapped[dict[str, Any] | None] = mapped_column(JSON(none_as_null=True))
    user_id: Mapped[str | None] = mapped_column(String(100))
    owner_key: Mapped[str] = mapped_column(String(100), default=_owner_key_default)
    created_at: Mapped[dt.datetime] = mapped_column(
        UTCDateTime, default=utcnow, server_default=func.current_timestamp()
    )
    updated_at: Mapped[dt.datetime] = mapped_column(
        UTCDateTime, default=utcnow, onupdate=utcnow, server_default=func.current_timestamp()
    )

    @validates("user_id")
    def _sync_owner_key(self, _key: str, value: str | None) -> str | None:
        self.owner_key = value or ""
        return value


class ScriptRun(Base):
    """A finished run of a saved script, kept after the Redis job expires."""

    __tablename__ = "script_runs"
    __table_args__ = (
        CheckConstraint(f"source IN {JOB_SOURCES!r}", name="source"),
        Index(None, "script_id", "finished_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    # Runs go with their script (the database cascades; the ORM need not load them).
    script_id: Mapped[int | None] = mapped_column(
        ForeignKey("custom_scripts.id", ondelete="CASCADE")
    )
    job_id: Mapped[str] = mapped_column(String(36), unique=True)
    user_id: Mapped[str | None] = mapped_column(String(100))
    source: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16))
    # The code this run ran (a script may have been edited since): its results are that
    # code's, never the current code's unless the hashes agree.
    code_sha256: Mapped[str | None] = mapped_column(String(64))
    finished_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    results: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    errors: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class Execution(Base):
    """The audit trail: one row per job, whoever ran it, kept when the script is gone."""

    __tablename__ = "executions"
    __table_args__ = (
        CheckConstraint(f"source IN {JOB_SOURCES!r}", name="source"),
        CheckConstraint(f"kind IN {JOB_KINDS!r}", name="kind"),
        Index(None, "user_id", "created_at"),
    )

    job_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    user_id: Mapped[str | None] = mapped_column(String(100))
    # No foreign key: the audit row must outlive a deleted script.
    script_id: Mapped[int | None] = mapped_column(Integer)
    code_sha256: Mapped[str] = mapped_column(String(64))
    symbol_count: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16))
    error_count: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    started_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    finished_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    duration_ms: Mapped[int | None] = mapped_column(Integer)
    source: Mapped[str] = mapped_column(String(16))
    kind: Mapped[str] = mapped_column(String(16), default="execute", server_default="execute")


class ApiToken(Base):
    """A bearer token, stored only as its SHA-256 so a database leak reveals no tokens."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[str] = mapped_column(String(100))
    name: Mapped[str | None] = mapped_column(String(100))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    revoked_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    last_used_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)


class StockInfo(Base):
    """Reference data a script sees as ``info``."""

    __tablename__ = "stock_info"

    symbol: Mapped[str] = mapped_column(String(20), primary_key=True)
    name: Mapped[str | None] = mapped_column(Text)
    sector: Mapped[str | None] = mapped_column(Text)
    industry: Mapped[str | None] = mapped_column(Text)


class StockDailyData(Base):
    """Daily bars. On SQLite the table is clustered by (symbol, date) (WITHOUT ROWID), so a
    symbol's window is one contiguous range read instead of an index probe per row."""

    __tablename__ = "stock_daily_data"
    __table_args__ = (
        # latest_date() (the default as_of of every job) reads max(date): keep it an index seek.
        Index(None, "date"),
        {"sqlite_with_rowid": False},
    )

    symbol: Mapped[str] = mapped_column(String(20), primary_key=True)
    date: Mapped[dt.date] = mapped_column(Date, primary_key=True)
    open: Mapped[float] = mapped_column(Float)
    high: Mapped[float] = mapped_column(Float)
    low: Mapped[float] = mapped_column(Float)
    close: Mapped[float] = mapped_column(Float)
    volume: Mapped[int] = mapped_column(BigInteger)


class StockDataVersion(Base):
    """Bumped by the loader whenever a symbol's bars or info actually change; result caches
    key on it so they never serve an outcome computed from older data."""

    __tablename__ = "stock_data_versions"

    symbol: Mapped[str] = mapped_column(String(20), primary_key=True)
    version: Mapped[int] = mapped_column(Integer)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)

"""The models on both databases: uniqueness per owner, UTC times, JSON, cascades."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import Engine, exc, func, insert, select, text

from db.models import CustomScript, Execution, ScriptRun, utcnow
from db.session import session_scope


def _script(name: str, user_id: str | None = None, **extra: object) -> CustomScript:
    return CustomScript(name=name, code="result = 1", user_id=user_id, **extra)


@pytest.mark.parametrize("owner", [None, "alice"])
def test_script_names_are_unique_per_owner_including_no_owner(
    fresh_engine: Engine, owner: str | None
) -> None:
    with session_scope(fresh_engine) as session:
        session.add(_script("rsi", owner))
    with pytest.raises(exc.IntegrityError), session_scope(fresh_engine) as session:
        session.add(_script("rsi", owner))


def test_the_same_name_may_be_used_by_other_owners(fresh_engine: Engine) -> None:
    with session_scope(fresh_engine) as session:
        session.add_all([_script("rsi"), _script("rsi", "alice"), _script("rsi", "bob")])
    with session_scope(fresh_engine) as session:
        keys = session.execute(select(CustomScript.user_id, CustomScript.owner_key)).all()
    assert sorted(keys, key=lambda k: k[1]) == [(None, ""), ("alice", "alice"), ("bob", "bob")]


def test_owner_key_follows_user_id_set_later_and_core_inserts(fresh_engine: Engine) -> None:
    with session_scope(fresh_engine) as session:
        script = _script("a")
        script.user_id = "carol"
        session.add(script)
        session.execute(insert(CustomScript).values(name="b", code="x", user_id="dave"))
        session.execute(insert(CustomScript).values(name="c", code="x"))
    with session_scope(fresh_engine) as session:
        rows = dict(session.execute(select(CustomScript.name, CustomScript.owner_key)).all())
    assert rows == {"a": "carol", "b": "dave", "c": ""}


def test_times_are_aware_utc_and_naive_times_are_refused(fresh_engine: Engine) -> None:
    paris = dt.timezone(dt.timedelta(hours=1))
    started = dt.datetime(2026, 11, 26, 11, 0, 0, 123456, tzinfo=paris)
    with session_scope(fresh_engine) as session:
        session.add(_script("t"))
        session.add(
            Execution(
                job_id="j1", code_sha256="0" * 64, symbol_count=3, status="queued",
                source="api", started_at=started,
            )
        )  # fmt: skip
    with session_scope(fresh_engine) as session:
        script = session.scalars(select(CustomScript)).one()
        execution = session.get(Execution, "j1")
    assert script.created_at.tzinfo == dt.UTC and script.updated_at.tzinfo == dt.UTC
    assert abs(script.created_at - utcnow()) < dt.timedelta(minutes=1)
    assert execution.started_at == started
    assert execution.started_at.tzinfo == dt.UTC and execution.started_at.hour == 10

    naive = dt.datetime(2026, 1, 1)
    with (
        pytest.raises(exc.StatementError, match="naive datetime"),
        session_scope(fresh_engine) as session,
    ):
        session.add(_script("naive", created_at=naive))


def test_updated_at_moves_on_update(fresh_engine: Engine) -> None:
    with session_scope(fresh_engine) as session:
        script = _script("u")
        session.add(script)
    created = script.updated_at
    with session_scope(fresh_engine) as session:
        session.get(CustomScript, script.id).code = "result = 2"
    with session_scope(fresh_engine) as session:
        assert session.get(CustomScript, script.id).updated_at > created


def test_no_schedule_is_sql_null_not_json_null(fresh_engine: Engine) -> None:
    schedule = {"cron": "30 22 * * 1-5", "symbols": ["AAPL"], "params": {}, "lookback": 252}
    with session_scope(fresh_engine) as session:
        session.add_all([_script("plain", schedule=None), _script("nightly", schedule=schedule)])
    with session_scope(fresh_engine) as session:
        names = session.scalars(
            select(CustomScript.name).where(CustomScript.schedule.is_not(None))
        ).all()
        raw_nulls = session.scalar(
            text("SELECT count(*) FROM custom_scripts WHERE schedule IS NULL")
        )
        stored = session.scalar(select(CustomScript.schedule).where(CustomScript.name == "nightly"))
    assert names == ["nightly"]
    assert raw_nulls == 1
    assert stored == schedule


def test_runs_keep_result_order_and_go_with_their_script(fresh_engine: Engine) -> None:
    results = {"MSFT": 0.5, "AAPL": -1.25, "NOPE": None, "BRK.B": {"a": 1.0}}
    with session_scope(fresh_engine) as session:
        script = _script("with-runs")
        session.add(script)
        session.flush()
        session.add(
            ScriptRun(
                script_id=script.id, job_id="r1", source="schedule", status="completed",
                results=results, errors={"NOPE": {"type": "UnknownSymbol", "message": "x"}},
            )
        )  # fmt: skip
        session.add(
            Execution(
                job_id="r1", script_id=script.id, code_sha256="0" * 64, symbol_count=4,
                status="completed", source="schedule",
            )
        )  # fmt: skip
    with session_scope(fresh_engine) as session:
        run = session.scalars(select(ScriptRun)).one()
        assert list(run.results) == list(results) and run.results == results
        assert run.finished_at.tzinfo == dt.UTC

    with session_scope(fresh_engine) as session:
        session.delete(session.get(CustomScript, script.id))
    with session_scope(fresh_engine) as session:
        assert session.scalar(select(func.count()).select_from(ScriptRun)) == 0
        assert session.get(Execution, "r1") is not None  # the audit trail outlives the script


def test_source_must_be_api_or_schedule(fresh_engine: Engine) -> None:
    with pytest.raises(exc.IntegrityError), session_scope(fresh_engine) as session:
        session.add(
            Execution(
                job_id="bad", code_sha256="0" * 64, symbol_count=1, status="queued",
                source="cron",
            )
        )  # fmt: skip

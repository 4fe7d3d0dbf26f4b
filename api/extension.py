"""The app's long-lived objects, kept in ``app.extensions["calc"]``; one DB session per request."""

from __future__ import annotations

from dataclasses import dataclass

import redis
from celery import Celery
from flask import Flask, current_app, g
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from api.slots import RequestSlots
from db.session import make_engine, make_session_factory
from settings import Settings
from workers.durable import durable_store
from workers.jobstore import JobStore
from workers.publisher import make_publisher


@dataclass
class CalcExtension:
    settings: Settings
    redis: redis.Redis
    store: JobStore
    celery: Celery  # publishes tasks by name (workers.publisher)
    engine: Engine
    market_engine: Engine
    sessions: sessionmaker[Session]
    slots: RequestSlots


def init_extension(app: Flask, settings: Settings) -> CalcExtension:
    # Short socket timeouts: with Redis down, a request must answer 503 within 2 seconds.
    client = redis.Redis.from_url(
        settings.redis_url,
        socket_timeout=1.0,
        socket_connect_timeout=1.0,
        health_check_interval=10,
    )
    engine = make_engine(settings.database_url)
    market = (
        engine
        if settings.market_data_url_or_default == settings.database_url
        else make_engine(settings.market_data_url_or_default)
    )
    ext = CalcExtension(
        settings=settings,
        redis=client,
        store=durable_store(client, settings, engine),
        celery=make_publisher(settings),
        engine=engine,
        market_engine=market,
        sessions=make_session_factory(engine),
        slots=RequestSlots(max(1, settings.api_active_requests)),
    )
    app.extensions["calc"] = ext
    app.wsgi_app = ext.slots.middleware(app.wsgi_app)  # type: ignore[method-assign]
    app.teardown_appcontext(_close_session)
    return ext


def calc() -> CalcExtension:
    return current_app.extensions["calc"]


def db_session() -> Session:
    """This request's session (made on first use, closed on teardown)."""
    if "db_session" not in g:
        g.db_session = calc().sessions()
    return g.db_session


def _close_session(exc: BaseException | None) -> None:
    session: Session | None = g.pop("db_session", None)
    if session is not None:
        if exc is not None:
            session.rollback()
        session.close()

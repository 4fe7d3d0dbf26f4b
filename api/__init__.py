"""The Flask API. ``create_app()`` is the only way to get an app (the Procfile calls it)."""

from __future__ import annotations

from flask import Flask

import logconfig
from api import metrics
from api.auth import authenticate
from api.cli import register_cli
from api.cli_tokens import register_token_cli
from api.errors import register_error_handlers
from api.extension import init_extension
from api.limits import init_limiter
from api.routes import evaluate, execute, exports, health, jobs, openapi, page, scripts, universe
from settings import Settings, SettingsError


def create_app(settings: Settings | None = None) -> Flask:
    """Build the app for ``settings`` (default: the environment), with no I/O at import."""
    try:
        settings = settings or Settings.from_env()
    except SettingsError as exc:  # an entry point: one line and a non-zero exit
        raise SystemExit(f"calc: {exc}") from None
    logconfig.configure(settings.log_level)
    app = Flask(__name__, static_folder=None)  # the page blueprint serves api/static
    app.config["MAX_CONTENT_LENGTH"] = settings.max_body_bytes
    app.json.sort_keys = False  # keep results in the order the symbols were asked
    init_extension(app, settings)
    register_error_handlers(app)
    app.before_request(authenticate)
    for module in (
        execute,
        evaluate,
        jobs,
        exports,
        scripts,
        health,
        openapi,
        metrics,
        universe,
        page,
    ):
        app.register_blueprint(module.bp)
    init_limiter(app, settings)
    register_cli(app)
    register_token_cli(app)
    return app

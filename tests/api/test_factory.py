"""The app factory: the only way to get an app, configured from settings or the environment."""

from __future__ import annotations

import subprocess
import sys

from settings import PROJECT_ROOT, Settings


def test_factory_builds_the_app_from_settings(app, settings):
    ext = app.extensions["calc"]
    assert ext.settings is settings
    assert {"execute", "jobs", "scripts", "health", "openapi", "metrics"} <= set(app.blueprints)
    assert app.config["MAX_CONTENT_LENGTH"] == settings.max_body_bytes


def test_factory_reads_the_environment_when_given_no_settings(monkeypatch, make_app, tmp_path):
    url = f"sqlite:///{tmp_path / 'env.sqlite3'}"
    monkeypatch.setenv("DATABASE_URL", url)
    monkeypatch.setenv("CALC_AUTH", "required")
    monkeypatch.setenv("CALC_SYMBOL_CPU_SECONDS", "0.5")
    settings = Settings.from_env()
    assert (settings.database_url, settings.auth, settings.symbol_cpu_seconds) == (
        url,
        "required",
        0.5,
    )
    app = make_app(settings)
    assert app.extensions["calc"].settings.auth == "required"


def test_the_api_process_loads_nothing_of_the_worker_runtime():
    """The API publishes tasks by name: building the app and submitting import no task module,
    no worker runtime and no sandbox process code."""
    probe = (
        "import sys\n"
        "from api import create_app\n"
        "app = create_app()\n"
        "import api.routes.execute, api.warmup\n"
        "print(sorted(m for m in sys.modules if m in {"
        "'workers.tasks', 'workers.celery_app', 'workers.runtime', 'workers.jobs'}))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], cwd=PROJECT_ROOT, capture_output=True, text=True, check=True
    )
    assert done.stdout.strip() == "[]"

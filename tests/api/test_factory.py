"""The app factory: the only way to get an app, configured from settings or the environment."""

from __future__ import annotations

import pytest

from settings import Settings


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


@pytest.mark.parametrize(
    ("raw", "pinned"),
    [("", True), ("on", True), ("1", True), ("off", False), ("0", False), ("FALSE", False)],
)
def test_pinning_api_processes_is_a_switch(raw, pinned):
    assert Settings.from_env({"CALC_API_PIN_CPUS": raw}).api_pin_cpus is pinned


def test_a_switch_that_is_neither_on_nor_off_is_refused_by_name():
    with pytest.raises(ValueError, match="CALC_API_PIN_CPUS"):
        Settings.from_env({"CALC_API_PIN_CPUS": "sometimes"})

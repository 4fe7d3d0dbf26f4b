"""Settings read from the environment: a security setting fails closed."""

from __future__ import annotations

import dataclasses
import re
import runpy

import pytest

from settings import ENVIRONMENT, PROJECT_ROOT, Settings, SettingsError


@pytest.mark.parametrize("value", ["required", "on", "true", "yes", "1", " True ", "REQUIRED"])
def test_auth_is_required_in_every_documented_spelling(value: str) -> None:
    assert Settings.from_env({"CALC_AUTH": value}).auth == "required"


@pytest.mark.parametrize("value", ["off", "false", "no", "0", "", "  ", "OFF"])
def test_auth_is_off_in_every_documented_spelling(value: str) -> None:
    assert Settings.from_env({"CALC_AUTH": value}).auth == "off"
    assert Settings.from_env({}).auth == "off"


@pytest.mark.parametrize("value", ["maybe", "ture", "enabled", "required!", "2", "y"])
def test_an_unknown_auth_value_refuses_with_one_line_naming_the_variable(value: str) -> None:
    with pytest.raises(SettingsError) as refused:
        Settings.from_env({"CALC_AUTH": value})
    message = str(refused.value)
    assert message.startswith("CALC_AUTH ") and "\n" not in message and repr(value) in message


def test_settings_built_in_code_fail_closed_too() -> None:
    with pytest.raises(SettingsError):
        Settings(auth="true")


def test_a_malformed_number_names_its_variable() -> None:
    with pytest.raises(SettingsError, match=r"^CALC_MAX_ACTIVE_JOBS "):
        Settings.from_env({"CALC_MAX_ACTIVE_JOBS": "many"})


def test_sandbox_confinement_fails_closed():
    """strict by default; relaxed only when spelt out; anything else refuses to start."""
    assert Settings.from_env({}).sandbox_confinement == "strict"
    assert Settings.from_env({"CALC_SANDBOX_CONFINEMENT": " Relaxed "}).sandbox_confinement == (
        "relaxed"
    )
    for wrong in ("off", "relax", "none", "0"):
        with pytest.raises(SettingsError, match="CALC_SANDBOX_CONFINEMENT must be strict"):
            Settings.from_env({"CALC_SANDBOX_CONFINEMENT": wrong})


# One source for each setting (issue 18 item 4): settings.ENVIRONMENT, the README's table, and
# what the code and the process files actually read.

TOP_LEVEL = ("settings.py", "celeryconfig.py", "logconfig.py", "gunicorn.conf.py")
PACKAGES = ("api", "workers", "sandbox", "db", "scripts", "bench")
PRODUCT_FILES = [PROJECT_ROOT / name for name in TOP_LEVEL] + [
    path for package in PACKAGES for path in (PROJECT_ROOT / package).rglob("*.py")
]
READS_ENVIRONMENT = re.compile(r"\bos\.environ\b|\bgetenv\b|\bposix\.environ\b|\benviron\.get\b")
# Reading the environment is settings.py's job; the sandbox child only clears it (empty
# environment).
MAY_TOUCH_ENVIRONMENT = {"settings.py", "sandbox/child.py"}


def readme_settings_table() -> dict[str, str]:
    """The README's ``Settings (environment)`` table: variable -> its default cell."""
    text = (PROJECT_ROOT / "README.md").read_text()
    section = text.split("## Settings (environment)", 1)[1].split("\n#", 1)[0]
    rows = {}
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 3 and re.fullmatch(r"`[A-Z][A-Z0-9_]*`", cells[0]):
            rows[cells[0].strip("`")] = cells[1]
    return rows


def test_every_variable_of_the_table_sets_a_field_of_the_settings() -> None:
    names = {f.name for f in dataclasses.fields(Settings)}
    assert {v.field for v in ENVIRONMENT.values()} <= names


def test_the_readme_table_is_settings_table_with_the_same_defaults() -> None:
    documented = readme_settings_table()
    assert documented == {name: v.default for name, v in ENVIRONMENT.items()}


def test_no_module_but_settings_reads_the_environment() -> None:
    readers = {
        str(path.relative_to(PROJECT_ROOT))
        for path in PRODUCT_FILES
        if READS_ENVIRONMENT.search(path.read_text())
    }
    assert readers <= MAY_TOUCH_ENVIRONMENT
    assert "settings.py" in readers


def test_the_process_files_read_only_variables_of_the_table() -> None:
    """The Procfile and the Makefile pass the environment through; any ``${NAME}`` they read
    is one of ours, and the Procfile hard-codes no number the settings own."""
    procfile = (PROJECT_ROOT / "Procfile").read_text()
    makefile = (PROJECT_ROOT / "Makefile").read_text()
    shell_reads = set(re.findall(r"\$\$?\{([A-Z][A-Z0-9_]*)", procfile + makefile))
    shell_reads |= set(re.findall(r"^export ([A-Z][A-Z0-9_]*)", makefile, re.M))
    assert shell_reads <= set(ENVIRONMENT)
    assert "--concurrency" not in procfile and "--workers" not in procfile
    assert "--bind" not in procfile and "--threads" not in procfile


@pytest.mark.parametrize(
    ("name", "raw", "value"),
    [
        ("CALC_API_PROCESSES", "3", 3),
        ("PORT", "8123", 8123),
        ("CALC_SYMBOL_CPU_SECONDS", "0.5", 0.5),
        ("REDIS_URL", " redis://h:1/2 ", "redis://h:1/2"),
        ("CALC_CLUSTER_PROCESSES", "12", 12),
    ],
)
def test_each_variable_sets_its_field(name: str, raw: str, value: object) -> None:
    assert getattr(Settings.from_env({name: raw}), ENVIRONMENT[name].field) == value
    assert getattr(Settings.from_env({name: ""}), ENVIRONMENT[name].field) == getattr(
        Settings(), ENVIRONMENT[name].field
    )  # empty: the default


@pytest.mark.parametrize("raw", ["-1", "1.5", "many"])
def test_a_count_must_be_a_whole_number_not_negative(raw: str) -> None:
    with pytest.raises(SettingsError, match=r"^CALC_WORKER_PROCESSES "):
        Settings.from_env({"CALC_WORKER_PROCESSES": raw})


@pytest.mark.parametrize("raw", ["-1", "nan", "inf", "soon"])
def test_a_duration_must_be_a_finite_number_not_negative(raw: str) -> None:
    with pytest.raises(SettingsError, match=r"^CALC_JOB_WALL_SECONDS "):
        Settings.from_env({"CALC_JOB_WALL_SECONDS": raw})


def test_chunk_planning_uses_the_processes_the_worker_forks_unless_the_cluster_is_given() -> None:
    assert Settings.from_env({"CALC_WORKER_PROCESSES": "3"}).planned_processes == 3
    both = {"CALC_WORKER_PROCESSES": "3", "CALC_CLUSTER_PROCESSES": "12"}
    assert Settings.from_env(both).planned_processes == 12


def test_gunicorn_and_celery_take_their_numbers_from_the_settings(monkeypatch) -> None:
    monkeypatch.setenv("CALC_API_PROCESSES", "3")
    monkeypatch.setenv("CALC_API_THREADS", "7")
    monkeypatch.setenv("PORT", "8123")
    monkeypatch.setenv("CALC_WORKER_PROCESSES", "5")
    gunicorn = runpy.run_path(str(PROJECT_ROOT / "gunicorn.conf.py"))
    assert (gunicorn["workers"], gunicorn["threads"]) == (3, 7)
    assert gunicorn["bind"] == ["0.0.0.0:8123"]
    assert runpy.run_path(str(PROJECT_ROOT / "celeryconfig.py"))["worker_concurrency"] == 5


def test_gunicorn_refuses_a_malformed_setting_in_one_line(monkeypatch) -> None:
    monkeypatch.setenv("CALC_API_PROCESSES", "two")
    with pytest.raises(SystemExit) as refused:
        runpy.run_path(str(PROJECT_ROOT / "gunicorn.conf.py"))
    assert str(refused.value).startswith("gunicorn: CALC_API_PROCESSES ")

"""Settings read from the environment: a security setting fails closed."""

from __future__ import annotations

import pytest

from settings import Settings, SettingsError


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

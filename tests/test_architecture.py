"""Imports go one way (STYLE.md 1): api -> workers -> {sandbox, db}, api -> {db, sandbox}."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

from settings import PROJECT_ROOT

OURS = {"api", "workers", "sandbox", "db", "settings", "celeryconfig", "logconfig"}
STDLIB = set(sys.stdlib_module_names)

# package -> (our modules it may import, third-party roots it may import)
ALLOWED = {
    "sandbox": ({"sandbox"}, {"RestrictedPython", "orjson"}),  # orjson: outcome lines
    "db": ({"db"}, {"sqlalchemy", "alembic"}),
    "workers": (
        {"workers", "sandbox", "db", "settings", "celeryconfig", "logconfig"},
        # numpy, pandas, scipy: an evaluation's figures (workers/figures.py)
        {
            "celery",
            "kombu",
            "redis",
            "sqlalchemy",
            "croniter",
            "numpy",
            "pandas",
            "scipy",
            "orjson",
        },
    ),
}


def imports_of(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module.split(".")[0])
    return found


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_imports_go_one_way(package):
    ours, third_party = ALLOWED[package]
    wrong = {}
    for path in sorted((PROJECT_ROOT / package).rglob("*.py")):
        bad = {
            name
            for name in imports_of(path) - STDLIB - {"__future__"}
            if (name in OURS and name not in ours) or (name not in OURS and name not in third_party)
        }
        if bad:
            wrong[str(path.relative_to(PROJECT_ROOT))] = sorted(bad)
    assert wrong == {}


def test_the_checker_sees_a_wrong_arrow(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("import flask\nfrom api.errors import ApiError\nfrom sandbox import guards\n")
    assert imports_of(bad) == {"flask", "api", "sandbox"}

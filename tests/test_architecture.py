"""Imports go one way (STYLE.md 1): api -> workers -> {sandbox, db}, api -> {db, sandbox}; and
no module imports itself back through others (STYLE.md 16), counting imports inside functions."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

from settings import PROJECT_ROOT

OURS = {
    "api",
    "workers",
    "sandbox",
    "db",
    "settings",
    "celeryconfig",
    "logconfig",
    "bench",
    "client",
}
PACKAGES = ["api", "bench", "db", "sandbox", "scripts", "workers"]
CLIENT_ROOT = PROJECT_ROOT / "client"  # the notebook client, a distribution of its own
STDLIB = set(sys.stdlib_module_names)

API_LIBRARIES = {"flask", "flask_limiter", "limits", "werkzeug", "pydantic", "redis", "sqlalchemy"}
API_LIBRARIES |= {"celery", "click", "prometheus_client", "orjson", "croniter"}

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
    "api": ({"api", "workers", "sandbox", "db", "settings", "logconfig"}, API_LIBRARIES),
}


def imported_names(path: Path, modules: set[str] = frozenset()) -> set[str]:
    """Every dotted name ``path`` imports when it runs, at the top or inside a function (not
    under ``if TYPE_CHECKING``). ``from a import b``
    names ``a.b`` when that is one of ``modules``, else ``a``."""
    tree = ast.parse(path.read_text(), filename=str(path))
    type_only = {  # ``if TYPE_CHECKING:`` imports never run
        id(inner)
        for node in ast.walk(tree)
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)
        for inner in ast.walk(node)
    }
    found = set()
    for node in ast.walk(tree):
        if id(node) in type_only:
            continue
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            for alias in node.names:
                sub = f"{node.module}.{alias.name}"
                found.add(sub if sub in modules else node.module)
    return found


def imports_of(path: Path) -> set[str]:
    return {name.split(".")[0] for name in imported_names(path)}


def our_modules() -> dict[str, Path]:
    modules = {name: PROJECT_ROOT / f"{name}.py" for name in ("settings", "celeryconfig",
                                                              "logconfig")}  # fmt: skip
    roots = [(PROJECT_ROOT, PROJECT_ROOT / p) for p in PACKAGES]
    roots.append((CLIENT_ROOT, CLIENT_ROOT / "calc_client"))
    for root, package in roots:
        for path in package.rglob("*.py"):
            parts = path.relative_to(root).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            modules[name] = path
    return modules


def import_graph() -> dict[str, set[str]]:
    """Module -> the modules of ours it imports."""
    modules = our_modules()
    return {
        name: {n for n in imported_names(path, set(modules)) if n in modules} - {name}
        for name, path in modules.items()
    }


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in graph.get(node, ()):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
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


def test_no_import_cycles_anywhere():
    graph = import_graph()
    assert {"workers.tasks", "api.routes.execute", "calc_client", "bench.load"} <= set(graph)
    assert cycles(graph) == []


def test_the_checker_sees_a_wrong_arrow(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("import flask\nfrom api.errors import ApiError\nfrom sandbox import guards\n")
    assert imports_of(bad) == {"flask", "api", "sandbox"}


def test_the_checker_sees_a_cycle_through_an_import_inside_a_function():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert cycles(graph) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []

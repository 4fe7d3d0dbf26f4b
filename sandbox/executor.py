"""The executor's boundary: a batch of symbols in, one outcome per symbol out.

Workers call ``run_batch``; how the batch is isolated (in this process, or in
a forked, resource-limited child) is this module's business alone.
"""

from __future__ import annotations

import json
from collections.abc import Generator, Iterable, Iterator, Mapping
from typing import Any

from sandbox.compiler import CompiledScript, compile_script
from sandbox.errors import ScriptRejected
from sandbox.fork_client import set_confinement_mode
from sandbox.isolation import Limits, fork_server, run_isolated

__all__ = ["Limits", "run_batch", "run_batch_in_process", "start_isolation"]
from sandbox.namespace import base_globals
from sandbox.outcome import Outcome, error, outcome
from sandbox.runner import SymbolInput, run_symbol


def start_isolation(confinement: str | None = None) -> str:
    """Start this process's fork server now (it starts on first use otherwise): a worker
    process calls this before its first job, so that the server is clean and ready.

    ``confinement`` is CALC_SANDBOX_CONFINEMENT (``strict`` or ``relaxed``). Answers the
    confinement that held (``full`` or ``relaxed (missing: ...)``); raises
    ``ConfinementRefusedError`` when the kernel refused a step in strict mode."""
    if confinement is not None:
        set_confinement_mode(confinement)
    return fork_server().confinement


def run_batch(
    source: str,
    items: Iterable[SymbolInput],
    *,
    params: Mapping[str, Any],
    limits: Limits,
) -> Iterator[tuple[str, Outcome]]:
    """Yield ``(symbol, outcome)`` for each item as soon as it is done, in forked children.

    The service always isolates: there is no setting that runs user code in the worker.
    """
    batch = list(items)
    script = yield from _compiled(source, batch)
    if script is not None:
        yield from run_isolated(script, batch, json.dumps(params), limits)


def run_batch_in_process(
    source: str,
    items: Iterable[SymbolInput],
    *,
    params: Mapping[str, Any],
    limits: Limits,
) -> Iterator[tuple[str, Outcome]]:
    """The same batch in this process, without layer 3: only for benchmarks and tests that
    measure what isolation costs. Never used by the service."""
    batch = list(items)
    script = yield from _compiled(source, batch)
    if script is None:
        return
    shared = base_globals()
    params_json = json.dumps(params)
    for item in batch:
        yield item.symbol, run_symbol(script, shared, item, params_json, limits.stdout_bytes)


def _compiled(
    source: str, batch: list[SymbolInput]
) -> Generator[tuple[str, Outcome], None, CompiledScript | None]:
    """The compiled script; or, when the compiler refuses it, each symbol's outcome saying
    why (yielded) and None: a refused script fails every symbol the same way."""
    try:
        return compile_script(source)
    except ScriptRejected as exc:
        rejected = error(exc.error_type, exc.message, exc.line)
        for item in batch:
            yield item.symbol, outcome(None, dict(rejected))
        return None

"""The forked child (DESIGN.md, layer 3) on its own: budgets, crashes, cleanup, limits.

Some of these tests run *escaped* code: plain Python compiled without RestrictedPython, which
reaches ``os`` and ``sys`` the way a script would if it ever got past the compiler and the
guards. Scripts themselves cannot touch the environment, files or descriptors at all (see
test_security.py), so this is the only way to show that layer 3 holds alone.
"""

from __future__ import annotations

import json
import math
import os
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import sandbox.helpers
from sandbox.executor import Limits, run_batch
from sandbox.isolation import MAX_CHILD_FDS, fork_server, run_isolated
from sandbox.runner import SymbolInput
from tests.sandbox.escape import escaped
from tests.sandbox.sample import sample_items as shared_sample_items

PARAMS = {"window": 5}

Outcomes = list[tuple[str, dict[str, Any]]]


def sample_items(count: int = 4, days: int = 120) -> tuple[SymbolInput, ...]:
    return shared_sample_items(count, days)


ITEMS = sample_items()
FIRST = ITEMS[0].symbol


def busy_on(symbol: str) -> str:
    return f'if symbol == "{symbol}":\n    while True:\n        pass\nresult = close[-1]\n'


def assert_rest_computed(outcomes: Outcomes, start: int) -> None:
    for (symbol, out), item in zip(outcomes[start:], ITEMS[start : len(outcomes)], strict=True):
        assert symbol == item.symbol
        assert out == {"value": item.close[-1], "error": None, "stdout": ""}


# --- looking at our own children through /proc ----------------------------------------------------


def _stat_fields(pid: int) -> list[str] | None:
    """The fields of /proc/PID/stat after the command name, or None if ``pid`` is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return text[text.rindex(")") + 2 :].split()


def _stat(pid: int) -> tuple[str, int, int] | None:
    """(state, parent pid, process group) of ``pid``, or None if it is gone."""
    fields = _stat_fields(pid)
    return None if fields is None else (fields[0], int(fields[1]), int(fields[2]))


# Long-lived children that other tests started (the end-to-end services) are not ours.
_OTHERS: set[int] = set()


def _all_children() -> set[int]:
    me = os.getpid()
    found = set()
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            stat = _stat(int(entry))
            if stat is not None and stat[1] == me:
                found.add(int(entry))
    return found


def children() -> set[int]:
    """Our own child processes (zombies included), not counting other tests' services, nor
    the fork server and the idle child it keeps ready (the executor's own, long-lived)."""
    servers = fork_server().idle_pids()  # (first: it waits for the children it released)
    return _all_children() - _OTHERS - servers


def gone(pid: int) -> bool:
    """No such process, or only a zombie nobody reaped (an orphan under a non-reaping init)."""
    stat = _stat(pid)
    return stat is None or stat[0] in {"Z", "X"}


def wait_for_running_child(timeout: float = 5.0) -> int:
    """A child that has been running a script for a while (not one still taking its chunk)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for pid in children():
            stat = _stat(pid)
            if stat is not None and stat[0] == "R" and _cpu_seconds(pid) >= 0.1:
                return pid
        time.sleep(0.02)
    raise AssertionError("no running child appeared")


def _cpu_seconds(pid: int) -> float:
    fields = _stat_fields(pid)
    if fields is None:
        return 0.0
    utime, stime = fields[11:13]
    return (int(utime) + int(stime)) / os.sysconf("SC_CLK_TCK")


def open_fds() -> set[str]:
    """Our open descriptors (not the one listing them, which is closed again by then)."""
    return {fd for fd in os.listdir("/proc/self/fd") if _is_open(int(fd))}


def _is_open(fd: int) -> bool:
    try:
        os.fstat(fd)
    except OSError:
        return False
    return True


@pytest.fixture(autouse=True)
def no_children_left() -> Iterator[None]:
    _OTHERS.clear()
    _OTHERS.update(_all_children() - fork_server().idle_pids())
    yield
    assert not children(), "a child outlived its batch"


# --- the per-symbol CPU budget --------------------------------------------------------------------


def test_symbol_over_its_cpu_budget_is_killed_and_the_batch_completes() -> None:
    limits = Limits(cpu_seconds=0.5)
    start = time.monotonic()
    gen = run_batch(busy_on(FIRST), ITEMS, params=PARAMS, limits=limits)
    symbol, first = next(gen)
    killed_after = time.monotonic() - start
    outcomes = [(symbol, first), *gen]
    assert first == {
        "value": None,
        "error": {"type": "TimeoutError", "message": "the script used more than 0.5 s of CPU"},
        "stdout": "",
    }
    assert killed_after < 0.5 + 2.0  # the CPU timer, not the parent's wall clock, stopped it
    assert_rest_computed(outcomes, 1)


def _loop_for(seconds: float) -> int:
    """How many turns of the loop below take about ``seconds`` of CPU on this machine (the
    quickest of three tries: a busy machine only makes the loop look slower)."""
    turns = 200_000
    code = compile(f"x = 0\nfor i in range({turns}):\n    x = x + i\n", "<loop>", "exec")
    tries = []
    for _ in range(3):
        started = time.process_time()
        exec(code, {})  # noqa: S102 - our own loop, to calibrate
        tries.append(time.process_time() - started)
    return int(turns * seconds / max(min(tries), 1e-3))


def test_budget_is_per_symbol_not_per_batch() -> None:
    """Each symbol gets the whole budget: together they may use far more than one budget."""
    budget = 0.5
    items = sample_items(8)
    turns = _loop_for(budget * 0.3)  # each symbol uses well under its budget
    source = f"x = 0\nfor i in range({turns}):\n    x = x + i\nresult = close[-1]\n"
    before = os.times()
    outcomes = list(run_batch(source, items, params=PARAMS, limits=Limits(cpu_seconds=budget)))
    fork_server().idle_pids()  # (waits for the last child: only then is its CPU time counted)
    after = os.times()
    assert [out for _, out in outcomes] == [  # no symbol ran out of its budget
        {"value": item.close[-1], "error": None, "stdout": ""} for item in items
    ]
    children_cpu = after.children_user - before.children_user
    assert children_cpu > budget  # 8 symbols: more than one budget in all, all in children
    assert after.user - before.user < 0.5 * budget  # none of it in the worker


# --- a crash from outside -------------------------------------------------------------------------


def _signal_running_child(sig: signal.Signals, sent: list[int]) -> threading.Thread:
    def send() -> None:
        pid = wait_for_running_child()
        sent.append(pid)
        os.kill(pid, sig)

    thread = threading.Thread(target=send, daemon=True)
    thread.start()
    return thread


@pytest.mark.parametrize(
    ("sig", "kind", "message"),
    [
        (signal.SIGSEGV, "RuntimeError", "the script's process crashed (SIGSEGV)"),
        (signal.SIGBUS, "RuntimeError", "the script's process crashed (SIGBUS)"),
        # the kernel's OOM killer sends SIGKILL: that is how a child over its memory dies
        (signal.SIGKILL, "MemoryError", "the script ran out of memory"),
    ],
    ids=["SIGSEGV", "SIGBUS", "SIGKILL"],
)
def test_crashed_child_fails_its_symbol_and_the_rest_continue(
    sig: signal.Signals, kind: str, message: str
) -> None:
    sent: list[int] = []
    thread = _signal_running_child(sig, sent)
    start = time.monotonic()
    outcomes = list(run_batch(busy_on(FIRST), ITEMS, params=PARAMS, limits=Limits(cpu_seconds=30)))
    thread.join(5)
    assert sent, "the child was never signalled"
    assert time.monotonic() - start < 10  # long before the budget or the wall clock
    assert outcomes[0] == (
        FIRST,
        {"value": None, "error": {"type": kind, "message": message}, "stdout": ""},
    )
    assert_rest_computed(outcomes, 1)
    assert gone(sent[0])


# --- closing early --------------------------------------------------------------------------------


def test_closing_the_generator_early_kills_and_reaps_the_child() -> None:
    gen = run_batch(busy_on(ITEMS[1].symbol), ITEMS, params=PARAMS, limits=Limits(cpu_seconds=30))
    symbol, first = next(gen)
    assert (symbol, first["value"]) == (FIRST, ITEMS[0].close[-1])
    pid = wait_for_running_child()  # now busy on the second symbol
    gen.close()
    assert _stat(pid) is None  # killed and reaped: not even a zombie is left
    assert not children()


def test_abandoned_generator_kills_its_child_when_collected() -> None:
    gen = run_batch(busy_on(ITEMS[1].symbol), ITEMS, params=PARAMS, limits=Limits(cpu_seconds=30))
    next(gen)
    pid = wait_for_running_child()
    del gen  # no close(): garbage collection runs the generator's cleanup
    assert _stat(pid) is None


# --- descriptors in the parent --------------------------------------------------------------------


def test_many_batches_leak_no_descriptors_or_children() -> None:
    before = open_fds() - {str(fd) for fd in fork_server().descriptors()}
    scripts = [
        "result = close[-1]",
        "result = sma(close, 5)[-1]",
        "import os",  # refused before any fork
        "result = 1 / 0",
        "x = [0] * 10**9",
        "x = range(3)\nfor i in range(200000):\n    x = map(abs, x)\nresult = sum(x)",  # SIGSEGV
        busy_on(FIRST),
    ]
    for _ in range(4):
        for source in scripts:
            outcomes = list(
                run_batch(source, ITEMS[:2], params=PARAMS, limits=Limits(cpu_seconds=0.2))
            )
            assert len(outcomes) == 2
    for _ in range(5):  # closed early, mid-batch
        gen = run_batch("result = close[-1]", ITEMS, params=PARAMS, limits=Limits())
        next(gen)
        gen.close()
    assert open_fds() - {str(fd) for fd in fork_server().descriptors()} == before
    assert not children()


# --- layer 3 alone: what escaped code finds in the child ------------------------------------------


def run_escaped(
    body: str, items: tuple[SymbolInput, ...] = ITEMS[:2], cpu: float = 2.0
) -> Outcomes:
    limits = Limits(cpu_seconds=cpu, memory_mb=256, stdout_bytes=4096)
    return list(run_isolated(escaped(body), items, json.dumps(PARAMS), limits))


@pytest.fixture
def secret_env() -> Iterator[str]:
    secret = f"canary-{os.urandom(8).hex()}"
    os.environ["CANARY_SECRET"] = secret
    try:
        yield secret
    finally:
        os.environ.pop("CANARY_SECRET", None)


def test_child_environment_is_cleared(secret_env: str) -> None:
    outcomes = run_escaped(
        """
        posix = _module("posix")
        result = {"environ": len(os.environ), "posix_environ": len(posix.environ),
                  "secret": len(os.environ.get("CANARY_SECRET", ""))}
        """
    )
    for _, out in outcomes:
        assert out["value"] == {"environ": 0, "posix_environ": 0, "secret": 0}
    assert secret_env not in json.dumps(outcomes)
    assert os.environ["CANARY_SECRET"] == secret_env  # the parent's own is untouched


def test_child_limits() -> None:
    page = os.sysconf("SC_PAGE_SIZE")
    parent_mb = int(Path("/proc/self/statm").read_text().split()[0]) * page // 2**20
    outcomes = run_escaped(
        """
        resource = _module("resource")
        def soft(which):
            return resource.getrlimit(which)[0]
        fds = []
        for fd in range(64):
            try:
                os.fstat(fd)
                fds.append(fd)
            except builtins.OSError:
                pass
        result = {
            "fsize": soft(resource.RLIMIT_FSIZE), "core": soft(resource.RLIMIT_CORE),
            "nofile": soft(resource.RLIMIT_NOFILE), "nproc": soft(resource.RLIMIT_NPROC),
            "as_mb": soft(resource.RLIMIT_AS) // 2**20, "cpu": soft(resource.RLIMIT_CPU),
            "fds": len(fds), "highest_fd": max(fds),
            "own_group": int(os.getpgrp() == os.getpid()),
        }
        """
    )
    for _, out in outcomes:
        value = out["value"]
        assert out["error"] is None, out
        assert value["fsize"] == 0 and value["core"] == 0 and value["nproc"] == 0
        assert value["nofile"] == MAX_CHILD_FDS == 4
        assert value["fds"] == 4 and value["highest_fd"] == 3  # /dev/null x3 and the pipe
        # What it had mapped, plus 256 MiB: a child of the small fork server maps tens of MiB,
        # not what the worker (this test process) maps.
        assert 256 < value["as_mb"] < 256 + min(128, parent_mb)
        assert 0 < value["cpu"] < 10
        assert value["own_group"] == 1


FORBIDDEN = {  # what escaped code tries -> the system call the child's seccomp filter stops
    "read": ('builtins.open("/etc/hostname", "rb")', "openat"),
    "write": ("builtins.open(TARGET, 'w')", "openat"),
    "proc_environ": ('builtins.open("/proc/self/environ", "rb")', "openat"),
    "socket": ('_module("socket").socket()', "socket"),
    "pipe": ("os.pipe()", "pipe2"),
}


def forbidden(call: str) -> dict[str, Any]:
    message = f"the script made a system call the sandbox forbids ({call}) and was stopped"
    return {"value": None, "error": {"type": "SecurityError", "message": message}, "stdout": ""}


@pytest.mark.parametrize(("attempt", "call"), FORBIDDEN.values(), ids=FORBIDDEN.keys())
def test_child_cannot_open_files_sockets_or_pipes(tmp_path: Path, attempt: str, call: str) -> None:
    """No descriptor is free (RLIMIT_NOFILE), and before that the seccomp filter stops the call:
    the symbol that tried is a SecurityError naming it, and a fresh child runs the next."""
    target = tmp_path / "written.txt"
    outcomes = run_escaped(
        f"""
        if symbol == {FIRST!r}:
            {attempt.replace("TARGET", repr(str(target)))}
        result = close[-1]
        """
    )
    assert outcomes[0] == (FIRST, forbidden(call))
    assert_rest_computed(outcomes, 1)
    assert not target.exists()


def test_child_cannot_open_a_file_even_with_a_free_descriptor(tmp_path: Path) -> None:
    """Close stdin first, so that a descriptor is free: the filter stops the open itself (and
    were it let through, RLIMIT_FSIZE 0 would stop every byte written)."""
    target = tmp_path / "written.txt"
    outcomes = run_escaped(
        f"""
        os.close(0)
        fd = os.open({str(target)!r}, os.O_WRONLY | os.O_CREAT, 0o600)
        os.write(fd, b"secret")
        result = 0
        """,
        items=ITEMS[:1],
    )
    assert outcomes == [(FIRST, forbidden("openat"))]
    assert not target.exists()


def test_child_cannot_start_a_process() -> None:
    """RLIMIT_NPROC 0 does not hold for root, and the child's own group is killed with it; but
    first the filter stops the fork itself."""
    outcomes = run_escaped(
        """
        pid = os.fork()
        if pid == 0:
            _module("time").sleep(60)
            os._exit(0)
        result = pid
        """,
        items=ITEMS[:1],
    )
    assert outcomes == [(FIRST, forbidden("clone"))]


def test_mutations_die_with_the_child() -> None:
    run_escaped(
        """
        helpers = _module("sandbox.helpers")
        helpers.HELPERS["sma"] = None
        helpers.sma = None
        _module("math").pi = 3
        result = 1
        """
    )
    assert sandbox.helpers.HELPERS["sma"] is sandbox.helpers.sma is not None
    assert math.pi != 3
    outcomes = list(run_batch("result = sma(close, 2)[-1]", ITEMS[:1], params={}, limits=Limits()))
    assert outcomes[0][1]["error"] is None


def test_a_fresh_child_holds_nothing_of_the_fork_servers_warm_up() -> None:
    """The fork server runs our own script before it forks any child: none of its names
    (``x``, ``result``) is there for a chunk's first symbol."""
    for source in ("result = x", "result = result", "y = result"):
        outcomes = list(run_batch(source, ITEMS[:2], params={}, limits=Limits()))
        assert [out["error"]["type"] for _, out in outcomes] == ["NameError", "NameError"]


def test_sleeping_child_is_stopped_by_the_wall_clock() -> None:
    """A child that uses no CPU (blocked) never meets its CPU timer: the parent's clock kills it."""
    outcomes = run_escaped(
        """
        if symbol == FIRST:
            _module("time").sleep(60)
        result = close[-1]
        """.replace("FIRST", repr(FIRST)),
        items=ITEMS[:2],
        cpu=0.2,
    )
    assert outcomes[0] == (
        FIRST,
        {
            "value": None,
            "error": {
                "type": "TimeoutError",
                "message": "the script ran over its time budget (0.2 s)",
            },
            "stdout": "",
        },
    )
    assert_rest_computed(outcomes, 1)


# --- a compromised child is not believed ----------------------------------------------------------

FORGED = {
    "string-value": b'["SYM", {"value": "pwned", "error": null, "stdout": ""}]\n',
    "nan-value": b'["SYM", {"value": NaN, "error": null, "stdout": ""}]\n',
    "nested-value": b'["SYM", {"value": {"a": {"b": 1}}, "error": null, "stdout": ""}]\n',
    "wrong-symbol": b'["ZZZZ", {"value": 1, "error": null, "stdout": ""}]\n',
    "extra-key": b'["SYM", {"value": 1, "error": null, "stdout": "", "x": 1}]\n',
    "huge-stdout": b'["SYM", {"value": 1, "error": null, "stdout": "' + b"x" * 5000 + b'"}]\n',
    "surrogate-stdout": b'["SYM", {"value": 1, "error": null, "stdout": "\\ud800"}]\n',
    "bad-error": b'["SYM", {"value": null, "error": {"type": 1, "message": "m"}, "stdout": ""}]\n',
    "error-and-value": b'["SYM", {"value": 1, "error": {"type": "E", "message": "m"}, "stdout": ""}]\n',  # noqa: E501
    "not-json": b"pwned\n",
    "deep-json": b"[" * 100000 + b"\n",
    "endless-line": b"x" * 10_000_000,
}


@pytest.mark.parametrize("line", FORGED.values(), ids=FORGED.keys())
def test_forged_outcome_is_refused_and_the_rest_continue(line: bytes) -> None:
    line = line.replace(b"SYM", FIRST.encode())
    start = time.monotonic()
    outcomes = run_escaped(
        f"""
        if symbol == {FIRST!r}:
            os.write(3, {line!r})
        result = close[-1]
        """,
        items=ITEMS[:3],
    )
    assert time.monotonic() - start < 5
    assert outcomes[0] == (
        FIRST,
        {
            "value": None,
            "error": {"type": "RuntimeError", "message": "the sandbox lost track of the script"},
            "stdout": "",
        },
    )
    assert_rest_computed(outcomes, 1)

"""Running a batch in a forked, resource-limited child process (DESIGN.md, layer 3).

Why a child, and why the parent enforces the limits: a script that catches
every exception (a bare ``except:`` in a loop) or sits inside one long C-level
operation (``10**10**8``) cannot be stopped by an exception raised inside its
own interpreter. So the child arms a CPU timer whose signal *kills* it
(``ITIMER_PROF`` with the default action), the kernel enforces memory, file
and descriptor limits, and the parent watches the clock from outside. When the
child dies, the symbol it was on gets the error, and a fresh child carries on
with the rest. Whatever a script mutated dies with its child.

The child inherits the batch's data by fork (nothing is serialized going in)
and writes one JSON line per symbol to a pipe as soon as the symbol is done.
It uses none of the parent's connections, takes no locks (no logging), clears
its environment and closes every descriptor but the pipe.
"""

from __future__ import annotations

import contextlib
import gc
import json
import os
import posix
import resource
import select
import signal
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from sandbox.compiler import CompiledScript
from sandbox.namespace import base_globals
from sandbox.outcome import (
    MAX_MESSAGE_LENGTH,
    InvalidResult,
    Outcome,
    check_result,
    error,
    outcome,
    valid_text,
)
from sandbox.runner import SymbolInput, run_symbol

# stdin/stdout/stderr on /dev/null and the result pipe (moved to fd 3): with the limit at 4, the
# child can open nothing new (no file, socket or pipe), even if its script got past the guards.
CHILD_NICENESS = 10
MAX_CHILD_FDS = 4
_PIPE_FD = 3
WALL_FACTOR = 5.0  # the parent's clock allows this many times the CPU budget, plus slack
WALL_SLACK_SECONDS = 2.0
_CHILD_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGUSR1, signal.SIGUSR2,
                  signal.SIGCHLD, signal.SIGPIPE, signal.SIGALRM)  # fmt: skip


@dataclass(frozen=True, slots=True)
class Limits:
    """Per-symbol and per-child limits (settings pass them down)."""

    cpu_seconds: float = 1.0
    memory_mb: int = 256
    stdout_bytes: int = 4096

    @property
    def wall_seconds(self) -> float:
        return self.cpu_seconds * WALL_FACTOR + WALL_SLACK_SECONDS


def run_isolated(
    script: CompiledScript,
    items: Sequence[SymbolInput],
    params_json: str,
    limits: Limits,
) -> Iterator[tuple[str, Outcome]]:
    """Yield each symbol's outcome from forked children, forking again after a death.

    Closing the generator early (a cancelled or timed-out job) kills the child.
    """
    start = 0
    while start < len(items):
        child = _Child.spawn(script, items, start, params_json, limits)
        try:
            for symbol, result in child.outcomes(items, start):
                start += 1
                yield symbol, result
            if start < len(items):  # the child died on items[start]
                yield items[start].symbol, child.death_outcome()
                start += 1
        finally:
            child.kill()


class _Child:
    def __init__(self, pid: int, fd: int, limits: Limits):
        self.pid = pid
        self.fd = fd
        self.limits = limits
        self.killed_for_time = False
        self.broken = False  # the child wrote something it never would have: not trusted
        self.status: int | None = None

    @classmethod
    def spawn(cls, script: CompiledScript, items: Sequence[SymbolInput], start: int,
              params_json: str, limits: Limits) -> _Child:  # fmt: skip
        read_fd, write_fd = os.pipe()
        pid = os.fork()
        if pid == 0:  # the child: never returns
            os.close(read_fd)
            _child_main(write_fd, script, items, start, params_json=params_json, limits=limits)
        os.close(write_fd)
        # Its own process group (the child does the same; whichever runs first wins the race),
        # so that kill() also reaches any process the child may have started.
        with contextlib.suppress(OSError):
            os.setpgid(pid, pid)
        return cls(pid, read_fd, limits)

    def outcomes(self, items: Sequence[SymbolInput], start: int) -> Iterator[tuple[str, Outcome]]:
        """Read outcome lines until the child finishes or dies or overruns the clock."""
        buffer = b""
        index = start
        max_line = _max_line(self.limits)
        poller = select.poll()
        poller.register(self.fd, select.POLLIN | select.POLLHUP | select.POLLERR)
        deadline = time.monotonic() + self.limits.wall_seconds
        while index < len(items):
            timeout_ms = max(0, int((deadline - time.monotonic()) * 1000))
            if not poller.poll(timeout_ms):
                self.killed_for_time = True
                self.kill()
                return
            data = os.read(self.fd, 65536)
            if not data:  # EOF: the child exited or died
                return
            *lines, buffer = (buffer + data).split(b"\n")
            for line in lines:
                if index >= len(items):
                    break
                symbol = items[index].symbol
                result = _checked(line, symbol, self.limits)
                if result is None:
                    self.broken = True
                    self.kill()
                    return
                yield symbol, result
                index += 1
                deadline = time.monotonic() + self.limits.wall_seconds
            if len(buffer) > max_line:  # no outcome we write is this long: stop reading
                self.broken = True
                self.kill()
                return

    def kill(self) -> None:
        if self.status is None:
            with contextlib.suppress(OSError):
                os.killpg(self.pid, signal.SIGKILL)
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGKILL)
            _, self.status = os.waitpid(self.pid, 0)
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def death_outcome(self) -> Outcome:
        """What to report for the symbol the child was running when it died."""
        self.kill()
        status = self.status or 0
        budget = f"{self.limits.cpu_seconds:g} s"
        if self.broken:
            return outcome(None, error("RuntimeError", "the sandbox lost track of the script"))
        if self.killed_for_time:
            overran = f"the script ran over its time budget ({budget})"
            return outcome(None, error("TimeoutError", overran))
        if os.WIFSIGNALED(status):
            sig = os.WTERMSIG(status)
            if sig in (signal.SIGPROF, signal.SIGXCPU):
                overran = f"the script used more than {budget} of CPU"
                return outcome(None, error("TimeoutError", overran))
            if sig == signal.SIGKILL:
                return outcome(None, error("MemoryError", "the script ran out of memory"))
            crashed = f"the script's process crashed ({signal.Signals(sig).name})"
            return outcome(None, error("RuntimeError", crashed))
        return outcome(None, error("RuntimeError", "the script's process ended unexpectedly"))


def _child_main(fd: int, script: CompiledScript, items: Sequence[SymbolInput], start: int, *,
                params_json: str, limits: Limits) -> None:  # fmt: skip
    """The child's whole life: lock down, run symbols, report each, exit without cleanup."""
    code = 0
    try:
        fd = _lock_down(fd, limits)
        shared = base_globals()
        # What we inherited is never a script's garbage: keep collections to the scripts' objects.
        gc.freeze()
        cpu = limits.cpu_seconds
        _, cpu_hard = resource.getrlimit(resource.RLIMIT_CPU)
        for item in items[start:]:
            # A whole-symbol backstop in whole seconds, in case the timer were ever disarmed.
            used = resource.getrusage(resource.RUSAGE_SELF)
            cap = int(used.ru_utime + used.ru_stime + cpu + 2)
            resource.setrlimit(resource.RLIMIT_CPU, (cap, cpu_hard))
            signal.setitimer(signal.ITIMER_PROF, cpu)
            result = run_symbol(script, shared, item, params_json, limits.stdout_bytes)
            # Reference cycles the script left behind would eat the next symbol's memory; their
            # collection is charged to the symbol that made them.
            gc.collect()
            signal.setitimer(signal.ITIMER_PROF, 0)
            _write_all(fd, _line(item.symbol, result))
    except BaseException:  # the child must never unwind into the parent's code
        code = 70
    finally:
        os._exit(code)


def _lock_down(fd: int, limits: Limits) -> int:
    """Drop everything the child could misuse; answers the pipe's new descriptor."""
    os.setpgid(0, 0)
    # User code yields the CPU to the API and to the workers' own bookkeeping: under load,
    # submits and polls stay quick while jobs take what is left.
    os.nice(CHILD_NICENESS)
    for sig in _CHILD_SIGNALS:
        signal.signal(sig, signal.SIG_DFL)
    # SIGPROF's default action terminates the process: the CPU budget holds even inside C code.
    # A mask inherited from the forking thread must not hold the budget's signals back.
    signal.signal(signal.SIGPROF, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGPROF, signal.SIGXCPU})
    os.environ.clear()
    posix.environ.clear()  # os.environ is a copy of this one; it held the same secrets
    devnull = os.open(os.devnull, os.O_RDWR)
    for target in (0, 1, 2):
        os.dup2(devnull, target)
    os.close(devnull)
    os.closerange(3, fd)
    os.closerange(fd + 1, _max_fd())
    if fd != _PIPE_FD:
        os.dup2(fd, _PIPE_FD)
        os.close(fd)
    page = os.sysconf("SC_PAGE_SIZE")
    with open("/proc/self/statm", "rb") as statm:
        current = int(statm.read().split()[0]) * page
    memory = current + limits.memory_mb * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
    resource.setrlimit(resource.RLIMIT_FSIZE, (0, 0))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    resource.setrlimit(resource.RLIMIT_NOFILE, (MAX_CHILD_FDS, MAX_CHILD_FDS))
    # No new processes (the kernel does not apply this to root: run workers as a plain user).
    resource.setrlimit(resource.RLIMIT_NPROC, (0, 0))
    return _PIPE_FD


def _max_fd() -> int:
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    return soft if soft != resource.RLIM_INFINITY else 65536


def _max_line(limits: Limits) -> int:
    """The longest outcome line a child can honestly write (JSON escapes take up to 6 bytes)."""
    return 6 * (limits.stdout_bytes + MAX_MESSAGE_LENGTH) + 65536


def _checked(line: bytes, symbol: str, limits: Limits) -> Outcome | None:
    """The child's outcome for ``symbol``, or None if the line is not one the child could write.

    The child ran untrusted code. Should that code ever get past the compiler and the guards,
    it could write anything to the pipe, so the parent checks again what layer 5 promises.
    """
    try:
        got, result = json.loads(line)
    except (ValueError, TypeError, RecursionError):
        return None
    if type(got) is not str or got != symbol or type(result) is not dict:
        return None
    if set(result) != {"value", "error", "stdout"}:
        return None
    value, err, stdout = result["value"], result["error"], result["stdout"]
    if type(stdout) is not str or valid_text(stdout) != stdout:
        return None
    if len(stdout.encode("utf-8")) > limits.stdout_bytes:
        return None
    if err is not None:
        if value is not None or not _valid_error(err):
            return None
        return outcome(None, err, stdout)
    try:
        return outcome(check_result(value), None, stdout)
    except InvalidResult:
        return None


def _valid_error(err: Any) -> bool:
    if type(err) is not dict or not {"type", "message"} <= set(err) <= {"type", "message", "line"}:
        return False
    kind, message, line = err["type"], err["message"], err.get("line", 1)
    return (
        type(kind) is str
        and 0 < len(kind) <= 100
        and type(message) is str
        and len(message) <= MAX_MESSAGE_LENGTH
        and valid_text(kind + message) == kind + message
        and type(line) is int
        and line > 0
    )


def _line(symbol: str, result: dict[str, Any]) -> bytes:
    return json.dumps([symbol, result], separators=(",", ":")).encode() + b"\n"


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]

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

import json
import os
import resource
import select
import signal
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from sandbox.compiler import CompiledScript
from sandbox.namespace import base_globals
from sandbox.outcome import Outcome, error, outcome
from sandbox.runner import SymbolInput, run_symbol

MAX_CHILD_FDS = 16
WALL_FACTOR = 5.0  # the parent's clock allows this many times the CPU budget, plus slack
WALL_SLACK_SECONDS = 2.0
_CHILD_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGUSR1, signal.SIGUSR2,
                  signal.SIGCHLD, signal.SIGPIPE, signal.SIGALRM)  # fmt: skip


@dataclass(frozen=True, slots=True)
class ChildLimits:
    cpu_seconds: float
    memory_mb: int
    stdout_bytes: int

    @property
    def wall_seconds(self) -> float:
        return self.cpu_seconds * WALL_FACTOR + WALL_SLACK_SECONDS


def run_isolated(
    script: CompiledScript,
    items: Sequence[SymbolInput],
    params_json: str,
    limits: ChildLimits,
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
    def __init__(self, pid: int, fd: int, limits: ChildLimits):
        self.pid = pid
        self.fd = fd
        self.limits = limits
        self.killed_for_time = False
        self.status: int | None = None

    @classmethod
    def spawn(cls, script: CompiledScript, items: Sequence[SymbolInput], start: int,
              params_json: str, limits: ChildLimits) -> _Child:  # fmt: skip
        read_fd, write_fd = os.pipe()
        pid = os.fork()
        if pid == 0:  # the child: never returns
            os.close(read_fd)
            _child_main(write_fd, script, items, start, params_json, limits)
        os.close(write_fd)
        return cls(pid, read_fd, limits)

    def outcomes(self, items: Sequence[SymbolInput], start: int) -> Iterator[tuple[str, Outcome]]:
        """Read outcome lines until the child finishes or dies or overruns the clock."""
        buffer = b""
        index = start
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
            buffer += data
            while b"\n" in buffer:
                line, buffer = buffer.split(b"\n", 1)
                symbol, result = json.loads(line)
                if symbol != items[index].symbol:  # cannot happen unless the child is broken
                    result = outcome(None, error("RuntimeError", "the sandbox lost track"))
                    symbol = items[index].symbol
                yield symbol, result
                index += 1
                deadline = time.monotonic() + self.limits.wall_seconds

    def kill(self) -> None:
        if self.status is None:
            try:
                os.kill(self.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            _, self.status = os.waitpid(self.pid, 0)
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def death_outcome(self) -> Outcome:
        """What to report for the symbol the child was running when it died."""
        self.kill()
        status = self.status or 0
        budget = f"{self.limits.cpu_seconds:g} s"
        if self.killed_for_time:
            return outcome(None, error("TimeoutError", f"the script ran over its time budget ({budget})"))
        if os.WIFSIGNALED(status):
            sig = os.WTERMSIG(status)
            if sig in (signal.SIGPROF, signal.SIGXCPU):
                return outcome(None, error("TimeoutError", f"the script used more than {budget} of CPU"))
            if sig == signal.SIGKILL:
                return outcome(None, error("MemoryError", "the script ran out of memory"))
            return outcome(None, error("RuntimeError",
                                       f"the script's process crashed ({signal.Signals(sig).name})"))  # fmt: skip
        return outcome(None, error("RuntimeError", "the script's process ended unexpectedly"))


def _child_main(fd: int, script: CompiledScript, items: Sequence[SymbolInput], start: int,
                params_json: str, limits: ChildLimits) -> None:  # fmt: skip
    """The child's whole life: lock down, run symbols, report each, exit without cleanup."""
    code = 0
    try:
        _lock_down(fd, limits)
        shared = base_globals()
        cpu = limits.cpu_seconds
        _, cpu_hard = resource.getrlimit(resource.RLIMIT_CPU)
        for item in items[start:]:
            # A whole-symbol backstop in whole seconds, in case the timer were ever disarmed.
            used = resource.getrusage(resource.RUSAGE_SELF)
            cap = int(used.ru_utime + used.ru_stime + cpu + 2)
            resource.setrlimit(resource.RLIMIT_CPU, (cap, cpu_hard))
            signal.setitimer(signal.ITIMER_PROF, cpu)
            result = run_symbol(script, shared, item, params_json, limits.stdout_bytes)
            signal.setitimer(signal.ITIMER_PROF, 0)
            _write_all(fd, _line(item.symbol, result))
    except BaseException:  # noqa: BLE001 - the child must never unwind into the parent's code
        code = 70
    finally:
        os._exit(code)


def _lock_down(fd: int, limits: ChildLimits) -> None:
    for sig in _CHILD_SIGNALS:
        signal.signal(sig, signal.SIG_DFL)
    # SIGPROF's default action terminates the process: the CPU budget holds even inside C code.
    signal.signal(signal.SIGPROF, signal.SIG_DFL)
    os.environ.clear()
    devnull = os.open(os.devnull, os.O_RDWR)
    for target in (0, 1, 2):
        os.dup2(devnull, target)
    os.close(devnull)
    os.closerange(3, fd)
    os.closerange(fd + 1, _max_fd())
    page = os.sysconf("SC_PAGE_SIZE")
    with open("/proc/self/statm", "rb") as statm:
        current = int(statm.read().split()[0]) * page
    memory = current + limits.memory_mb * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
    resource.setrlimit(resource.RLIMIT_FSIZE, (0, 0))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    resource.setrlimit(resource.RLIMIT_NOFILE, (MAX_CHILD_FDS, MAX_CHILD_FDS))


def _max_fd() -> int:
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    return soft if soft != resource.RLIM_INFINITY else 65536


def _line(symbol: str, result: dict[str, Any]) -> bytes:
    return json.dumps([symbol, result], separators=(",", ":")).encode() + b"\n"


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]

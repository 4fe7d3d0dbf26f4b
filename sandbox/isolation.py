"""Running a batch in resource-limited child processes (DESIGN.md, layer 3).

Why a child, and why the worker enforces the limits from outside: a script that catches
every exception (a bare ``except:`` in a loop) or sits inside one long C-level operation
(``10**10**8``) cannot be stopped by an exception raised inside its own interpreter. So the
child arms a CPU timer whose signal *kills* it, the kernel enforces memory, file and
descriptor limits, and the worker watches the clock. When a child dies, the symbol it was on
gets the error, and a fresh child carries on with the rest. Whatever a script mutated dies
with its child.

Children come from a fork server (zygote.py), a clean interpreter each worker process starts
before its first job, and which makes the next idle child as each chunk finishes: a chunk
pays neither for a fork of the worker nor for a child's set-up, and no child ever holds the
worker's memory. The chunk goes to the child packed in a memory file (wire.py; the worker
reuses the files of dead children); the child writes one JSON line per symbol to its result
pipe as soon as the symbol is done, which the worker re-checks.

This module is the run-and-retry policy: which child runs what, how long it may take, and what
a death costs. The fork server's client is fork_client.py, the bytes in and out transport.py,
the re-check of each line recheck.py.
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import socket
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from sandbox import wire
from sandbox.child import EXIT_RETIRED, MAX_CHILD_FDS, RECEIVED
from sandbox.compiler import CompiledScript
from sandbox.fork_client import ForkServer, ForkServerError, Idle, close_idle, fork_server, reap
from sandbox.outcome import Outcome, error, outcome
from sandbox.recheck import checked, max_line
from sandbox.runner import SymbolInput
from sandbox.seccomp_filter import FORBIDDEN_MARK, syscall_name
from sandbox.transport import read_available, send_chunk

__all__ = [
    "MAX_CHILD_FDS",
    "ForkServer",
    "ForkServerError",
    "Limits",
    "fork_server",
    "run_isolated",
]

WALL_FACTOR = 5.0  # the worker's clock allows this many times the CPU budget, plus slack
WALL_SLACK_SECONDS = 2.0
_SPAWN_ATTEMPTS = 3
# The worker reads its child's lines every 10 ms, not as each arrives: each wake-up preempts
# a child at work (on two busy cores, 2 ms cost about 1 ms of CPU per 100-symbol chunk more
# than 10 ms), and no reader sees the difference: outcomes reach Redis in batches anyway.
# The child's end (it closes the pipe after its last line, or dies) wakes the worker at once.
_READ_EVERY_SECONDS = 0.010


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
    """Yield each symbol's outcome from children of the fork server, a fresh child carrying
    on after a death.

    Closing the generator early (a cancelled or timed-out job) kills the child.
    """
    start = 0
    lost = 0  # children in a row that died before they saw their chunk
    while start < len(items):
        child = _Child.spawn(script, items, start, params_json, limits)
        began = start
        try:
            for symbol, result in child.outcomes(items, start):
                start += 1
                yield symbol, result
            if start < len(items):  # the child died, or stopped to be replaced
                if start > began and child.retired():
                    continue  # a fresh child for the rest: the last symbol left a mess
                if start == began and not child.received_chunk():
                    lost += 1  # killed from outside while idle: nothing of the chunk ran
                    if lost >= _SPAWN_ATTEMPTS:
                        raise ForkServerError("sandbox children die before they start")
                    continue
                yield items[start].symbol, child.death_outcome()  # it died on this one
                start += 1
        finally:
            if start == len(items) and child.status is None:
                child.release()  # done: it is exiting; no one need wait for that now
            else:
                child.kill()
            child.server.prepare_next()


class _Child:
    """A child at work on a chunk: its outcomes as they come, and how it ended."""

    def __init__(self, idle: Idle, limits: Limits, server: ForkServer, memory_file: int):
        self.pid = idle.pid
        self.server = server
        self.memory_file = memory_file
        self.fd = idle.result_fd
        self.command: socket.socket | None = idle.command
        self.limits = limits
        self.killed_for_time = False
        self.broken = False  # the child wrote something it never would have: not trusted
        self.forbidden_call: int | None = None  # the system call its seccomp filter trapped
        self.status: int | None = None

    @classmethod
    def spawn(cls, script: CompiledScript, items: Sequence[SymbolInput], start: int,
              params_json: str, limits: Limits) -> _Child:  # fmt: skip
        """An idle child from the fork server, given ``items[start:]`` to run."""
        request = wire.encode(
            script,
            items[start:],
            params_json=params_json,
            cpu_seconds=limits.cpu_seconds,
            stdout_bytes=limits.stdout_bytes,
            memory_mb=limits.memory_mb,
        )
        for attempt in range(_SPAWN_ATTEMPTS):
            idle = _take_idle(fresh_server=attempt > 0)
            server = fork_server()
            memory_file = send_chunk(server, idle, request)
            if memory_file is not None:
                return cls(idle, limits, server, memory_file)
            # It died while idle (killed from outside?): nothing of ours ran there.
            close_idle(idle)
            reap(idle.pid)
        raise ForkServerError("no sandbox child could be started")

    def outcomes(self, items: Sequence[SymbolInput], start: int) -> Iterator[tuple[str, Outcome]]:
        """Read outcome lines until the child finishes or dies or overruns the clock."""
        buffer = b""
        index = start
        max_line_bytes = max_line(self.limits.stdout_bytes)
        poller = select.poll()
        poller.register(self.fd, 0)  # hang-up and errors only: lines are read on our clock
        os.set_blocking(self.fd, False)
        deadline = time.monotonic() + self.limits.wall_seconds
        while index < len(items):
            ended = poller.poll(_READ_EVERY_SECONDS * 1000)
            data, eof = read_available(self.fd)
            if not data:
                if eof or ended:  # the child exited or died
                    return
                if time.monotonic() > deadline:
                    self.killed_for_time = True
                    self.kill()
                    return
                continue
            *lines, buffer = (buffer + data).split(b"\n")
            for line in lines:
                if index >= len(items):
                    break
                symbol = items[index].symbol
                if line.startswith(FORBIDDEN_MARK):  # its filter stopped it (seccomp_filter.py)
                    self.forbidden_call = _number(line[len(FORBIDDEN_MARK) :])
                    self.kill()
                    return
                result = checked(line, symbol, self.limits.stdout_bytes)
                if result is None:
                    self.broken = True
                    self.kill()
                    return
                yield symbol, result
                index += 1
                deadline = time.monotonic() + self.limits.wall_seconds
            if len(buffer) > max_line_bytes:  # no outcome we write is this long: stop reading
                self.broken = True
                self.kill()
                return

    def retired(self) -> bool:
        """Whether the child exited on its own after a symbol, for a fresh child to carry on
        (child.collect_until_quiet): no symbol's fault."""
        self.kill()
        status = self.status or 0
        return os.WIFEXITED(status) and os.WEXITSTATUS(status) == EXIT_RETIRED

    def received_chunk(self) -> bool:
        """Whether the child (now dead) had taken its chunk before it died."""
        if self.command is None:
            return True
        self.command.settimeout(1.0)
        try:
            return self.command.recv(len(RECEIVED)) == RECEIVED
        except OSError:
            return False

    def release(self) -> None:
        """Stop it and close our ends, leaving the wait for its exit to the fork server's
        next call (the job's last results need not wait for a process to be torn down)."""
        with contextlib.suppress(OSError):
            os.killpg(self.pid, signal.SIGKILL)
        fork_server().reap_later(self.pid)
        self.status = 0
        self.kill()

    def kill(self) -> None:
        if self.status is None:
            self.status = reap(self.pid) or 0
        if self.command is not None:
            self.command.close()
            self.command = None
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1
        if self.memory_file >= 0:  # the child is dead or killed: it reads the file no more
            self.server.chunk_file_free(self.memory_file)
            self.memory_file = -1

    def death_outcome(self) -> Outcome:
        """What to report for the symbol the child was running when it died."""
        self.kill()
        status = self.status or 0
        budget = f"{self.limits.cpu_seconds:g} s"
        if self.broken:
            return outcome(None, error("RuntimeError", "the sandbox lost track of the script"))
        if self.forbidden_call is not None or (
            os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGSYS
        ):
            call = "" if self.forbidden_call is None else f" ({syscall_name(self.forbidden_call)})"
            stopped = f"the script made a system call the sandbox forbids{call} and was stopped"
            return outcome(None, error("SecurityError", stopped))
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


def _number(text: bytes) -> int:
    try:
        return int(text.strip())
    except ValueError:
        return -1


def _take_idle(*, fresh_server: bool) -> Idle:
    server = fork_server()
    if fresh_server:  # the last child died idle: the server may be gone too
        try:
            return server.take()
        except ForkServerError:
            server.close()
            server = fork_server()
    return server.take()

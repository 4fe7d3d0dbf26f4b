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
pipe as soon as the symbol is done, and this module re-checks each line.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import select
import signal
import socket
import subprocess
import sys
import threading
import time
from array import array
from collections import deque
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from sandbox import wire
from sandbox.child import LIBC, MAX_CHILD_FDS, RECEIVED, write_all
from sandbox.compiler import CompiledScript
from sandbox.outcome import (
    MAX_MESSAGE_LENGTH,
    InvalidResult,
    Outcome,
    check_result,
    error,
    outcome,
    valid_text,
)
from sandbox.runner import SymbolInput

__all__ = ["MAX_CHILD_FDS", "ForkServer", "Limits", "fork_server", "run_isolated"]

WALL_FACTOR = 5.0  # the worker's clock allows this many times the CPU budget, plus slack
WALL_SLACK_SECONDS = 2.0
PR_SET_CHILD_SUBREAPER = 36
_PROJECT_ROOT = Path(__file__).resolve().parent.parent
_READY_TIMEOUT_SECONDS = 10.0  # a fork server answers in milliseconds; this means it is stuck
_SPAWN_ATTEMPTS = 3
# The worker reads its child's lines every 10 ms, not as each arrives: each wake-up preempts
# a child at work (on two busy cores, 2 ms cost about 1 ms of CPU per 100-symbol chunk more
# than 10 ms), and no reader sees the difference: outcomes reach Redis in batches anyway.
# The child's end (it closes the pipe after its last line, or dies) wakes the worker at once.
_READ_EVERY_SECONDS = 0.010
_IOV_MAX = os.sysconf("SC_IOV_MAX")
_SPARE_CHUNK_FILES = 2


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
            if start < len(items):  # the child died
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


class ForkServerError(RuntimeError):
    """The fork server could not give a child (it died, or it is stuck)."""


@dataclass(slots=True)
class _Idle:
    """An idle child: its pid, the read end of its result pipe, our end of its command socket."""

    pid: int
    result_fd: int
    command: socket.socket


class ForkServer:
    """This process's fork server and the idle children it prepared (one per process)."""

    def __init__(self) -> None:
        _become_subreaper()
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self.owner = os.getpid()
        self.process = subprocess.Popen(
            [sys.executable, "-E", "-s", "-m", "sandbox.zygote", str(theirs.fileno())],
            pass_fds=(theirs.fileno(),),
            env={},
            cwd=_PROJECT_ROOT,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
        )
        theirs.close()
        self.control = ours
        self.requested = 0
        self.idle: deque[_Idle] = deque()
        self.finished: list[int] = []  # released children, not yet waited for
        self.chunk_files: list[int] = []  # memory files no living child maps any more
        self.closed = False
        self.lock = threading.Lock()
        self._request()

    def take(self) -> _Idle:
        """An idle child, all ours (asked for now if none is ready or on its way)."""
        with self.lock:
            self._reap_finished()
            if not self.idle:
                if not self.requested:
                    self._request()
                self._receive()
            return self.idle.popleft()

    def prepare_next(self) -> None:
        """Have the next idle child made now, once a chunk is done: made while the chunk ran,
        it would take CPU from that chunk's own scripts."""
        with self.lock:
            if not self.idle and not self.requested and not self.closed:
                with contextlib.suppress(OSError):  # the server is gone: take() will say so
                    self._request()

    def chunk_file(self) -> int:
        """A memory file to hand a chunk in: one a dead child had, if there is one (rewriting
        its pages costs a copy; a new file costs as many fresh, zeroed pages)."""
        with self.lock:
            if self.chunk_files:
                return self.chunk_files.pop()
        return os.memfd_create("chunk", os.MFD_CLOEXEC)

    def chunk_file_free(self, memory_file: int) -> None:
        """Take back a chunk's file once the child it was sent to is killed."""
        with self.lock:
            if self.closed or len(self.chunk_files) >= _SPARE_CHUNK_FILES:
                os.close(memory_file)
            else:
                self.chunk_files.append(memory_file)

    def reap_later(self, pid: int) -> None:
        with self.lock:
            self.finished.append(pid)

    def idle_pids(self) -> set[int]:
        """The fork server and its idle children (waits for those requested): not leftovers.
        Released children are waited for first: none of them is left either."""
        with self.lock:
            self._reap_finished()
            self._receive_requested()
            return {self.process.pid, *(idle.pid for idle in self.idle)}

    def descriptors(self) -> set[int]:
        """The descriptors this server holds open (its socket, its idle children's ends, its
        spare chunk files)."""
        with self.lock:
            self._receive_requested()
            held = {self.control.fileno(), *self.chunk_files}
            for idle in self.idle:
                held.update((idle.result_fd, idle.command.fileno()))
            return held

    def _reap_finished(self) -> None:
        while self.finished:
            _reap(self.finished.pop())

    def _receive_requested(self) -> None:
        while self.requested:
            self._receive()

    def close(self) -> None:
        """Stop the fork server; idle children exit when their command socket closes."""
        with self.lock:
            self._reap_finished()
            self.control.close()
            for idle in self.idle:
                _close_idle(idle)
                _reap(idle.pid)
            self.idle.clear()
            for memory_file in self.chunk_files:
                os.close(memory_file)
            self.chunk_files.clear()
            self.closed = True
            self.process.kill()
            self.process.wait()

    def alive(self) -> bool:
        return self.process.poll() is None

    def _request(self) -> None:
        self.control.send(b"1")
        self.requested += 1

    def _receive(self) -> None:
        if not select.select([self.control], [], [], _READY_TIMEOUT_SECONDS)[0]:
            raise ForkServerError("the fork server did not answer")
        message, fds, _, _ = socket.recv_fds(self.control, 16, 2)
        if message != b"child" or len(fds) != 2:
            for fd in fds:
                os.close(fd)
            raise ForkServerError("the fork server has gone")
        self.requested -= 1
        result_fd, command_fd = fds
        command = socket.socket(fileno=command_fd)
        command.settimeout(_READY_TIMEOUT_SECONDS)
        try:
            pid = int(_read_line(command))  # the child's first words, before any chunk
        except (OSError, ValueError) as exc:
            os.close(result_fd)
            command.close()
            raise ForkServerError("an idle child died before it was ready") from exc
        self.idle.append(_Idle(pid, result_fd, command))


class _Current:
    server: ForkServer | None = None
    lock = threading.Lock()


def fork_server() -> ForkServer:
    """This process's fork server, started on first use (a worker starts it before any job)."""
    with _Current.lock:
        server = _Current.server
        if server is not None and (server.owner != os.getpid() or not server.alive()):
            if server.owner == os.getpid():
                server.close()
            server = None  # a forked process never uses its parent's server
        if server is None:
            server = _Current.server = ForkServer()
        return server


def _become_subreaper() -> None:
    """Children of our children's children are adopted by us: we can wait for them."""
    if LIBC.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_CHILD_SUBREAPER) failed")


def _read_line(command: socket.socket) -> bytes:
    data = b""
    while not data.endswith(b"\n"):
        more = command.recv(64)
        if not more:
            raise ValueError("closed before a whole line")
        data += more
    return data


def _close_idle(idle: _Idle) -> None:
    os.close(idle.result_fd)
    idle.command.close()


def _reap(pid: int) -> int | None:
    """Kill ``pid`` and its group and wait for it; its exit status (None if not ours).

    Processes it started (escaped code run as root could) die with its group and, once it is
    gone, are ours to wait for too (we are their subreaper): none is left as a zombie.
    """
    with contextlib.suppress(OSError):
        os.killpg(pid, signal.SIGKILL)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    try:
        status = os.waitpid(pid, 0)[1]
    except ChildProcessError:
        return None
    with contextlib.suppress(ChildProcessError):
        while os.waitpid(-pid, 0)[0]:  # the rest of its group, killed above
            pass
    return status


class _Child:
    """A child at work on a chunk: its outcomes as they come, and how it ended."""

    def __init__(self, idle: _Idle, limits: Limits, server: ForkServer, memory_file: int):
        self.pid = idle.pid
        self.server = server
        self.memory_file = memory_file
        self.fd = idle.result_fd
        self.command: socket.socket | None = idle.command
        self.limits = limits
        self.killed_for_time = False
        self.broken = False  # the child wrote something it never would have: not trusted
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
            memory_file = _send_chunk(server, idle, request)
            if memory_file is not None:
                return cls(idle, limits, server, memory_file)
            # It died while idle (killed from outside?): nothing of ours ran there.
            _close_idle(idle)
            _reap(idle.pid)
        raise ForkServerError("no sandbox child could be started")

    def outcomes(self, items: Sequence[SymbolInput], start: int) -> Iterator[tuple[str, Outcome]]:
        """Read outcome lines until the child finishes or dies or overruns the clock."""
        buffer = b""
        index = start
        max_line = _max_line(self.limits)
        poller = select.poll()
        poller.register(self.fd, 0)  # hang-up and errors only: lines are read on our clock
        os.set_blocking(self.fd, False)
        deadline = time.monotonic() + self.limits.wall_seconds
        while index < len(items):
            ended = poller.poll(_READ_EVERY_SECONDS * 1000)
            data, eof = _read_available(self.fd)
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
            self.status = _reap(self.pid) or 0
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


def _read_available(fd: int) -> tuple[bytes, bool]:
    """Whatever the pipe holds now, and whether it has ended (a non-blocking descriptor)."""
    chunks = []
    while True:
        try:
            data = os.read(fd, 1 << 20)
        except BlockingIOError:
            return b"".join(chunks), False
        if not data:
            return b"".join(chunks), True
        chunks.append(data)


def _take_idle(*, fresh_server: bool) -> _Idle:
    server = fork_server()
    if fresh_server:  # the last child died idle: the server may be gone too
        try:
            return server.take()
        except ForkServerError:
            server.close()
            server = fork_server()
    return server.take()


def _send_chunk(server: ForkServer, idle: _Idle, request: list[bytes | array]) -> int | None:
    """Hand the chunk to the child in a memory file: the file, to be freed once the child is
    killed, or None if the child is gone.

    The file may be one an earlier child had: it is rewritten from the start and cut to this
    chunk's length, so that nothing of an earlier chunk (another user's script or params)
    is left in it for this child to map.
    """
    memory_file = server.chunk_file()
    try:
        os.lseek(memory_file, 0, os.SEEK_SET)
        os.ftruncate(memory_file, _write_buffers(memory_file, request))
        socket.send_fds(idle.command, [b"chunk"], [memory_file])
        return memory_file
    except OSError:
        server.chunk_file_free(memory_file)  # never sent: no child maps it
        return None


def _write_buffers(fd: int, buffers: Sequence[bytes | array]) -> int:
    """All the buffers, in order, with as few system calls as the kernel allows; their size."""
    total = 0
    for first in range(0, len(buffers), _IOV_MAX):
        batch = buffers[first : first + _IOV_MAX]
        written = os.writev(fd, batch)
        for buffer in batch:  # a short write (never seen on a memory file): the rest one by one
            size = len(buffer) * (buffer.itemsize if isinstance(buffer, array) else 1)
            if written < size:
                write_all(fd, memoryview(buffer).cast("B")[written:])
            written = max(0, written - size)
            total += size
    return total


def _max_line(limits: Limits) -> int:
    """The longest outcome line a child can honestly write (JSON escapes take up to 6 bytes)."""
    return 6 * (limits.stdout_bytes + MAX_MESSAGE_LENGTH) + 65536


def _checked(line: bytes, symbol: str, limits: Limits) -> Outcome | None:
    """The child's outcome for ``symbol``, or None if the line is not one the child could write.

    The child ran untrusted code. Should that code ever get past the compiler and the guards,
    it could write anything to the pipe, so the parent checks again what layer 5 promises.
    """
    try:
        got, result = orjson.loads(line)  # (it refuses bytes that are not UTF-8, NaN, deep nesting)
    except (ValueError, TypeError, RecursionError):  # (orjson.JSONDecodeError is a ValueError)
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

"""The worker's side of the fork server (zygote.py): starting it, taking idle children from it,
and the memory files chunks travel in.

One fork server per worker process, started before its first job (``fork_server()``); it
makes the next idle child as each chunk ends. The worker is the children's subreaper: it
waits for each one itself and reads from its exit status how it died (``reap``).
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
from collections import deque
from dataclasses import dataclass
from pathlib import Path

from sandbox.child import LIBC

__all__ = [
    "ConfinementRefusedError",
    "ForkServer",
    "ForkServerError",
    "Idle",
    "close_idle",
    "fork_server",
    "reap",
    "set_confinement_mode",
]

PR_SET_CHILD_SUBREAPER = 36
_PROJECT_ROOT = Path(__file__).resolve().parent.parent
_READY_TIMEOUT_SECONDS = 10.0  # a fork server answers in milliseconds; this means it is stuck
_SPARE_CHUNK_FILES = 2
FORK_SERVER_ENV = {"PYTHONHASHSEED": "0"}  # the whole environment (zygote.py clears even this)
# Its first word (after its imports, its warm-up and its namespaces): slow on a loaded machine.
_HELLO_TIMEOUT_SECONDS = 60.0


class ForkServerError(RuntimeError):
    """The fork server could not give a child (it died, or it is stuck)."""


class ConfinementRefusedError(ForkServerError):
    """The kernel refused a confinement step and the mode is strict: no user code runs."""


@dataclass(slots=True)
class Idle:
    """An idle child: its pid, the read end of its result pipe, our end of its command socket."""

    pid: int
    result_fd: int
    command: socket.socket


class ForkServer:
    """This process's fork server and the idle children it prepared (one per process)."""

    def __init__(self, mode: str | None = None) -> None:
        become_subreaper()
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self.owner = os.getpid()
        self.mode = mode or _Current.mode
        self._confinement: str | None = None  # what the server says held (its first word)
        self._refused: str | None = None  # or why it will make no child
        self.process = subprocess.Popen(
            [sys.executable, "-s", "-m", "sandbox.zygote", str(theirs.fileno()), self.mode],
            pass_fds=(theirs.fileno(),),
            # Nothing of ours but a fixed hash seed: with a random one, each fork server
            # iterated a set of strings in its own order, and the same script on the same data
            # gave different results on different workers (API.md promises the same). A
            # script can collide its own hashes only to burn its own CPU budget.
            env=FORK_SERVER_ENV,
            cwd=_PROJECT_ROOT,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
        )
        theirs.close()
        self.control = ours
        self.requested = 0
        self.idle: deque[Idle] = deque()
        self.finished: list[int] = []  # released children, not yet waited for
        self.chunk_files: list[int] = []  # memory files no living child maps any more
        self.closed = False
        self.lock = threading.Lock()
        self._request()

    def take(self) -> Idle:
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
            reap(self.finished.pop())

    def _receive_requested(self) -> None:
        while self.requested:
            self._receive()

    def close(self) -> None:
        """Stop the fork server; idle children exit when their command socket closes."""
        with self.lock:
            self._reap_finished()
            self.control.close()
            for idle in self.idle:
                close_idle(idle)
                reap(idle.pid)
            self.idle.clear()
            for memory_file in self.chunk_files:
                os.close(memory_file)
            self.chunk_files.clear()
            self.closed = True
            self.process.kill()
            self.process.wait()

    def alive(self) -> bool:
        return self.process.poll() is None

    @property
    def confinement(self) -> str:
        """``full`` or ``relaxed (missing: ...)``; raises ``ConfinementRefusedError``."""
        with self.lock:
            return self._hello()

    def _hello(self) -> str:
        """The server's first word, read once: what confinement held, or why none will."""
        if self._refused is not None:
            raise ConfinementRefusedError(self._refused)
        if self._confinement is None:
            if not select.select([self.control], [], [], _HELLO_TIMEOUT_SECONDS)[0]:
                raise ForkServerError("the fork server did not start")
            word = self.control.recv(4096).decode(errors="replace")
            kind, _, detail = word.partition(" ")
            if kind == "refused":
                self._refused = detail
                raise ConfinementRefusedError(detail)
            if kind != "confined":
                raise ForkServerError("the fork server has gone")
            self._confinement = detail
        return self._confinement

    def _request(self) -> None:
        self.control.send(b"1")
        self.requested += 1

    def _receive(self) -> None:
        self._hello()
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
            pid = int(read_line(command))  # the child's first words, before any chunk
        except (OSError, ValueError) as exc:
            os.close(result_fd)
            command.close()
            raise ForkServerError("an idle child died before it was ready") from exc
        self.idle.append(Idle(pid, result_fd, command))


class _Current:
    server: ForkServer | None = None
    mode = "strict"  # CALC_SANDBOX_CONFINEMENT, as the worker was configured
    lock = threading.Lock()


def set_confinement_mode(mode: str) -> None:
    """What fork servers started from now on do when the kernel refuses a confinement step:
    ``strict`` (no user code runs) or ``relaxed`` (with what the kernel allows)."""
    if mode not in ("strict", "relaxed"):
        raise ValueError(f"confinement mode must be strict or relaxed, not {mode!r}")
    _Current.mode = mode


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


def become_subreaper() -> None:
    """Children of our children's children are adopted by us: we can wait for them."""
    if LIBC.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_CHILD_SUBREAPER) failed")


def read_line(command: socket.socket) -> bytes:
    data = b""
    while not data.endswith(b"\n"):
        more = command.recv(64)
        if not more:
            raise ValueError("closed before a whole line")
        data += more
    return data


def close_idle(idle: Idle) -> None:
    os.close(idle.result_fd)
    idle.command.close()


def reap(pid: int) -> int | None:
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

"""The fork server: a small, clean interpreter that forks sandbox children ahead of time.

``python -m sandbox.zygote FD`` is started by each worker process (fork_client.py) with an
empty environment, before that worker has run any job. Forking children from here instead
of from the worker means that

- a child holds nothing of the worker: no connection, no credential, no other user's code,
  params or data, even in memory a script that escaped every other layer could read;
- a fork copies this process's few megabytes, not the worker's hundreds, and a child's
  exit tears down as little;
- the fork happens between chunks: the worker asks for the next child when a chunk is done
  (so that making it takes no CPU from that chunk's scripts) and takes it, ready and idle,
  when its next chunk arrives.

Each child is forked twice (an intermediate process forks it and exits), so that it is
adopted by the worker, which made itself a child subreaper: the worker waits for its
children itself and reads from their exit status how each one died.

Protocol, on a SOCK_SEQPACKET socket: the worker sends one byte per child it wants; for
each, this process answers ``b"child"`` with two descriptors, the read end of the child's
result pipe and the worker's end of the child's command socket. End of file: exit.
"""

from __future__ import annotations

import contextlib
import fcntl
import gc
import os
import signal
import socket
import sys

from sandbox import child, confine
from sandbox.compiler import compile_script
from sandbox.namespace import base_globals
from sandbox.runner import SymbolInput, run_symbol

PR_SET_PDEATHSIG = 1
F_SETPIPE_SZ = 1031
PIPE_BYTES = 1 << 20
NAME = b"calc-forksrv"  # as ps and top show this process, and
CHILD_NAME = b"calc-sandbox"  # its children
_WARM_UP = "x = sma(close, 3)[-1]\nresult = {'x': x, 'n': len([c for c in close if c > 0])}\n"


def serve(control: socket.socket) -> None:
    """Answer each request with a fresh idle child, until the worker closes the socket."""
    while True:
        try:
            request = control.recv(16)
        except ConnectionError:
            return
        if not request:
            return
        result_read, result_write = os.pipe()
        with contextlib.suppress(OSError):  # room for lines the worker reads every few ms
            fcntl.fcntl(result_write, F_SETPIPE_SZ, PIPE_BYTES)
        worker_end, child_end = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        child.name_process(CHILD_NAME)  # inherited: cheaper here than in each fresh child
        intermediate = os.fork()
        if intermediate == 0:
            _fork_child(control, result_read, result_write, worker_end, child_end)
        child.name_process(NAME)
        os.waitpid(intermediate, 0)  # once it is gone, the worker has adopted the child
        os.close(result_write)
        child_end.close()
        try:
            socket.send_fds(control, [b"child"], [result_read, worker_end.fileno()])
        finally:
            os.close(result_read)
            worker_end.close()


def _fork_child(control: socket.socket, result_read: int, result_write: int,
                worker_end: socket.socket, child_end: socket.socket) -> None:  # fmt: skip
    """In the intermediate process: fork the child and exit at once. Never returns."""
    try:
        confine.enter_sandbox_pids()
        pid = os.fork()
        if pid == 0:
            control.close()
            os.close(result_read)
            worker_end.close()
            child.child_main(result_write, child_end.detach())
        # The child's pid as the worker sees it (the child's own is of its PID namespace).
        child_end.sendall(f"{pid}\n".encode())
    finally:
        os._exit(0)


def _warm_up() -> None:
    """Run our own tiny script once, so that lazy set-up happens here, once, not per child.
    (Running every helper here, or a script again in each idle child, measured no faster.)"""
    closes = tuple(float(x) for x in range(1, 30))
    item = SymbolInput("WARM", tuple("2020-01-01" for _ in closes), closes, closes, closes,
                       closes, tuple(1 for _ in closes), {})  # fmt: skip
    run_symbol(compile_script(_WARM_UP), base_globals(), item, "{}", 4096)


def _die_with_parent() -> None:
    child.LIBC.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


def main() -> None:
    parent = os.getppid()
    _die_with_parent()
    if os.getppid() != parent:  # the worker died before the line above
        return
    control = socket.socket(fileno=int(sys.argv[1]))
    mode = sys.argv[2] if len(sys.argv) > 2 else "strict"
    child.name_process(NAME)
    child.inherited_set_up()
    # Preparing the next child is never urgent: it yields the CPU as the children's scripts do
    # (at least as nice as they are, not 10 more than the worker: README's Processes).
    child.lower_priority(child.CHILD_NICENESS)
    _warm_up()
    # Namespaces, once for all children (confine.py); the first word the worker reads says
    # what held, or why no child will be made.
    try:
        state = confine.set_up_server(mode)
    except confine.ConfinementRefused as exc:
        with contextlib.suppress(OSError):
            control.send(f"refused {exc}".encode()[:4000])
            while control.recv(16):  # until the worker has read why (and closes): an exit
                pass  # now would reset the socket and lose the message
        return
    control.send(f"confined {state.level}".encode()[:4000])
    gc.freeze()  # children never collect what this process built
    serve(control)


if __name__ == "__main__":
    main()

"""A sandbox child's whole life: lock down, wait for one chunk, run it, report, exit.

The fork server (zygote.py) forks these ahead of time, so a chunk never waits for a fork:
a child locks itself down and builds its globals while idle, then blocks until the worker
sends it a chunk (wire.py) over its command socket. From then on it runs untrusted code:
memory and descriptor limits are set, and each symbol has a CPU timer whose signal *kills*
the child (``ITIMER_PROF`` with the default action), which holds in a bare ``except:`` loop
and inside one long C-level operation alike. Each symbol's outcome goes to the result pipe
as one JSON line as soon as it is done; the worker re-checks every line (recheck.py).

The child uses none of the worker's connections (it never had them: the fork server is a
fresh interpreter), takes no locks (no logging), has an empty environment and no descriptor
but the pipe once the chunk has arrived.
"""

from __future__ import annotations

import ctypes
import fcntl
import gc
import mmap
import os
import posix
import resource
import signal
import socket
import sys
import time
from typing import Any, NoReturn

import orjson

from sandbox import confine, wire
from sandbox.namespace import base_globals
from sandbox.outcome import error, outcome
from sandbox.runner import run_symbol

# stdin/stdout/stderr on /dev/null and the result pipe (fd 3): with the limit at 4, the
# child can open nothing new (no file, socket or pipe), even if its script got past the guards.
CHILD_NICENESS = 10
MAX_CHILD_FDS = 4
RESULT_FD = 3
COMMAND_FD = 4  # until the chunk has arrived
_DEFAULT_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGUSR1, signal.SIGUSR2,
                    signal.SIGCHLD, signal.SIGALRM, signal.SIGPROF)  # fmt: skip
_EXIT_BROKEN = 70
EXIT_RETIRED = 75  # stopped after a symbol whose garbage kept making garbage (isolation.py)
COLLECTION_ROUNDS = 3
RECEIVED = b"+"
PR_SET_NAME = 15
LIBC = ctypes.CDLL(None, use_errno=True)  # (also the fork server's and the worker's prctl)
LIBC.mmap.restype = ctypes.c_void_p
LIBC.mmap.argtypes = (ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int, ctypes.c_int,
                       ctypes.c_long)  # fmt: skip
_MAP_FAILED = ctypes.c_void_p(-1).value
_VIEW_OF_MEMORY = ctypes.pythonapi.PyMemoryView_FromMemory
_VIEW_OF_MEMORY.restype = ctypes.py_object
_VIEW_OF_MEMORY.argtypes = (ctypes.c_void_p, ctypes.c_ssize_t, ctypes.c_int)
_PYBUF_READ = 0x100


def child_main(result_fd: int, command_fd: int) -> NoReturn:
    """Never returns: the child exits without unwinding into the fork server's code."""
    code = 0
    try:
        _lock_down(result_fd, command_fd)
        confine.enter_child()  # uid nobody, no capability, no new privileges
        shared = base_globals()
        # What we inherited is never a script's garbage: keep collections to the scripts' objects.
        gc.freeze()
        command = socket.socket(fileno=COMMAND_FD)  # (our pid was sent by our parent)
        chunk = _receive(command)
        if chunk is not None:
            gc.freeze()  # nor is the chunk: each symbol's collection sees only its own objects
            _limit_memory_and_descriptors(chunk.memory_mb)
            confine.seal()  # the seccomp filter, last: from here on only user code
            if not _run(chunk, shared):
                code = EXIT_RETIRED
    except BaseException:  # never unwind into the fork server's loop
        code = _EXIT_BROKEN
    finally:
        os._exit(code)


def _run(chunk: wire.Chunk, shared: dict[str, Any]) -> bool:
    """Run the chunk's symbols; False if the child stopped early, its state not clean."""
    cpu = chunk.cpu_seconds
    _, cpu_hard = resource.getrlimit(resource.RLIMIT_CPU)
    backstop = 0
    for item in chunk.items():
        # A whole-symbol backstop in whole seconds, in case the timer were ever disarmed: at
        # least ``cpu + 1`` seconds ahead of the symbol's start (moved only when it is not).
        now = time.process_time()
        if backstop < now + cpu + 1:
            backstop = int(now + cpu + 2)
            resource.setrlimit(resource.RLIMIT_CPU, (backstop, cpu_hard))
        signal.setitimer(signal.ITIMER_PROF, cpu)
        symbol = item.symbol
        result = run_symbol(chunk.script, shared, item, chunk.params_json, chunk.stdout_bytes)
        del item  # nothing holds the symbol's series now: the collector need not walk them
        # Reference cycles the script left behind would eat the next symbol's memory; their
        # collection (and any ``finally`` it runs) is charged to the symbol that made them.
        quiet = collect_until_quiet()
        signal.setitimer(signal.ITIMER_PROF, 0)
        write_all(RESULT_FD, _line(symbol, result))
        if not quiet:
            # Collecting makes more garbage (a suspended generator's ``finally`` plants a new
            # cycle each time): what is left could run during the next symbol. This child
            # stops here, and the worker gives the rest to a fresh one. The pipe closes as
            # the process exits, so the worker sees the exit status with the hang-up.
            return False
    os.close(RESULT_FD)  # the worker wakes on the hang-up: it need not wait for our exit
    return True


def collect_until_quiet(rounds: int = COLLECTION_ROUNDS) -> bool:
    """Collect until a collection runs none of the script's code; False if one still did
    after ``rounds``. API.md: nothing a script creates is seen by the next symbol, and a
    finalizer a collection runs (a suspended generator's ``finally``) can make new garbage,
    even a cycle that replants itself each time. (``gc.collect()``'s count cannot say: the
    objects such a finalizer reaches again are resurrected, and not counted.)"""
    return any(not _collection_ran_code() for _ in range(rounds))


def _collection_ran_code() -> bool:
    """Collect once, watching for Python code run meanwhile; none runs unless a finalizer
    does (scripts cannot define ``__del__``, but generators' ``finally`` blocks run)."""
    ran = False

    def watch(_frame: object, event: str, _arg: object) -> None:
        nonlocal ran
        if event == "call":
            ran = True
            sys.setprofile(None)  # seen once is enough: what runs on runs unwatched

    sys.setprofile(watch)
    try:
        gc.collect()
    finally:
        sys.setprofile(None)
    return ran


def _receive(command: socket.socket) -> wire.Chunk | None:
    """The chunk, read from the memory file the worker sends; None if the worker went away."""
    message, fds, _, _ = socket.recv_fds(command, 16, 1)
    if not message or len(fds) != 1:
        for fd in fds:
            os.close(fd)
        return None
    # Received: should this child die from now on, the symbol it was on is to blame.
    command.sendall(RECEIVED)
    command.close()
    (memory_file,) = fds
    try:
        size = os.fstat(memory_file).st_size
        if size == 0:
            return None
        view = _map_read_only(memory_file, size)
    finally:
        os.close(memory_file)
    return wire.decode(view)


def _map_read_only(fd: int, size: int) -> memoryview:
    """The file mapped read-only and private, its descriptor free to close.

    Mapped, not copied: its pages are the ones the worker wrote, mapped a few dozen at a
    time on first read, where a copy costs a fresh page per 4 KiB. (Python's own ``mmap``
    would keep a duplicate of the descriptor open for the mapping's life.)
    """
    address = LIBC.mmap(None, size, mmap.PROT_READ, mmap.MAP_PRIVATE, fd, 0)
    if address is None or address == _MAP_FAILED:
        raise OSError(ctypes.get_errno(), "mmap of the chunk failed")
    # A read-only view of those bytes as they are (a ctypes array type per size would cost
    # more than the mapping itself).
    return _VIEW_OF_MEMORY(address, size, _PYBUF_READ)


def _lock_down(result_fd: int, command_fd: int) -> None:
    """Drop everything the child could misuse, before any chunk arrives."""
    os.setpgid(0, 0)  # its own group: the worker's kill also reaches anything it started
    # User code yields the CPU to the API and to the workers' own bookkeeping: under load,
    # submits and polls stay quick while jobs take what is left.
    lower_priority(CHILD_NICENESS)  # (the fork server is as nice already)
    # The rest of the signals and the environment were set up by the fork server, for all
    # its children (inherited_set_up); a write to the result pipe the worker closed kills.
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    # Both descriptors above the standard ones first, so that moving them clobbers nothing.
    high = max(result_fd, command_fd, COMMAND_FD) + 1
    result_fd = fcntl.fcntl(result_fd, fcntl.F_DUPFD, high)
    command_fd = fcntl.fcntl(command_fd, fcntl.F_DUPFD, high)
    devnull = os.open(os.devnull, os.O_RDWR)
    for target in (0, 1, 2):
        os.dup2(devnull, target)
    os.dup2(result_fd, RESULT_FD)
    os.dup2(command_fd, COMMAND_FD)
    os.closerange(COMMAND_FD + 1, _max_fd())
    resource.setrlimit(resource.RLIMIT_FSIZE, (0, 0))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    # No new processes (the kernel does not apply this to root: run workers as a plain user).
    resource.setrlimit(resource.RLIMIT_NPROC, (0, 0))


def lower_priority(niceness: int) -> int:
    """Make this process (and what it starts later) at least ``niceness`` nice; answer its
    niceness. Never lowers it: only root may, and it must not undo an operator's own nice."""
    return os.nice(max(0, min(niceness, 19) - os.nice(0)))


def inherited_set_up() -> None:
    """What every child needs, done once by the fork server for all the children it forks,
    which inherit it: in a fresh child, each first write to a page of the interpreter's
    state costs a copy of that page (this took about half a millisecond per child).

    Signals take their default actions: SIGPROF's terminates the process (the CPU budget
    holds even inside C code), and no handler of ours runs in a child. The environment is
    empty (the fork server is started with none; this makes sure).
    """
    for sig in _DEFAULT_SIGNALS:
        signal.signal(sig, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGPROF, signal.SIGXCPU})
    os.environ.clear()
    posix.environ.clear()  # os.environ is a copy of this one


def name_process(name: bytes) -> None:
    """The process's name as ``ps``, ``top`` and ``perf`` show it (at most 15 bytes)."""
    LIBC.prctl(PR_SET_NAME, ctypes.c_char_p(name[:15]), 0, 0, 0)


def _limit_memory_and_descriptors(memory_mb: int) -> None:
    """The script's budget: what the child holds now (the chunk included), plus ``memory_mb``."""
    page = os.sysconf("SC_PAGE_SIZE")
    with open("/proc/self/statm", "rb") as statm:
        current = int(statm.read().split()[0]) * page
    memory = current + memory_mb * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
    resource.setrlimit(resource.RLIMIT_NOFILE, (MAX_CHILD_FDS, MAX_CHILD_FDS))


def _max_fd() -> int:
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    return soft if soft != resource.RLIM_INFINITY else 65536


def _line(symbol: str, result: dict[str, Any]) -> bytes:
    try:
        return orjson.dumps([symbol, result]) + b"\n"
    except TypeError:  # never seen: the outcome holds only checked values and valid text
        unsendable = error("RuntimeError", "the script's outcome could not be sent")
        return orjson.dumps([symbol, outcome(None, unsendable)]) + b"\n"


def write_all(fd: int, data: bytes | bytearray) -> None:
    """All of ``data`` to ``fd`` (a write to a pipe or file may take only part of it)."""
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]

"""Kernel confinement (sandbox/confine.py, sandbox/seccomp_filter.py): "assume the Python layers
fell". Escaped code (plain, unrestricted Python, see test_isolation.escaped) runs in a real
child after every confinement step and attacks; and the process facts an operator checks in
/proc from outside."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

from sandbox.isolation import fork_server
from settings import PROJECT_ROOT
from tests.sandbox.test_isolation import (
    FIRST,
    ITEMS,
    assert_rest_computed,
    forbidden,
    run_escaped,
    wait_for_running_child,
)

WORKER = os.getpid()
ATTACKS = {  # what an escape would try -> the system call the child's filter stops
    "redis": ('_module("socket").socket().connect(("127.0.0.1", 6379))', "socket"),
    "postgresql": ('_module("socket").socket().connect(("127.0.0.1", 5432))', "socket"),
    "api": ('_module("socket").socket().connect(("127.0.0.1", 8000))', "socket"),
    "ipv6": (
        '_module("socket").socket(_module("socket").AF_INET6).connect(("::1", 6379))',
        "socket",
    ),
    "unix-socket": ('_module("socket").socket(_module("socket").AF_UNIX)', "socket"),
    "passwd": ('builtins.open("/etc/passwd")', "openat"),
    "instance-db": (f"builtins.open({str(PROJECT_ROOT / 'instance' / 'x.db')!r})", "openat"),
    "worker-environ": (f'builtins.open("/proc/{WORKER}/environ", "rb")', "openat"),
    "write-anywhere": ('builtins.open("/tmp/escaped", "w")', "openat"),
    "fork": ("os.fork()", "clone"),
    "exec": ('os.execv("/bin/sh", ["sh", "-c", "id"])', "execve"),
    "kill-worker": (f"os.kill({WORKER}, 9)", "kill"),
    "ptrace": ('_module("ctypes").CDLL(None).ptrace(16, 1, 0, 0)', "ptrace"),
    "mount": ('_module("ctypes").CDLL(None).mount(b"none", b"/", b"tmpfs", 0, None)', "mount"),
    "other-memory": ("os.pread(os.open('/proc/1/mem', 0), 8, 0)", "openat"),
    "process_vm_readv": (
        '_module("ctypes").CDLL(None).process_vm_readv(1, None, 0, None, 0, 0)',
        "process_vm_readv",
    ),
    "bpf": ('_module("ctypes").CDLL(None).syscall(321, 0, 0, 0)', "bpf"),
    "userfaultfd": ('_module("ctypes").CDLL(None).syscall(323, 0)', "userfaultfd"),
    "unshare": ('_module("ctypes").CDLL(None).unshare(0x40000000)', "unshare"),
    "signal-handler": (
        '_module("signal").signal(_module("signal").SIGSYS, lambda *a: 0)',
        "rt_sigaction",
    ),
}


@pytest.mark.parametrize(("attack", "call"), ATTACKS.values(), ids=ATTACKS.keys())
def test_an_escaped_script_reaches_nothing(attack: str, call: str) -> None:
    """Each attack ends its symbol with a SecurityError naming the call the kernel stopped; a
    fresh child runs the next symbol; the worker is alive (this very process)."""
    outcomes = run_escaped(
        f"""
        if symbol == {FIRST!r}:
            {attack}
        result = close[-1]
        """
    )
    assert outcomes[0] == (FIRST, forbidden(call))
    assert_rest_computed(outcomes, 1)
    assert not Path("/tmp/escaped").exists()  # what the attack tried to write


def test_what_an_escaped_script_sees_of_its_world() -> None:
    """Without a forbidden call: it is nobody, and alone in a PID namespace of its own."""
    seen = run_escaped(
        """
        result = {"uid": os.getuid(), "euid": os.geteuid(), "gid": os.getgid(),
                  "pid": os.getpid(), "ppid": os.getppid()}
        """,
        items=ITEMS[:1],
    )[0][1]
    assert seen["error"] is None, seen
    value = seen["value"]
    assert value["uid"] == value["euid"] == value["gid"] == 65534
    assert value["pid"] > 1 and value["pid"] < 1000  # a pid of its own namespace
    assert value["ppid"] == 0  # its parent (the worker) is outside its namespace


def _status(pid: int) -> dict[str, str]:
    text = Path(f"/proc/{pid}/status").read_text()
    return {k: v.strip() for k, v in (line.split(":", 1) for line in text.splitlines())}


def test_a_running_child_seen_from_outside() -> None:
    """What an operator checks: ``grep -E 'Seccomp|NoNewPrivs|CapEff|Uid' /proc/<pid>/status``
    and ``readlink /proc/<pid>/ns/*`` against the worker's."""
    found: dict[str, object] = {}

    def look() -> None:
        pid = wait_for_running_child(timeout=30)
        found["status"] = _status(pid)
        found["ns"] = {ns: os.readlink(f"/proc/{pid}/ns/{ns}") for ns in ("net", "mnt", "pid",
                                                                          "ipc")}  # fmt: skip
        os.kill(pid, 9)

    thread = threading.Thread(target=look, daemon=True)
    thread.start()
    run_escaped("while True:\n    pass\n", items=ITEMS[:1], cpu=20)
    thread.join(30)
    status = found["status"]
    assert isinstance(status, dict)
    assert status["Seccomp"] == "2"  # a filter
    assert status["NoNewPrivs"] == "1"
    assert status["CapEff"] == status["CapPrm"] == "0" * 16
    assert status["Uid"].split() == ["65534"] * 4 and status["Gid"].split() == ["65534"] * 4
    assert len(status["NSpid"].split()) == 2  # a pid here and one in its own namespace
    ns = found["ns"]
    assert isinstance(ns, dict)
    for name, link in ns.items():
        assert link != os.readlink(f"/proc/self/ns/{name}"), name


def test_the_fork_server_reports_full_confinement() -> None:
    assert fork_server().confinement == "full"

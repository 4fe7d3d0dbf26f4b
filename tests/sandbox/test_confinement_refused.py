"""Where the kernel refuses a confinement step (issue 21): never silently weaker.

Each test starts a worker's sandbox in a process of its own (confined_run.py) where the kernel
really refuses: under a seccomp filter that makes ``unshare``/``setns``/``clone`` with a
namespace flag fail with EPERM, as Docker's default profile does (kernel_refuses.py), or as a
non-root user (uid 65534), whose fork server is root only inside a user namespace.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import sysconfig
import time
from pathlib import Path

import pytest

from settings import PROJECT_ROOT, Settings, SettingsError

PYTHON = sys.executable
REFUSES = [PYTHON, "-m", "tests.sandbox.kernel_refuses"]
VALUE = 'result = {"uid": os.getuid(), "pid": os.getpid()}'
ATTACK = """
s = _module("socket").socket()
s.connect(("127.0.0.1", 6379))
result = 1
"""


def confined_run(mode: str, body: str, *, prefix: list[str] = (), python: str = PYTHON,
                 user: int | None = None, cpu: float = 2.0) -> list[dict]:  # fmt: skip
    """Run confined_run.py; its JSON lines."""
    command = [*prefix, python, "-m", "tests.sandbox.confined_run", mode, body, str(cpu)]
    done = subprocess.run(
        command,
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        user=user,
        group=user,
        extra_groups=[] if user is not None else None,
    )
    return [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]


def test_strict_where_docker_refuses_namespaces_runs_no_user_code() -> None:
    """One clear message naming the refused step; the batch is refused, no symbol ran."""
    said, batch = confined_run("strict", VALUE, prefix=REFUSES)
    assert said["mode"] == "strict" and "confinement" not in said
    assert said["refused"].startswith(
        "the kernel refused sandbox confinement step network namespace: Operation not permitted;"
    )
    assert "no user code will run" in said["refused"]
    assert batch == {"batch_refused": "ConfinementRefusedError", "message": said["refused"]}


def test_relaxed_where_docker_refuses_namespaces_runs_and_says_what_is_missing() -> None:
    said, batch = confined_run("relaxed", VALUE, prefix=REFUSES)
    assert said["confinement"] == (
        "relaxed (missing: network namespace: Operation not permitted, IPC namespace: Operation "
        "not permitted, mount namespace: Operation not permitted, PID namespace: Operation not "
        "permitted)"
    )
    for _, outcome in batch["outcomes"]:
        assert outcome["error"] is None and outcome["value"]["uid"] == 65534  # still nobody


def test_relaxed_without_namespaces_still_stops_an_escaped_scripts_connection() -> None:
    """What is left holds: the seccomp filter traps the socket to Redis."""
    _, batch = confined_run("relaxed", ATTACK, prefix=REFUSES)
    for _, outcome in batch["outcomes"]:
        assert outcome["value"] is None
        assert outcome["error"]["type"] == "SecurityError"
        assert "socket" in outcome["error"]["message"]


@pytest.mark.parametrize("spelled", ["STRICT", " strict ", "Strict\n", ""])
def test_strict_as_users_type_it(spelled: str) -> None:
    """(Empty, as an unset variable in a compose file gives it: the default, strict.)"""
    said, _ = confined_run(spelled, VALUE, prefix=REFUSES)
    assert said["mode"] == "strict" and "refused" in said


@pytest.mark.parametrize("spelled", ["RELAXED", " relaxed "])
def test_relaxed_as_users_type_it(spelled: str) -> None:
    said, _ = confined_run(spelled, VALUE, prefix=REFUSES)
    assert said["mode"] == "relaxed" and said["confinement"].startswith("relaxed (missing:")


@pytest.mark.parametrize("wrong", ["relax", "off", "none", "strict,relaxed", "0", "false"])
def test_a_misspelled_mode_fails_closed(wrong: str) -> None:
    """Never off: the worker does not start (settings refuse), and the sandbox's own switch
    refuses anything but the two modes too."""
    with pytest.raises(SettingsError, match="CALC_SANDBOX_CONFINEMENT must be strict"):
        Settings.from_env({"CALC_SANDBOX_CONFINEMENT": wrong})
    done = subprocess.run(
        [*REFUSES, PYTHON, "-m", "tests.sandbox.confined_run", wrong, VALUE, "2"],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode != 0 and done.stdout == ""  # nothing started, nothing ran
    assert "SettingsError" in done.stderr


# --- the non-root path ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def nobody_python(tmp_path_factory: pytest.TempPathFactory) -> str:
    """An interpreter uid 65534 can run with our packages (this box's own lives under /root,
    mode 700): a venv on the system's Python of the same minor version, with our
    site-packages on its path."""
    system = Path(f"/usr/bin/python3.{sys.version_info.minor}")
    if not system.exists():
        pytest.skip(f"no {system} for a non-root user")
    base = tmp_path_factory.mktemp("nobody-venv")
    subprocess.run([system, "-m", "venv", "--without-pip", base], check=True, timeout=120)
    site = next(base.glob("lib/python3*/site-packages"))
    (site / "calc.pth").write_text(f"{sysconfig.get_paths()['purelib']}\n")
    for path in [base, *base.rglob("*")]:
        path.chmod(path.stat().st_mode | 0o555 if path.is_dir() else path.stat().st_mode | 0o444)
    parent = base
    while parent != parent.parent:  # the folders above it too (pytest's basetemp is 0700)
        parent = parent.parent
        parent.chmod(parent.stat().st_mode | 0o111)
    return str(base / "bin" / "python")


def test_as_non_root_strict_is_refused_clearly(nobody_python: str) -> None:
    """This kernel gives the non-root fork server a user namespace and the network, IPC and
    mount namespaces in it, but no way back to the worker's PID namespace (setns needs
    CAP_SYS_ADMIN where it belongs): strict says so and runs nothing."""
    said, batch = confined_run("strict", VALUE, python=nobody_python, user=65534)
    assert said["uid"] == 65534
    assert said["refused"].startswith(
        "the kernel refused sandbox confinement step PID namespace: Operation not permitted;"
    )
    assert batch["batch_refused"] == "ConfinementRefusedError"


def _status(pid: int) -> dict[str, str]:
    text = Path(f"/proc/{pid}/status").read_text()
    return {k: v.strip() for k, v in (line.split(":", 1) for line in text.splitlines())}


def _sealed_child_of(parent: int, timeout: float) -> int:
    """A child of ``parent`` running user code (its filter loaded)."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                status = _status(int(entry.name))
            except OSError:
                continue
            if int(status["PPid"]) == parent and status["Seccomp"] == "2":
                return int(entry.name)
        time.sleep(0.05)
    raise AssertionError("no sandbox child ran user code")


def test_as_non_root_relaxed_runs_confined_as_far_as_the_kernel_allows(nobody_python) -> None:
    """Seen from outside, as an operator checks it: filter, no new privileges, no capability,
    a non-zero uid, network and mount namespaces (and a user namespace) not the worker's."""
    command = [nobody_python, "-m", "tests.sandbox.confined_run", "relaxed",
               "while True:\n    pass\n", "20"]  # fmt: skip
    driver = subprocess.Popen(
        command,
        cwd=PROJECT_ROOT,
        stdout=subprocess.PIPE,
        text=True,
        user=65534,
        group=65534,
        extra_groups=[],
    )
    try:
        said = json.loads(driver.stdout.readline())
        assert said["confinement"] == "relaxed (missing: PID namespace: Operation not permitted)"
        pid = _sealed_child_of(driver.pid, timeout=30)
        status = _status(pid)
        kinds = ("net", "mnt", "ipc", "user", "pid")
        namespaces = {ns: os.readlink(f"/proc/{pid}/ns/{ns}") for ns in kinds}
        os.kill(pid, 9)
    finally:
        driver.kill()
        driver.wait(30)
        driver.stdout.close()
    assert status["Seccomp"] == "2" and status["NoNewPrivs"] == "1"
    # (a bounding set is left, in its own user namespace: no_new_privs and the filter leave it
    # nothing to act on, no execve, no setuid binary)
    assert status["CapEff"] == status["CapPrm"] == "0" * 16
    assert status["Uid"].split() == ["65534"] * 4 and status["Gid"].split() == ["65534"] * 4
    for name in ("net", "mnt", "ipc", "user"):
        assert namespaces[name] != os.readlink(f"/proc/self/ns/{name}"), name
    assert namespaces["pid"] == os.readlink("/proc/self/ns/pid")  # what "missing" says

"""Kernel confinement of the sandbox children (README's Sandbox, layer 4).

The Python layers (compiler, guards) may one day fall: RestrictedPython says itself that it is
not a sandbox. What an escaped script then finds is decided here, by the kernel:

- once, in the fork server (``confine_server``), namespaces its children inherit: its own
  network namespace (a loopback that is down: no route anywhere), IPC namespace, mount
  namespace whose root is an empty read-only tmpfs holding only ``/dev/null`` and a ``/proc``
  of the sandbox's own PID namespace (no host file, no /tmp, no instance folder), and a PID
  namespace kept alive by a tiny holder process (pid 1 there), which each child joins as it is
  forked: a child sees neither the worker nor other jobs' children, by pid or in /proc;
- per child, cheap (``drop_privileges``): no supplementary groups, uid and gid 65534 (nobody),
  no capabilities at all, ``PR_SET_NO_NEW_PRIVS``; then the seccomp filter
  (seccomp_filter.py) as the last step before user code.

Where the worker is not root, a user namespace comes first (the fork server is then root only
inside it) and a child drops its capabilities there instead of changing uid.

``CALC_SANDBOX_CONFINEMENT`` (settings.py) says what to do when the kernel refuses a step:
``strict`` (the default) refuses to run user code at all; ``relaxed`` runs with what the
kernel allows and says which steps are missing (the worker's start-up log line, ``/health``).
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import os
import signal
from dataclasses import dataclass, field

from sandbox import seccomp_filter

__all__ = [
    "FULL",
    "MODES",
    "Confinement",
    "ConfinementRefused",
    "confine_server",
    "drop_privileges",
    "enter_child",
    "enter_sandbox_pids",
    "seal",
    "set_up_server",
]

MODES = ("strict", "relaxed")
FULL = "full"
NOBODY = 65534
_LIBC = ctypes.CDLL(None, use_errno=True)

CLONE_NEWNS = 0x00020000
CLONE_NEWIPC = 0x08000000
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000
MS_RDONLY = 1
MS_NOSUID = 2
MS_NODEV = 4
MS_NOEXEC = 8
MS_REMOUNT = 32
MS_BIND = 4096
MS_REC = 16384
MS_PRIVATE = 1 << 18
MNT_DETACH = 2
PR_SET_PDEATHSIG = 1
PR_CAPBSET_DROP = 24
PR_SET_NO_NEW_PRIVS = 38
_SYS_PIVOT_ROOT = 155  # x86_64
_SYS_CAPSET = 126
_LINUX_CAPABILITY_VERSION_3 = 0x20080522
# Where the new root is built before it becomes /: a tmpfs mounted over /tmp, in our own
# mount namespace only (the host's /tmp is untouched, and hidden from then on).
_BUILD = "/tmp"  # noqa: S108 - a mount point in our private namespace, not a file in /tmp


class ConfinementRefused(RuntimeError):
    """A confinement step the kernel refused while the mode is ``strict``: no user code runs."""


@dataclass
class Confinement:
    """What the fork server achieved: the steps that held, and those the kernel refused."""

    mode: str = "strict"
    missing: list[str] = field(default_factory=list)
    user_namespace: bool = False  # the fork server is root only inside a user namespace
    pid_namespace: int = -1  # a descriptor of the sandbox's PID namespace, for the children
    skipped: set[str] = field(default_factory=set)  # per-child steps refused (relaxed only)

    @property
    def level(self) -> str:
        """``full``, or ``relaxed (what is missing)``: what the worker and /health report."""
        return FULL if not self.missing else f"relaxed (missing: {', '.join(self.missing)})"

    def refused(self, step: str, exc: OSError) -> None:
        """Note a refused step; in strict mode, stop here."""
        reason = f"{step}: {os.strerror(exc.errno or 0)}"
        if self.mode != "relaxed":
            raise ConfinementRefused(
                f"the kernel refused sandbox confinement step {reason}; no user code will run "
                f"(CALC_SANDBOX_CONFINEMENT=relaxed runs with what the kernel allows)"
            ) from exc
        self.missing.append(reason)


def _check(result: int, what: str) -> None:
    if result != 0:
        code = ctypes.get_errno()
        raise OSError(code, f"{what}: {os.strerror(code)}")


def _unshare(flags: int) -> None:
    _check(_LIBC.unshare(ctypes.c_int(flags)), "unshare")


def _mount(source: str | None, target: str, fstype: str | None, flags: int,
           data: str | None = None) -> None:  # fmt: skip
    def arg(text: str | None) -> bytes | None:
        return None if text is None else text.encode()

    result = _LIBC.mount(arg(source), arg(target), arg(fstype), ctypes.c_ulong(flags), arg(data))
    _check(result, f"mount {target}")


def confine_server(mode: str) -> Confinement:
    """Put this process (the fork server) into its own namespaces, once; its children inherit
    them. Raises ``ConfinementRefused`` in strict mode when a step is refused."""
    state = Confinement(mode=mode)
    if os.geteuid() != 0:
        try:
            _enter_user_namespace()
            state.user_namespace = True
        except OSError as exc:
            state.refused("user namespace", exc)
    for step, flag in (("network namespace", CLONE_NEWNET), ("IPC namespace", CLONE_NEWIPC)):
        try:
            _unshare(flag)
        except OSError as exc:
            state.refused(step, exc)
    try:
        _unshare(CLONE_NEWNS)
        _mount(None, "/", None, MS_REC | MS_PRIVATE)  # nothing we do here reaches the host
        _mount("tmpfs", _BUILD, "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, "size=64k,mode=755")
        for directory in ("dev", "proc", ".old"):
            os.mkdir(f"{_BUILD}/{directory}", 0o755)
        os.close(os.open(f"{_BUILD}/dev/null", os.O_CREAT | os.O_WRONLY, 0o666))
        _mount("/dev/null", f"{_BUILD}/dev/null", None, MS_BIND)
    except OSError as exc:
        state.refused("mount namespace", exc)
        return _pid_namespace_only(state)
    _pid_namespace(state, f"{_BUILD}/proc")
    try:
        _pivot_into(_BUILD)
    except OSError as exc:
        state.refused("empty root", exc)
    return state


def _pid_namespace_only(state: Confinement) -> Confinement:
    _pid_namespace(state, None)
    return state


def _enter_user_namespace() -> None:
    """Root inside a new user namespace (a non-root worker): uid 65534 inside is our uid."""
    uid, gid = os.geteuid(), os.getegid()
    _unshare(CLONE_NEWUSER)
    with open("/proc/self/setgroups", "w") as setgroups:
        setgroups.write("deny")
    with open("/proc/self/uid_map", "w") as uid_map:
        uid_map.write(f"{NOBODY} {uid} 1")
    with open("/proc/self/gid_map", "w") as gid_map:
        gid_map.write(f"{NOBODY} {gid} 1")


def _pid_namespace(state: Confinement, proc_mount: str | None) -> None:
    """A PID namespace for the children, kept alive by a holder (its pid 1), which also mounts
    that namespace's own /proc: a child sees itself there and nothing else."""
    try:
        ours = os.open("/proc/self/ns/pid", os.O_RDONLY | os.O_CLOEXEC)
    except OSError as exc:
        state.refused("PID namespace", exc)
        return
    try:
        # First, that we can come back (root only inside a user namespace cannot: setns needs
        # CAP_SYS_ADMIN where our PID namespace belongs). Otherwise no new one: unshared, it
        # would hold our next forks, and the pids reported to the worker would be its own.
        _check(_LIBC.setns(ours, CLONE_NEWPID), "setns")
        _unshare(CLONE_NEWPID)
        ready_read, ready_write = os.pipe()
        holder = os.fork()
        if holder == 0:  # pid 1 of the new namespace
            os.close(ready_read)
            _hold(ready_write, proc_mount)
        os.close(ready_write)
        answer = os.read(ready_read, 64)
        os.close(ready_read)
        # (a PID namespace can be opened only once its pid 1 exists)
        sandbox_pids = os.open("/proc/self/ns/pid_for_children", os.O_RDONLY)
        _check(_LIBC.setns(ours, CLONE_NEWPID), "setns")  # our own next fork stays with us
        state.pid_namespace = sandbox_pids
        if answer != b"ok" and proc_mount is not None:
            state.refused("sandbox /proc", OSError(int(answer or errno.EIO), "mount proc"))
    except OSError as exc:
        state.refused("PID namespace", exc)
        if proc_mount is not None:  # relaxed: the worker's /proc, as without a mount namespace
            try:
                _mount("/proc", proc_mount, None, MS_BIND | MS_REC)
            except OSError as proc_exc:
                state.refused("sandbox /proc", proc_exc)
    finally:
        os.close(ours)


def _hold(ready: int, proc_mount: str | None) -> None:
    """The holder, pid 1 of the sandbox's PID namespace: mounts its /proc, then waits (and
    reaps whatever is left to it) until the fork server dies. Never returns."""
    try:
        _LIBC.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        answer = b"ok"
        if proc_mount is not None:
            try:
                # hidepid=invisible: a child sees only the processes it may trace (itself);
                # subset=pid: no /proc/sys, no kernel files.
                flags = MS_NOSUID | MS_NODEV | MS_NOEXEC
                _mount("proc", proc_mount, "proc", flags, "hidepid=invisible,subset=pid")
            except OSError as exc:
                answer = str(exc.errno or errno.EIO).encode()
        os.write(ready, answer)
        os.close(ready)
        os.closerange(3, 1024)
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(sig, signal.SIG_DFL)
        while True:
            try:
                os.wait()
            except ChildProcessError:
                signal.pause()
            except InterruptedError:
                continue
    finally:
        os._exit(0)


def _pivot_into(new_root: str) -> None:
    """Make ``new_root`` this namespace's /, drop the host's tree, and make / read-only."""
    _check(_LIBC.syscall(_SYS_PIVOT_ROOT, new_root.encode(), f"{new_root}/.old".encode()),
           "pivot_root")  # fmt: skip
    os.chdir("/")
    _check(_LIBC.umount2(b"/.old", MNT_DETACH), "umount the host's tree")
    os.rmdir("/.old")
    flags = MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC
    _mount("tmpfs", "/", "tmpfs", flags, "size=64k,mode=755")


def enter_sandbox_pids() -> None:
    """In the intermediate process: its next fork (the child) is in the sandbox's PID
    namespace. A no-op when there is none (relaxed mode only)."""
    state = _Server.state
    if state is not None and state.pid_namespace >= 0:
        _check(_LIBC.setns(state.pid_namespace, CLONE_NEWPID), "setns")


def drop_privileges(user_namespace: bool) -> None:
    """In each child, before any chunk: no groups, uid/gid nobody, no capability left, and
    nothing it runs may gain any (``PR_SET_NO_NEW_PRIVS``)."""
    if user_namespace:  # root only inside our user namespace: drop every capability there
        header = (ctypes.c_uint32 * 2)(_LINUX_CAPABILITY_VERSION_3, 0)
        data = (ctypes.c_uint32 * 6)()
        _check(_LIBC.syscall(_SYS_CAPSET, header, data), "capset")
    else:
        for cap in range(_last_capability() + 1):  # nor in the bounding set
            with contextlib.suppress(OSError):
                _check(_LIBC.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0), "capbset")
        os.setgroups([])
        os.setresgid(NOBODY, NOBODY, NOBODY)
        os.setresuid(NOBODY, NOBODY, NOBODY)  # from root, without keep-caps: no capability
    _check(_LIBC.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "no_new_privs")


class _Caps:
    last: int = -1


def _last_capability() -> int:
    """The kernel's highest capability number (read once, in the fork server, before its
    root is emptied)."""
    if _Caps.last < 0:
        try:
            with open("/proc/sys/kernel/cap_last_cap") as last:
                _Caps.last = int(last.read())
        except OSError:
            _Caps.last = 40
    return _Caps.last


class _Server:
    """What this fork server achieved (None in any other process): its children's steps."""

    state: Confinement | None = None


def set_up_server(mode: str) -> Confinement:
    """The fork server's whole confinement, once, and a trial of the per-child steps in a
    throwaway child (so that a refused step is known at start, not at the first chunk)."""
    _last_capability()  # while /proc/sys is still there
    state = confine_server(mode)
    _Server.state = state
    for step in ("privileges", "seccomp"):
        error = _trial(step, state)
        if error is not None:
            state.refused(step, error)
            state.skipped.add(step)
    return state


def _trial(step: str, state: Confinement) -> OSError | None:
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(read_end)
            drop_privileges(state.user_namespace)
            if step == "seccomp":
                seccomp_filter.install()
            os.write(write_end, b"0")
        except OSError as exc:
            os.write(write_end, str(exc.errno or errno.EPERM).encode())
        finally:
            os._exit(0)
    os.close(write_end)
    answer = os.read(read_end, 16)
    os.close(read_end)
    os.waitpid(pid, 0)
    return None if answer == b"0" else OSError(int(answer or errno.EIO), step)


def enter_child() -> None:
    """In each fresh child, before it takes a chunk: the per-child steps but the filter."""
    state = _Server.state
    if state is not None and "privileges" not in state.skipped:
        drop_privileges(state.user_namespace)


def seal() -> None:
    """The last step before user code: the seccomp filter (everything is open and imported)."""
    state = _Server.state
    if state is not None and "seccomp" not in state.skipped:
        seccomp_filter.install()

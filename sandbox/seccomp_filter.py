"""The seccomp filter every sandbox child loads as its last step before user code runs.

A small classic-BPF program of our own (no dependency: libseccomp would build the same few
dozen instructions), loaded with ``prctl(PR_SET_SECCOMP)`` after ``PR_SET_NO_NEW_PRIVS``. It
allows only what a running script and the result pipe need: memory (``mmap``, ``brk``...),
``read``/``write``/``close`` on descriptors already open, the CPU timer and clocks, its own
rlimits, ``exit``. Anything else (``socket``, ``connect``, ``open``/``openat``, ``execve``,
``fork``/``clone``, ``kill``, ``ptrace``, ``mount``, ``bpf``, ``userfaultfd``...) never runs:
the kernel traps it (``SECCOMP_RET_TRAP``) and the child's SIGSYS handler writes which call it
was to the result pipe and exits at once; the worker reports that symbol's ``SecurityError``
naming the call, and a fresh child carries on. A foreign architecture or the x32 ABI kills the
process outright (``SECCOMP_RET_KILL_PROCESS``). The filter cannot be lifted: seccomp filters
are inherited and never removed, and blocking or ignoring SIGSYS only makes the kernel kill
the process instead (a trap signal is forced).

Why a trap and not a plain kill: a killed process tells its parent only "SIGSYS", not which
call; the trap's siginfo has the call's number. A script that had also taken over the
interpreter's memory could keep the handler from exiting; it would still never get a denied
call through, only ``ENOSYS``, and the worker's clock ends it.
"""

from __future__ import annotations

import ctypes
import errno
import os
import platform
import signal
import struct

__all__ = [
    "EXIT_FORBIDDEN_CALL",
    "FORBIDDEN_MARK",
    "SeccompUnavailable",
    "install",
    "syscall_name",
]

FORBIDDEN_MARK = b"\x00seccomp "  # the handler's line: the mark, the call's number, "\n"
EXIT_FORBIDDEN_CALL = 159  # 128 + SIGSYS, as a shell shows a death by that signal
_RESULT_FD = 3

_AUDIT_ARCH_X86_64 = 0xC000003E
_X32_SYSCALL_BIT = 0x40000000
_RET_KILL_PROCESS = 0x80000000
_RET_TRAP = 0x00030000
_RET_ALLOW = 0x7FFF0000
_RET_ERRNO = 0x00050000
_LD_ABS_W = 0x20
_JEQ_K = 0x15
_JGE_K = 0x35
_JSET_K = 0x45
_RET_K = 0x06
_PR_SET_SECCOMP = 22
_SECCOMP_MODE_FILTER = 2
_SYS_SECCOMP = 1  # si_code of a seccomp trap
_SA_SIGINFO = 4
_AT_EMPTY_PATH = 0x1000
_O_DIRECTORY = 0o200000

# x86_64 numbers. Allowed, the busiest first (the filter checks them in this order).
_ALLOWED = {
    "mmap": 9, "munmap": 11, "brk": 12, "madvise": 28, "mremap": 25, "mprotect": 10,
    "write": 1, "read": 0, "clock_gettime": 228, "setitimer": 38, "getitimer": 36,
    "rt_sigprocmask": 14, "rt_sigreturn": 15, "futex": 202, "close": 3, "lseek": 8,
    "fstat": 5, "writev": 20, "readv": 19, "getrusage": 98, "times": 100, "getpid": 39,
    "gettid": 186, "getppid": 110, "getpgrp": 111, "getuid": 102, "geteuid": 107,
    "getgid": 104, "getegid": 108, "sched_yield": 24, "nanosleep": 35, "clock_nanosleep": 230,
    "clock_getres": 229, "gettimeofday": 96, "getrandom": 318, "getpriority": 140, "exit": 60,
    "exit_group": 231,
}  # fmt: skip
# Allowed only with these arguments: (name, number, argument index, required value).
_ALLOWED_WITH = (
    ("prlimit64", 302, 0, 0),  # its own limits only (pid 0)
    ("newfstatat", 262, 3, _AT_EMPTY_PATH),  # fstat of an open descriptor (a path: below)
    ("setpriority", 141, 1, 0),  # its own niceness (``os.nice``; only ever up, as nobody)
)
# Looking up a path answers "no such file" without looking (the root is empty anyway): the
# interpreter's import of a module not loaded before the fork (a rare codec) then fails as an
# ordinary LookupError or ImportError in the script, not as a forbidden call; so does opening
# a directory to list it. Opening anything else is still forbidden.
_NOT_FOUND = {"newfstatat": 262, "stat": 4, "lstat": 6, "statx": 332, "getcwd": 79}
# Names of the denied calls a report is likely to meet (any other: its number).
_DENIED = {
    "open": 2, "openat": 257, "openat2": 437, "creat": 85, "socket": 41, "connect": 42,
    "socketpair": 53, "bind": 49, "sendto": 44, "sendmsg": 46, "recvmsg": 47, "clone": 56,
    "clone3": 435, "fork": 57, "vfork": 58, "execve": 59, "execveat": 322, "kill": 62,
    "tkill": 200, "tgkill": 234, "ptrace": 101, "mount": 165, "umount2": 166, "bpf": 321,
    "userfaultfd": 323, "perf_event_open": 298, "process_vm_readv": 310,
    "process_vm_writev": 311, "pidfd_open": 434, "pidfd_getfd": 438, "unshare": 272,
    "setns": 308, "pipe": 22, "pipe2": 293, "dup": 32, "dup2": 33, "dup3": 292, "ioctl": 16,
    "rt_sigaction": 13, "sigaltstack": 131, "prctl": 157, "seccomp": 317, "chdir": 80,
    "unlink": 87, "mkdir": 83, "rename": 82, "stat": 4, "lstat": 6, "access": 21,
    "uname": 63, "fcntl": 72, "pread64": 17, "pwrite64": 18, "memfd_create": 319,
    "chroot": 161, "pivot_root": 155, "setuid": 105, "setresuid": 117, "capset": 126,
    "keyctl": 250, "add_key": 248, "io_uring_setup": 425, "readlink": 89,
    "getdents64": 217, "wait4": 61, "shmget": 29, "msgget": 68, "semget": 64,
}  # fmt: skip
_NAMES = {
    number: name for name, number in (*_ALLOWED.items(), *_DENIED.items(), *_NOT_FOUND.items())
}
_NAMES.update({number: name for name, number, _, _ in _ALLOWED_WITH})

_LIBC = ctypes.CDLL(None, use_errno=True)
_MACHINE = platform.machine()  # (read once: ``uname`` is denied once the filter is on)
_HANDLER_TYPE = ctypes.CFUNCTYPE(None, ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p)


class SeccompUnavailable(OSError):
    """The kernel refused the filter (or this is not an architecture it is written for)."""


def syscall_name(number: int) -> str:
    """The call's name as ``man 2`` spells it, or ``system call N``."""
    if number < 0:
        return "a system call"
    return _NAMES.get(number, f"system call {number}")


def _statement(code: int, k: int, jt: int = 0, jf: int = 0) -> bytes:
    return struct.pack("=HBBI", code, jt, jf, k)


def _program() -> bytes:
    """The filter, as ``struct sock_filter`` entries."""
    out = [
        _statement(_LD_ABS_W, 4),  # seccomp_data.arch
        _statement(_JEQ_K, _AUDIT_ARCH_X86_64, jt=1),
        _statement(_RET_K, _RET_KILL_PROCESS),
        _statement(_LD_ABS_W, 0),  # seccomp_data.nr
        _statement(_JGE_K, _X32_SYSCALL_BIT, jf=1),
        _statement(_RET_K, _RET_KILL_PROCESS),
    ]
    for number in _ALLOWED.values():
        out += [_statement(_JEQ_K, number, jf=1), _statement(_RET_K, _RET_ALLOW)]
    not_found = _RET_ERRNO | errno.ENOENT
    for _, number, index, value in _ALLOWED_WITH:
        otherwise = not_found if number in _NOT_FOUND.values() else _RET_TRAP
        out += [
            _statement(_JEQ_K, number, jf=4),
            _statement(_LD_ABS_W, 16 + 8 * index),  # the argument's low 32 bits
            _statement(_JEQ_K, value, jf=1),
            _statement(_RET_K, _RET_ALLOW),
            _statement(_RET_K, otherwise),
        ]
    for number in _NOT_FOUND.values():
        out += [_statement(_JEQ_K, number, jf=1), _statement(_RET_K, not_found)]
    out += [  # a directory's listing (the import system's): "no such directory"; a file: trap
        _statement(_JEQ_K, _DENIED["openat"], jf=4),
        _statement(_LD_ABS_W, 16 + 8 * 2),  # flags
        _statement(_JSET_K, _O_DIRECTORY, jf=1),
        _statement(_RET_K, not_found),
        _statement(_RET_K, _RET_TRAP),
    ]
    out.append(_statement(_RET_K, _RET_TRAP))
    return b"".join(out)


class _SockFprog(ctypes.Structure):
    _fields_ = (("len", ctypes.c_ushort), ("filter", ctypes.c_void_p))


class _Sigaction(ctypes.Structure):  # glibc's struct sigaction on x86_64
    _fields_ = (
        ("handler", ctypes.c_void_p),
        ("mask", ctypes.c_ulong * 16),
        ("flags", ctypes.c_int),
        ("restorer", ctypes.c_void_p),
    )


_INT = ctypes.POINTER(ctypes.c_int)


def _on_sigsys(_signum: int, info: int, _context: int) -> None:
    """A denied call was trapped: say which on the result pipe, and end the child now.

    Runs inside the signal, on the thread that made the call; it calls nothing that could
    itself be denied (a second trap inside it would kill the process: SIGSYS is blocked here).
    """
    fields = ctypes.cast(info, _INT)
    # siginfo_t: signo, errno, code, padding, then _sigsys {call address, syscall, arch}.
    number = fields[6] if fields[2] == _SYS_SECCOMP else -1
    os.write(_RESULT_FD, FORBIDDEN_MARK + b"%d\n" % number)
    os._exit(EXIT_FORBIDDEN_CALL)


class _Prepared:
    """Built once in the fork server; each child only loads it (two system calls)."""

    program = _program()
    buffer = ctypes.create_string_buffer(program, len(program))
    fprog = _SockFprog(len(program) // 8, ctypes.addressof(buffer))
    handler = _HANDLER_TYPE(_on_sigsys)
    action = _Sigaction(ctypes.cast(handler, ctypes.c_void_p).value, (ctypes.c_ulong * 16)(),
                        _SA_SIGINFO, None)  # fmt: skip


def install() -> None:
    """Load the filter into this process (after ``PR_SET_NO_NEW_PRIVS``); never undone."""
    if _MACHINE != "x86_64":
        raise SeccompUnavailable(0, f"no seccomp filter written for {_MACHINE}")
    if _LIBC.sigaction(signal.SIGSYS, ctypes.byref(_Prepared.action), None) != 0:
        code = ctypes.get_errno()
        raise SeccompUnavailable(code, f"sigaction(SIGSYS): {os.strerror(code)}")
    mode = _SECCOMP_MODE_FILTER
    if _LIBC.prctl(_PR_SET_SECCOMP, mode, ctypes.byref(_Prepared.fprog), 0, 0) != 0:
        code = ctypes.get_errno()
        raise SeccompUnavailable(code, f"seccomp filter: {os.strerror(code)}")

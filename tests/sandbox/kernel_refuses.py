"""``python -m tests.sandbox.kernel_refuses CMD ARGS...``: run CMD where the kernel refuses
namespaces, as Docker's default seccomp profile does for a container without CAP_SYS_ADMIN.

A seccomp filter installed here, before ``execvp``, is inherited by CMD and everything it
starts and can never be lifted: ``unshare``, ``setns`` and ``clone`` with any namespace flag
fail with EPERM, ``clone3`` with ENOSYS (so that libc falls back to ``clone``, as under
Docker). Every other call is allowed. This is the kernel refusing for real, not a mock: the
sandbox's fork server meets exactly what it would meet in such a container.
"""

from __future__ import annotations

import ctypes
import errno
import os
import struct
import sys

_AUDIT_ARCH_X86_64 = 0xC000003E
_RET_ALLOW = 0x7FFF0000
_RET_ERRNO = 0x00050000
_LD_ABS_W = 0x20
_JEQ_K = 0x15
_JSET_K = 0x45
_RET_K = 0x06
_PR_SET_SECCOMP = 22
_SECCOMP_MODE_FILTER = 2
_SYS = {"clone": 56, "unshare": 272, "setns": 308, "clone3": 435}
# CLONE_NEWNS, NEWCGROUP, NEWUTS, NEWIPC, NEWUSER, NEWPID, NEWNET
NAMESPACE_FLAGS = 0x00020000 | 0x02000000 | 0x04000000 | 0x08000000 | 0x10000000
NAMESPACE_FLAGS |= 0x20000000 | 0x40000000
REFUSED = ("unshare", "setns", "clone with a namespace flag", "clone3")


def _statement(code: int, k: int, jt: int = 0, jf: int = 0) -> bytes:
    return struct.pack("=HBBI", code, jt, jf, k)


def program() -> bytes:
    """The filter, as ``struct sock_filter`` entries."""
    eperm, enosys = _RET_ERRNO | errno.EPERM, _RET_ERRNO | errno.ENOSYS
    return b"".join(
        (
            _statement(_LD_ABS_W, 4),  # seccomp_data.arch
            _statement(_JEQ_K, _AUDIT_ARCH_X86_64, jt=1),
            _statement(_RET_K, _RET_ALLOW),  # (only x86_64 is refused here)
            _statement(_LD_ABS_W, 0),  # seccomp_data.nr
            _statement(_JEQ_K, _SYS["unshare"], jt=4),
            _statement(_JEQ_K, _SYS["setns"], jt=3),
            _statement(_JEQ_K, _SYS["clone3"], jt=3),
            _statement(_JEQ_K, _SYS["clone"], jt=3),
            _statement(_RET_K, _RET_ALLOW),
            _statement(_RET_K, eperm),  # unshare, setns
            _statement(_RET_K, enosys),  # clone3
            _statement(_LD_ABS_W, 16),  # clone's flags (args[0], low 32 bits)
            _statement(_JSET_K, NAMESPACE_FLAGS, jt=1),
            _statement(_RET_K, _RET_ALLOW),
            _statement(_RET_K, eperm),
        )
    )


class _SockFprog(ctypes.Structure):
    _fields_ = (("len", ctypes.c_ushort), ("filter", ctypes.c_void_p))


def install() -> None:
    """Load the filter into this process (as root: no ``PR_SET_NO_NEW_PRIVS``, like Docker)."""
    libc = ctypes.CDLL(None, use_errno=True)
    code = program()
    buffer = ctypes.create_string_buffer(code, len(code))
    fprog = _SockFprog(len(code) // 8, ctypes.addressof(buffer))
    if libc.prctl(_PR_SET_SECCOMP, _SECCOMP_MODE_FILTER, ctypes.byref(fprog), 0, 0) != 0:
        number = ctypes.get_errno()
        raise OSError(number, f"seccomp: {os.strerror(number)}")


def main() -> None:
    install()
    os.execvp(sys.argv[1], sys.argv[1:])  # noqa: S606 - the command under test, as given


if __name__ == "__main__":
    main()

"""Moving bytes between the worker and a child: the chunk into its memory file, the child's
outcome lines out of its result pipe."""

from __future__ import annotations

import os
import socket
from array import array
from collections.abc import Sequence

from sandbox.child import write_all
from sandbox.fork_client import ForkServer, Idle

__all__ = ["read_available", "send_chunk", "write_buffers"]

_IOV_MAX = os.sysconf("SC_IOV_MAX")


def read_available(fd: int) -> tuple[bytes, bool]:
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


def send_chunk(server: ForkServer, idle: Idle, request: list[bytes | array]) -> int | None:
    """Hand the chunk to the child in a memory file: the file, to be freed once the child is
    killed, or None if the child is gone.

    The file may be one an earlier child had: it is rewritten from the start and cut to this
    chunk's length, so that nothing of an earlier chunk (another user's script or params)
    is left in it for this child to map.
    """
    memory_file = server.chunk_file()
    try:
        os.lseek(memory_file, 0, os.SEEK_SET)
        os.ftruncate(memory_file, write_buffers(memory_file, request))
        socket.send_fds(idle.command, [b"chunk"], [memory_file])
        return memory_file
    except OSError:
        server.chunk_file_free(memory_file)  # never sent: no child maps it
        return None


def write_buffers(fd: int, buffers: Sequence[bytes | array]) -> int:
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

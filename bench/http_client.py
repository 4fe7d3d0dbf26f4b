"""A keep-alive HTTP/1.1 connection on asyncio streams, for the load generator.

The generator runs on the same two cores as the service it measures, so every millisecond it
spends on a request is one the service does not get and a delay it then reports as the
service's. In a burst of 200 submits aiohttp spent 0.35-0.4 ms of CPU per request here (its
connector, timeouts, tracing, cookie jar); this spends 0.2 ms, connecting included: it writes
prepared bytes and reads a status line, headers and a ``Content-Length`` body, all our API
ever answers.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass
from urllib.parse import urlsplit


@dataclass(frozen=True, slots=True)
class Response:
    status: int
    headers: dict[str, str]  # names in lower case
    body: bytes


class HttpConnection:
    """One client's connection, opened on first use and reopened when the server closed it."""

    def __init__(self, url: str):
        parts = urlsplit(url)
        self.host = parts.hostname or "127.0.0.1"
        self.port = parts.port or 80
        self.host_header = f"Host: {parts.netloc}\r\n".encode()
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    @staticmethod
    def head(method: str, path: str, headers: dict[str, str], body: bytes = b"") -> bytes:
        """A request's head (without Host), to build once and send many times."""
        lines = [f"{method} {path} HTTP/1.1"]
        lines += [f"{name}: {value}" for name, value in headers.items()]
        if body or method in ("POST", "PUT", "PATCH"):
            lines.append(f"Content-Length: {len(body)}")
        return ("\r\n".join(lines) + "\r\n").encode()

    async def send(self, head: bytes, body: bytes = b"", *, retry: bool = False) -> Response:
        """Send a prepared request; with ``retry`` (idempotent requests only), once more on a
        fresh connection if a kept-alive one turns out closed, as browsers do."""
        reused = self.writer is not None
        try:
            return await self._exchange(head, body)
        except (ConnectionError, asyncio.IncompleteReadError):
            await self.close()
            if not (retry and reused):
                raise
            return await self._exchange(head, body)

    async def _exchange(self, head: bytes, body: bytes) -> Response:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        assert self.reader is not None
        first, _, rest = head.partition(b"\r\n")
        self.writer.write(first + b"\r\n" + self.host_header + rest + b"\r\n" + body)
        status_line = await self.reader.readuntil(b"\r\n")
        status = int(status_line.split(b" ", 2)[1])
        headers: dict[str, str] = {}
        while (line := await self.reader.readuntil(b"\r\n")) != b"\r\n":
            name, _, value = line.decode("latin-1").partition(":")
            headers[name.strip().lower()] = value.strip()
        data = await self.reader.readexactly(int(headers.get("content-length", "0")))
        if headers.get("connection", "").lower() == "close":
            await self.close()
        return Response(status, headers, data)

    async def close(self) -> None:
        writer, self.reader, self.writer = self.writer, None, None
        if writer is not None:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()

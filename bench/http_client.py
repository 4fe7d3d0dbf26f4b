"""A keep-alive HTTP/1.1 connection on an asyncio protocol, for the load generator.

The generator runs on the same two cores as the service it measures, so every millisecond it
spends on a request is one the service does not get and a delay it then reports as the
service's: a single event loop reads the 200 answers of a burst one after another. In a burst
of 200 submits aiohttp spent 0.35-0.4 ms of CPU per request here (its connector, timeouts,
tracing, cookie jar); asyncio streams about 0.2 ms, with an await per header line. This
protocol is called once per arriving packet and parses the answer in one go: it writes
prepared bytes and reads a status line, headers and a ``Content-Length`` body, all our API
ever answers. ``bench.load`` runs it on uvloop.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from urllib.parse import urlsplit


@dataclass(frozen=True, slots=True)
class Response:
    status: int
    headers: dict[str, str]  # names in lower case
    body: bytes


class _ResponseReader(asyncio.Protocol):
    """Collects one response at a time into ``waiting``; the connection's end fails it."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.head: tuple[int, dict[str, str], int] | None = None  # status, headers, length
        self.waiting: asyncio.Future[Response] | None = None
        self.closed = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # a stream's is a Transport

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        if self.head is None:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            lines = bytes(self.buffer[:end]).decode("latin-1").split("\r\n")
            del self.buffer[: end + 4]
            headers = {}
            for line in lines[1:]:
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
            status = int(lines[0].split(" ", 2)[1])
            self.head = (status, headers, int(headers.get("content-length", "0")))
        status, headers, length = self.head
        if len(self.buffer) < length:
            return
        body = bytes(self.buffer[:length])
        del self.buffer[:length]
        self.head = None
        if self.waiting is not None and not self.waiting.done():
            self.waiting.set_result(Response(status, headers, body))

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self.waiting is not None and not self.waiting.done():
            self.waiting.set_exception(ConnectionResetError("the server closed the connection"))


class HttpConnection:
    """One client's connection, opened on first use and reopened when the server closed it."""

    def __init__(self, url: str):
        parts = urlsplit(url)
        self.host = parts.hostname or "127.0.0.1"
        self.port = parts.port or 80
        self.host_header = f"Host: {parts.netloc}\r\n".encode()
        self.reader: _ResponseReader | None = None

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
        reused = self.reader is not None
        try:
            return await self._exchange(head, body)
        except ConnectionError:
            await self.close()
            if not (retry and reused):
                raise
            return await self._exchange(head, body)

    async def _exchange(self, head: bytes, body: bytes) -> Response:
        if self.reader is None or self.reader.closed:
            loop = asyncio.get_running_loop()
            transport, self.reader = await loop.create_connection(
                _ResponseReader, self.host, self.port
            )
            self.reader.transport = transport  # (uvloop may call connection_made later)
        reader = self.reader
        assert reader.transport is not None
        reader.waiting = asyncio.get_running_loop().create_future()
        first, _, rest = head.partition(b"\r\n")
        reader.transport.write(first + b"\r\n" + self.host_header + rest + b"\r\n" + body)
        response = await reader.waiting
        if response.headers.get("connection", "").lower() == "close":
            await self.close()
        return response

    async def close(self) -> None:
        reader, self.reader = self.reader, None
        if reader is not None and reader.transport is not None:
            reader.transport.close()

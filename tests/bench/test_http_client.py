"""The load generator's HTTP client reads what a server sends, however it arrives.

A real server on a local socket answers; it sends its answers split at awkward places and
closes connections as servers do, and the client must hand back each answer whole.
"""

from __future__ import annotations

import asyncio

import uvloop

from bench.http_client import HttpConnection

BODY = b'{"job_id": "x", "status": "queued"}'


async def serve(handler) -> tuple[asyncio.base_events.Server, str]:
    server = await asyncio.start_server(handler, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    return server, f"http://127.0.0.1:{port}"


async def read_request(reader: asyncio.StreamReader) -> bytes:
    head = await reader.readuntil(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":")[1])
    return head + await reader.readexactly(length)


def answer(status: str, body: bytes, *, close: bool = False) -> bytes:
    extra = b"Connection: close\r\n" if close else b""
    return (
        f"HTTP/1.1 {status}\r\nContent-Type: application/json\r\n".encode()
        + f"Content-Length: {len(body)}\r\nRetry-After: 3\r\n".encode()
        + extra
        + b"\r\n"
        + body
    )


def test_answers_split_anywhere_are_read_whole_on_one_kept_alive_connection():
    seen: list[bytes] = []
    connections = 0

    async def handler(reader, writer):
        nonlocal connections
        connections += 1
        for status in ("202 Accepted", "429 Too Many Requests"):
            seen.append(await read_request(reader))
            data = answer(status, BODY)
            for cut in range(0, len(data), 7):  # a packet every 7 bytes, mid-line and mid-body
                writer.write(data[cut : cut + 7])
                await writer.drain()
                await asyncio.sleep(0)
        writer.close()

    async def scenario():
        server, url = await serve(handler)
        http = HttpConnection(url)
        body = b'{"symbols": ["AAPL"]}'
        head = http.head("POST", "/execute", {"Authorization": "Bearer t"}, body)
        async with server:  # closed on the way out, failing or not (warnings are errors)
            try:
                return await http.send(head, body), await http.send(head, body)
            finally:
                await http.close()

    first, second = uvloop.run(scenario())
    assert (first.status, first.body) == (202, BODY)
    assert (second.status, second.headers["retry-after"]) == (429, "3")
    assert connections == 1
    assert seen[0].startswith(b"POST /execute HTTP/1.1\r\nHost: 127.0.0.1:")
    assert b"Authorization: Bearer t\r\n" in seen[0] and seen[0].endswith(b'["AAPL"]}')


def test_a_connection_the_server_closed_is_reopened_and_an_idempotent_request_retried():
    connections = 0

    async def handler(reader, writer):
        nonlocal connections
        connections += 1
        await read_request(reader)
        if connections == 1:
            writer.write(answer("200 OK", BODY))  # kept alive, then dropped unannounced
            await writer.drain()
            await read_request(reader)
        else:
            writer.write(answer("200 OK", b"{}", close=True))
            await writer.drain()
        writer.close()

    async def scenario():
        server, url = await serve(handler)
        http = HttpConnection(url)
        poll = http.head("GET", "/jobs/x", {})
        async with server:
            try:
                return [await http.send(poll, retry=True) for _ in range(2)]
            finally:
                await http.close()

    first, second = uvloop.run(scenario())
    assert (first.status, first.body) == (200, BODY)
    assert (second.status, second.body) == (200, b"{}")
    assert connections == 2

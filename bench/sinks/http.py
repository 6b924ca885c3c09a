"""A minimal HTTP/1.1 server (keep-alive, Content-Length or chunked bodies) that answers every
request ``200 {"ok": true}`` and records it by its token: the ``X-Bench-Token`` header, else a
``"token"`` field in a JSON body. Run: ``python -m bench.sinks.http``.
"""

from __future__ import annotations

import asyncio
import re
import sys

from bench.sinks.control import Recorder, main

__all__ = ["HttpSession"]

_RESPONSE = (
    b'HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 12\r\n\r\n{"ok": true}'
)
_BODY_TOKEN = re.compile(rb'"token"\s*:\s*"([^"]+)"')


class HttpSession(asyncio.Protocol):
    def __init__(self, recorder: Recorder) -> None:
        self.recorder = recorder
        self.buffer = bytearray()
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while self.transport is not None and (request := self._request()) is not None:
            head, body = request
            token = _header(head, b"x-bench-token")
            if not token:
                match = _BODY_TOKEN.search(body)
                token = match.group(1) if match else b"-"
            self.recorder.record(token.decode(errors="replace"), "-")
            self.transport.write(_RESPONSE)
            if _header(head, b"connection").lower() == b"close":
                self.transport.close()
                self.transport = None

    def _request(self) -> tuple[bytes, bytes] | None:
        """One complete request off the buffer, or None until more bytes arrive."""
        end = self.buffer.find(b"\r\n\r\n")
        if end < 0:
            return None
        head = bytes(self.buffer[:end]).lower()
        start = end + 4
        length = _header(head, b"content-length")
        if length:
            stop = start + int(length)
            if len(self.buffer) < stop:
                return None
            body = bytes(self.buffer[start:stop])
            del self.buffer[:stop]
            return head, body
        if b"chunked" in _header(head, b"transfer-encoding"):
            body, stop = _dechunk(self.buffer, start)
            if stop < 0:
                return None
            del self.buffer[:stop]
            return head, body
        del self.buffer[:start]
        return head, b""

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None


def _header(head: bytes, name: bytes) -> bytes:
    start = head.find(b"\r\n" + name + b":")
    if start < 0:
        return b""
    start += len(name) + 3
    end = head.find(b"\r\n", start)
    return head[start : end if end >= 0 else None].strip()


def _dechunk(buffer: bytearray, position: int) -> tuple[bytes, int]:
    """The body and where the request ends, or ``(b"", -1)`` while it is incomplete."""
    parts = []
    while True:
        line_end = buffer.find(b"\r\n", position)
        if line_end < 0:
            return b"", -1
        size = int(bytes(buffer[position:line_end]).split(b";")[0], 16)
        position = line_end + 2
        if size == 0:
            trailer_end = buffer.find(b"\r\n", position)
            # No trailers: the terminating CRLF follows at once.
            if trailer_end != position:
                trailer_end = buffer.find(b"\r\n\r\n", position)
                if trailer_end < 0:
                    return b"", -1
                return b"".join(parts), trailer_end + 4
            return b"".join(parts), position + 2
        if len(buffer) < position + size + 2:
            return b"", -1
        parts.append(bytes(buffer[position : position + size]))
        position += size + 2


if __name__ == "__main__":
    main(HttpSession, sys.argv[1:])

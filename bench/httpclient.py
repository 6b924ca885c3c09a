"""A small HTTP/1.1 keep-alive client for generating load: one connection per concurrent
caller, requests written as prepared bytes, answers read by Content-Length.

httpx costs several times more CPU per request, and on two cores the load generator shares the
machine with the hub; ``bench`` reports this client's capacity against the HTTP sink so that a
reader can tell it is not the bottleneck.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

__all__ = ["Connection", "HttpError"]


class HttpError(Exception):
    pass


class Connection:
    def __init__(self, host: str, port: int, *, headers: dict[str, str] | None = None) -> None:
        self.host, self.port = host, port
        self._fixed = "".join(f"{k}: {v}\r\n" for k, v in (headers or {}).items())
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def post_json(
        self, path: str, body: Any, *, headers: dict[str, str] | None = None
    ) -> tuple[int, bytes]:
        payload = json.dumps(body).encode()
        extra = "".join(f"{k}: {v}\r\n" for k, v in (headers or {}).items())
        head = (
            f"POST {path} HTTP/1.1\r\nhost: {self.host}:{self.port}\r\n{self._fixed}{extra}"
            f"content-type: application/json\r\ncontent-length: {len(payload)}\r\n\r\n"
        )
        return await self.request(head.encode() + payload)

    async def request(self, raw: bytes) -> tuple[int, bytes]:
        """Send one prepared request; reconnect once if the server closed an idle connection."""
        for attempt in (1, 2):
            if self._writer is None:
                self._reader, self._writer = await asyncio.open_connection(self.host, self.port)
            assert self._reader is not None
            try:
                self._writer.write(raw)
                return await self._response(self._reader)
            except (ConnectionError, asyncio.IncompleteReadError) as exc:
                self.close()
                if attempt == 2:
                    raise HttpError(f"connection failed: {exc!r}") from exc
        raise AssertionError("unreachable")

    async def _response(self, reader: asyncio.StreamReader) -> tuple[int, bytes]:
        head = await reader.readuntil(b"\r\n\r\n")
        lines = head.split(b"\r\n")
        status = int(lines[0].split()[1])
        length, close, chunked = 0, False, False
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            if name == b"content-length":
                length = int(value)
            elif name == b"connection" and value.strip().lower() == b"close":
                close = True
            elif name == b"transfer-encoding" and b"chunked" in value.lower():
                chunked = True
        if chunked:
            body = b""
            while size := int((await reader.readuntil(b"\r\n")).split(b";")[0], 16):
                body += (await reader.readexactly(size + 2))[:-2]
            await reader.readuntil(b"\r\n")
        else:
            body = await reader.readexactly(length) if length else b""
        if close:
            self.close()
        return status, body

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
        self._reader = self._writer = None

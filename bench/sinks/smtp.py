"""A minimal SMTP server (RFC 5321 subset: EHLO/HELO, MAIL, RCPT, DATA, RSET, NOOP, QUIT) that
accepts every message and records it by the token in its Subject (its last word).

It keeps nothing but the count and the tokens, so it stays far faster than any sender here;
``bench`` reports its capacity with the raw client. Run: ``python -m bench.sinks.smtp``.
"""

from __future__ import annotations

import asyncio
import sys

from bench.sinks.control import Recorder, main

__all__ = ["SmtpSession", "token_and_id"]

_EHLO = b"250-bench-sink\r\n250-PIPELINING\r\n250-8BITMIME\r\n250-SMTPUTF8\r\n250 SIZE 33554432\r\n"
_END = b"\r\n.\r\n"


def _header(headers: bytes, name: bytes) -> bytes:
    start = headers.find(b"\n" + name)
    if start < 0:
        return b""
    start += len(name) + 1
    end = headers.find(b"\r\n", start)
    return headers[start : end if end >= 0 else None].strip()


def token_and_id(message: bytes) -> tuple[str, str]:
    """The last word of the Subject, and the Message-ID."""
    headers = b"\r\n" + message[: message.find(b"\r\n\r\n")]
    subject = _header(headers, b"Subject:")
    message_id = _header(headers, b"Message-ID:") or _header(headers, b"Message-Id:")
    token = subject.rsplit(None, 1)[-1] if subject else b"-"
    return token.decode(errors="replace"), message_id.decode(errors="replace")


class SmtpSession(asyncio.Protocol):
    def __init__(self, recorder: Recorder) -> None:
        self.recorder = recorder
        self.buffer = bytearray()
        self.in_data = False
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        transport.write(b"220 bench-sink ESMTP\r\n")

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while self.transport is not None:
            if self.in_data:
                # The terminating line; a message whose data is empty ends at once.
                if self.buffer.startswith(b".\r\n"):
                    message = b""
                    del self.buffer[:3]
                else:
                    end = self.buffer.find(_END)
                    if end < 0:
                        return
                    message = bytes(self.buffer[: end + 2])
                    del self.buffer[: end + len(_END)]
                self.in_data = False
                self.recorder.record(*token_and_id(message))
                self.transport.write(b"250 2.0.0 Ok: queued\r\n")
            else:
                newline = self.buffer.find(b"\r\n")
                if newline < 0:
                    return
                line = bytes(self.buffer[:newline])
                del self.buffer[: newline + 2]
                self._command(line)

    def _command(self, line: bytes) -> None:
        assert self.transport is not None
        verb = line[:4].upper()
        if verb == b"EHLO":
            self.transport.write(_EHLO)
        elif verb in (b"HELO", b"MAIL", b"RCPT", b"RSET", b"NOOP"):
            self.transport.write(b"250 2.0.0 Ok\r\n")
        elif verb == b"DATA":
            self.in_data = True
            self.transport.write(b"354 End data with <CR><LF>.<CR><LF>\r\n")
        elif verb == b"QUIT":
            self.transport.write(b"221 2.0.0 Bye\r\n")
            self.transport.close()
            self.transport = None
        else:
            self.transport.write(b"502 5.5.2 Command not recognized\r\n")

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None


if __name__ == "__main__":
    main(SmtpSession, sys.argv[1:])

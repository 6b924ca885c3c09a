"""What every sink shares: the delivery record and the control port."""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
import time
from collections.abc import Callable

__all__ = ["Recorder", "serve"]


class Recorder:
    """Counts deliveries by token and streams each one to the watchers."""

    def __init__(self) -> None:
        self.deliveries = 0
        self.duplicates = 0
        self._seen: set[str] = set()
        self._watchers: set[asyncio.StreamWriter] = set()

    def record(self, token: str, ident: str) -> None:
        now = time.monotonic()
        self.deliveries += 1
        if token in self._seen:
            self.duplicates += 1
        else:
            self._seen.add(token)
        if self._watchers:
            line = f"{token} {now:.6f} {ident or '-'}\n".encode()
            for writer in list(self._watchers):
                if writer.is_closing():
                    self._watchers.discard(writer)
                else:
                    writer.write(line)

    def stats(self) -> dict[str, int]:
        return {
            "deliveries": self.deliveries,
            "unique": len(self._seen),
            "duplicates": self.duplicates,
        }

    def reset(self) -> None:
        self.deliveries = self.duplicates = 0
        self._seen.clear()

    async def handle_control(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        try:
            while line := await reader.readline():
                command = line.strip().upper()
                if command == b"STATS":
                    writer.write(json.dumps(self.stats()).encode() + b"\n")
                elif command == b"RESET":
                    self.reset()
                    writer.write(b"OK\n")
                elif command == b"WATCH":
                    self._watchers.add(writer)
                    writer.write(b"WATCHING\n")
                else:
                    writer.write(b"ERR unknown command\n")
                await writer.drain()
        except ConnectionError:
            pass
        finally:
            self._watchers.discard(writer)
            writer.close()


async def serve(
    make_protocol: Callable[[Recorder], asyncio.Protocol], *, port: int, control_port: int
) -> None:
    """Listen on both ports, print READY, serve until killed."""
    loop = asyncio.get_running_loop()
    recorder = Recorder()
    server = await loop.create_server(
        lambda: make_protocol(recorder), "127.0.0.1", port, backlog=4096, reuse_address=True
    )
    control = await asyncio.start_server(recorder.handle_control, "127.0.0.1", control_port)
    data_port = server.sockets[0].getsockname()[1]
    ctl_port = control.sockets[0].getsockname()[1]
    sys.stdout.write(f"READY {data_port} {ctl_port}\n")
    sys.stdout.flush()
    async with server, control:
        await asyncio.gather(server.serve_forever(), control.serve_forever())


def main(make_protocol: Callable[[Recorder], asyncio.Protocol], argv: list[str]) -> None:
    import argparse

    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--control-port", type=int, default=0)
    args = parser.parse_args(argv)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(make_protocol, port=args.port, control_port=args.control_port))

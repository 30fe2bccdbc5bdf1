"""Hostile and healthy fake SSH endpoints on loopback, served from a background loop.

The probe under test runs its own event loop (probe_fleet is synchronous), so the
servers live in another thread. Behaviours are plain coroutines over a stream pair;
every handler is tracked and cancelled on close so no server outlives its test.
"""

from __future__ import annotations

import asyncio
import socket
import struct
import threading
from typing import Awaitable, Callable, Iterator

Behaviour = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]

BANNER = b"SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3\r\n"


class EndpointLoop:
    """An event loop thread hosting fake endpoints; call close() (the fixture does)."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._servers: list[asyncio.Server] = []
        self._handlers: set[asyncio.Task[None]] = set()
        self._thread = threading.Thread(target=self.loop.run_forever, name="fake-endpoints", daemon=True)
        self._thread.start()

    def serve(self, behaviour: Behaviour, host: str = "127.0.0.1", backlog: int = 1024) -> int:
        """Start a server; returns its ephemeral port."""
        return self.serve_on(_bound(host), behaviour, backlog)

    def serve_on(self, sock: socket.socket, behaviour: Behaviour, backlog: int = 1024) -> int:
        """Start serving on an already bound (not yet listening) socket."""

        async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            task = asyncio.current_task()
            assert task is not None
            self._handlers.add(task)
            try:
                await behaviour(reader, writer)
            except (ConnectionError, OSError):
                pass  # the prober hung up: expected
            except asyncio.CancelledError:
                pass  # close() is shutting the endpoint down
            finally:
                self._handlers.discard(task)
                writer.transport.abort()

        async def start() -> asyncio.Server:
            return await asyncio.start_server(handler, sock=sock, backlog=backlog)

        server = asyncio.run_coroutine_threadsafe(start(), self.loop).result(timeout=5)
        self._servers.append(server)
        return int(sock.getsockname()[1])

    def close(self) -> None:
        async def shutdown() -> None:
            for server in self._servers:
                server.close()
            for task in list(self._handlers):
                task.cancel()
            await asyncio.gather(*self._handlers, return_exceptions=True)

        asyncio.run_coroutine_threadsafe(shutdown(), self.loop).result(timeout=5)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=5)
        self.loop.close()


def _bound(host: str) -> socket.socket:
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, 0))
    return sock


def refusing_socket(host: str = "127.0.0.1") -> socket.socket:
    """Bound, never listening: the kernel refuses connections, and the port stays ours."""
    return _bound(host)


def full_backlog(host: str = "127.0.0.1") -> tuple[socket.socket, list[socket.socket]]:
    """A listener whose accept queue is full: further SYNs are dropped, so connects hang.

    The only way to get a connect timeout without leaving loopback.
    """
    listener = _bound(host)
    listener.listen(0)
    filler = socket.create_connection(listener.getsockname()[:2], timeout=2)
    return listener, [filler]


# --- behaviours -------------------------------------------------------------------


def sends(data: bytes, *, then_close: bool = False) -> Behaviour:
    async def run(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(data)
        await writer.drain()
        if not then_close:
            await reader.read()  # hold until the prober hangs up
    return run


def chunks(parts: list[tuple[bytes, float]]) -> Behaviour:
    """Send each part, pausing after it: a banner split across packets."""

    async def run(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        for data, pause in parts:
            writer.write(data)
            await writer.drain()
            await asyncio.sleep(pause)
        await reader.read()
    return run


def drip(pattern: bytes, interval: float) -> Behaviour:
    """A tarpit: one byte per interval, forever (endlessh style)."""

    async def run(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        for byte in _cycle(pattern):
            writer.write(byte)
            await writer.drain()
            await asyncio.sleep(interval)
    return run


def endless_lines(line: bytes = b"Welcome, please wait\r\n") -> Behaviour:
    async def run(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            writer.write(line * 64)
            await writer.drain()
    return run


async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await reader.read()


async def close_at_once(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    writer.close()


async def reset_at_once(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """SO_LINGER 0 then close sends RST: what a crashing or overloaded listener does."""
    sock = writer.get_extra_info("socket")
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


def _cycle(pattern: bytes) -> Iterator[bytes]:
    while True:
        for value in pattern:
            yield bytes([value])

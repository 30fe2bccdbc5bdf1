"""What one fake sshd does on a connection: the modes a prober can tell apart, and the protocol.

Why not real sshd per instance: the scale target is 10,000 endpoints in one process,
and the failure under study is only about the first bytes of the conversation. A
healthy sshd sends its identification line at once; the incident's sshd never does
while the kernel still completes the TCP handshake. Those behaviours (and a refused
port, and a slow banner) are what a prober can observe, so they are all we fake.

The listeners, their event loop and the network cut are ``endpoints``' job; this module
is the conversation on one accepted connection and the record of one endpoint.
"""

from __future__ import annotations

import asyncio
import enum
import socket
from dataclasses import dataclass, field
from typing import Protocol

BANNER = b"SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3\r\n"


class Mode(str, enum.Enum):
    """What a prober sees when it connects to the instance's sshd port."""

    HEALTHY = "healthy"  # banner at once
    HUNG = "hung"  # TCP accepted, never a byte: the incident
    REFUSING = "refusing"  # nothing listens: connection refused
    SLOW = "slow"  # banner after ``slow_delay`` seconds


class Pace(Protocol):
    """What a connection needs of the fleet serving it (``endpoints.EndpointFleet``)."""

    slow_delay: float
    hold: float
    banner: bytes


class Connection(asyncio.Protocol):
    """One accepted TCP connection; behaves as the endpoint's mode was when it arrived."""

    def __init__(self, endpoint: Endpoint, pace: Pace) -> None:
        self._endpoint = endpoint
        self._fleet = pace
        self._transport: asyncio.Transport | None = None
        self._timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport
        self._endpoint.connections.add(self)
        loop = asyncio.get_running_loop()
        mode = self._endpoint.mode
        if mode is Mode.HEALTHY:
            self._send_banner()
        elif mode is Mode.SLOW:
            self._timer = loop.call_later(self._fleet.slow_delay, self._send_banner)
        # HUNG: accept, read and discard, never answer, hold until the peer goes.

    def _send_banner(self) -> None:
        if self._transport is None or self._transport.is_closing():
            return
        self._transport.write(self._fleet.banner)
        # Real sshd would now wait for the client's line and do key exchange; a prober
        # only wants the banner, so hang up a little later if the peer has not.
        self._timer = asyncio.get_running_loop().call_later(self._fleet.hold, self.close)

    def data_received(self, data: bytes) -> None:
        """Client identification and key exchange are ignored: the banner is all we fake."""

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()

    def abort(self) -> None:
        if self._transport is not None:
            self._transport.abort()

    def connection_lost(self, exc: Exception | None) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._endpoint.connections.discard(self)
        self._transport = None


@dataclass(eq=False)
class Endpoint:
    """One instance's fake sshd: its mode, its sockets (owned by ``endpoints``) and open connections."""

    instance_id: str
    ip: str
    mode: Mode
    server: asyncio.AbstractServer | None = None
    connections: set[Connection] = field(default_factory=set)
    generation: int = 0
    cut: bool = False  # the network path is cut: connections time out whatever the mode
    dark: tuple[socket.socket, socket.socket] | None = None  # while cut: the full listener and the connection filling it

"""SSH probe: does sshd still answer, or does the kernel accept TCP and nothing follows?

The incident orch exists for looks like BANNER_TIMEOUT: the handshake completes (the
kernel does that) but sshd cannot fork to send its identification line. Everything
else here keeps that signal honest: one total deadline so a tarpit cannot stall a
sweep, a byte cap, re-probes spread over a window so one dropped connection is not
an outage, and ERROR / NO_ROUTE for "we could not probe" (out of file descriptors; no
route from here, a local firewall) so our own trouble never reads as a dead box.
"""

from __future__ import annotations

import asyncio
import errno
import ipaddress
import os
import resource
import socket
from datetime import datetime, timezone
from typing import Awaitable, Callable, Mapping

from orchestrator.config import ProbeSettings
from orchestrator.model import ProbeAttempt, ProbeOutcome, ProbeResult
from orchestrator.observe.banner import BannerReader, BannerScan, ScanStatus

PERMISSIONS: frozenset[str] = frozenset()  # no AWS API: plain TCP to the instances

Target = str | tuple[str, int] | None
"""A host (probed on settings.port), a (host, port) pair, or None when there is no address."""

Clock = Callable[[], datetime]
Sleep = Callable[[float], Awaitable[None]]
Counted = Callable[[int, int], None]
"""(targets decided so far, targets in all): a progress display's n/N."""

_RECV_BYTES = 4096
_FD_RESERVE = 32  # descriptors left for everything else in the process (boto3, logs, ...)
# Unauthenticated connections one sshd gets from us at once: below MaxStartups' default
# start (10), with room for real users, so the prober never makes sshd shed its own probes.
PER_ENDPOINT = 4
# Said by our own host before any packet reached the instance: no route in our route
# table (ENETUNREACH), an ICMP unreachable / prohibited from our side (EHOSTUNREACH), or
# a local firewall refusing the send (EACCES, EPERM). In a VPC the instance's own
# security group drops silently (CONNECT_TIMEOUT), so this is about where the prober
# stands, not about sshd.
NO_ROUTE_ERRNOS = frozenset({errno.ENETUNREACH, errno.EHOSTUNREACH, errno.EACCES, errno.EPERM})


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


async def probe_once(
    host: str,
    port: int,
    *,
    connect_timeout: float,
    banner_timeout: float,
    max_bytes: int,
    clock: Clock,
) -> ProbeAttempt:
    """One TCP connect and banner read; never raises for anything the network does.

    A bare non-blocking socket (not asyncio streams) so that the descriptor is closed
    the moment the attempt ends, even on cancellation: the fleet's semaphore then
    bounds open sockets exactly.
    """
    loop = asyncio.get_running_loop()
    started_at = clock()
    t0 = loop.time()

    def attempt(outcome: ProbeOutcome, detail: str = "", banner: str | None = None) -> ProbeAttempt:
        return ProbeAttempt(outcome, started_at, loop.time() - t0, banner=banner, detail=detail)

    try:
        family, address = await _resolve(loop, host, port)
        sock = socket.socket(family, socket.SOCK_STREAM)
    except OSError as exc:
        return attempt(ProbeOutcome.ERROR, f"cannot probe: {_describe(exc)}")
    try:
        sock.setblocking(False)
        try:
            async with asyncio.timeout(connect_timeout):
                await loop.sock_connect(sock, address)
        except TimeoutError:
            return attempt(ProbeOutcome.CONNECT_TIMEOUT, f"no TCP handshake within {connect_timeout:g}s")
        except ConnectionRefusedError:
            return attempt(ProbeOutcome.REFUSED, "connection refused")
        except (ConnectionResetError, BrokenPipeError) as exc:
            return attempt(ProbeOutcome.RESET, f"connect: {_describe(exc)}")
        except OSError as exc:
            return attempt(connect_error_outcome(exc), f"connect: {_describe(exc)}")
        outcome, scan = await _read_banner(loop, sock, banner_timeout, max_bytes)
        if outcome is ProbeOutcome.OK:
            await _identify(loop, sock)
        return attempt(outcome, scan.why, scan.banner if outcome is ProbeOutcome.OK else None)
    finally:
        sock.close()


IDENTIFICATION = b"SSH-2.0-orch_probe\r\n"
_IDENTIFY_SECONDS = 0.5


async def _identify(loop: asyncio.AbstractEventLoop, sock: socket.socket) -> None:
    """Answer sshd's banner with our own identification line before hanging up: one log line, not two.

    Measured with Debian's OpenSSH 9.2 (tests/e2e/test_fail2ban.py): a probe that reads the
    banner and closes leaves ``kex_exchange_identification: Connection closed by remote
    host`` and ``Connection closed by ADDR port N``; one that sends its identification
    first leaves only ``Connection closed (or reset) by ADDR port N [preauth]``. fail2ban's sshd
    filter counts one failure per probe either way in its ddos and aggressive modes, and
    none in normal mode: the prober's subnet belongs in ``ignoreip`` (docs/deploy.md). The
    banner already decided the probe, so a send that fails changes nothing.
    """
    try:
        async with asyncio.timeout(_IDENTIFY_SECONDS):
            await loop.sock_sendall(sock, IDENTIFICATION)
    except (TimeoutError, OSError):
        pass


def connect_error_outcome(exc: OSError) -> ProbeOutcome:
    """A connect error other than refused/reset/timeout: no route from here, or could not probe."""
    return ProbeOutcome.NO_ROUTE if exc.errno in NO_ROUTE_ERRNOS else ProbeOutcome.ERROR


async def _read_banner(
    loop: asyncio.AbstractEventLoop, sock: socket.socket, banner_timeout: float, max_bytes: int
) -> tuple[ProbeOutcome, BannerScan]:
    """Read under one total deadline: a tarpit dripping a byte a second never resets it."""
    reader = BannerReader(max_bytes)
    try:
        async with asyncio.timeout(banner_timeout):
            while True:
                chunk = await loop.sock_recv(sock, _RECV_BYTES)
                scan = reader.feed(chunk) if chunk else reader.finish()
                if scan.decided:
                    return _outcome(scan, silent=ProbeOutcome.RESET), scan
    except TimeoutError:
        scan = reader.expire()
        return _outcome(scan, silent=ProbeOutcome.BANNER_TIMEOUT), scan
    except (ConnectionResetError, BrokenPipeError) as exc:
        scan = reader.finish()
        if scan.status is ScanStatus.SILENT:
            scan = BannerScan(ScanStatus.SILENT, why=f"{_describe(exc)} before the banner")
        return _outcome(scan, silent=ProbeOutcome.RESET), scan
    except OSError as exc:
        return ProbeOutcome.ERROR, BannerScan(ScanStatus.SILENT, why=f"read: {_describe(exc)}")


def _outcome(scan: BannerScan, *, silent: ProbeOutcome) -> ProbeOutcome:
    """Map the reader's decision to an outcome.

    sshd shedding load ("Exceeded MaxStartups") is a RESET, a failure: in the incident
    stalled children pile up until sshd sheds every new connection, so treating it as
    "could not probe" would hide the late stage. Re-probes absorb the random shedding
    of a merely busy sshd.
    """
    if scan.status is ScanStatus.DROPPED:
        return ProbeOutcome.RESET
    if scan.status is ScanStatus.OK:
        return ProbeOutcome.OK
    if scan.status is ScanStatus.NOT_SSH:
        return ProbeOutcome.NOT_SSH
    return silent


async def _resolve(loop: asyncio.AbstractEventLoop, host: str, port: int) -> tuple[int, tuple[str, int]]:
    """IP literals (the fleet's case) need no resolver thread; names take the first address."""
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        family, _, _, _, sockaddr = infos[0]
        return family, (str(sockaddr[0]), int(sockaddr[1]))
    return (socket.AF_INET6 if ip.version == 6 else socket.AF_INET), (host, port)


def _describe(exc: OSError) -> str:
    if exc.errno is not None and exc.errno in errno.errorcode:
        return f"{errno.errorcode[exc.errno]} ({exc.strerror})"
    return str(exc) or type(exc).__name__


def fd_budget(requested: int) -> int:
    """Concurrency the process can afford in file descriptors (a Lambda has 1024).

    Probing past the limit would only turn probes into ERROR; clamping keeps them
    meaningful. Anything opened later still degrades to ERROR, never to a failure.
    """
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return requested
    try:
        in_use = len(os.listdir("/proc/self/fd"))
    except OSError:
        in_use = 0
    return max(1, min(requested, soft - in_use - _FD_RESERVE))


async def probe_fleet_async(
    targets: Mapping[str, Target],
    settings: ProbeSettings,
    clock: Clock = utc_now,
    sleep: Sleep = asyncio.sleep,
    progress: Counted | None = None,
) -> dict[str, ProbeResult]:
    """Probe every target; re-probe the ones that did not answer until they have
    ``settings.attempts`` attempts, spread over ``settings.retry_window``.

    One answer is proof enough, so re-probing stops at the first OK. A fixed pool of
    workers (not one task per target) takes first attempts; only failing targets get
    a follow-up task, which sleeps without holding a socket. Every attempt holds the
    semaphore, so open sockets never exceed the concurrency; targets that share an
    endpoint (host, port) also share PER_ENDPOINT.
    """
    loop = asyncio.get_running_loop()
    items = list(targets.items())
    concurrency = fd_budget(settings.concurrency)
    slots = asyncio.Semaphore(concurrency)
    spacing = settings.retry_window / (settings.attempts - 1) if settings.attempts > 1 else 0.0
    endpoints: dict[tuple[str, int], asyncio.Semaphore] = {}
    attempts: dict[str, list[ProbeAttempt]] = {}
    follow_ups: list[asyncio.Task[None]] = []
    decided = 0

    def one_decided() -> None:
        # A target is decided when it answered, has no address, or used all its attempts.
        nonlocal decided
        decided += 1
        if progress is not None:
            progress(decided, len(items))

    async def probe(address: str | tuple[str, int]) -> tuple[float, ProbeAttempt]:
        host, port = (address, settings.port) if isinstance(address, str) else address
        endpoint = endpoints.setdefault((host, port), asyncio.Semaphore(PER_ENDPOINT))
        async with endpoint, slots:  # endpoint first: waiting for it must not hold a global slot
            started = loop.time()
            return started, await probe_once(
                host,
                port,
                connect_timeout=settings.connect_timeout,
                banner_timeout=settings.banner_timeout,
                max_bytes=settings.max_banner_bytes,
                clock=clock,
            )

    async def follow_up(key: str, address: str | tuple[str, int], first_started: float) -> None:
        for number in range(1, settings.attempts):
            delay = first_started + number * spacing - loop.time()
            if delay > 0:
                await sleep(delay)
            _, result = await probe(address)
            attempts[key].append(result)
            if result.outcome is ProbeOutcome.OK:
                break
        one_decided()

    async def worker(queue: list[tuple[str, Target]]) -> None:
        while queue:
            key, address = queue.pop()
            if address is None:
                attempts[key] = [ProbeAttempt(ProbeOutcome.NO_ADDRESS, clock(), 0.0, detail="instance has no address")]
                one_decided()
                continue
            started, result = await probe(address)
            attempts[key] = [result]
            if result.outcome is not ProbeOutcome.OK and settings.attempts > 1:
                follow_ups.append(asyncio.create_task(follow_up(key, address, started)))
            else:
                one_decided()

    queue = items[::-1]  # pop() from the end keeps the caller's order
    workers = [asyncio.create_task(worker(queue)) for _ in range(min(concurrency, len(items)))]
    try:
        await asyncio.gather(*workers)
        await asyncio.gather(*follow_ups)
    finally:
        pending = [t for t in (*workers, *follow_ups) if not t.done()]
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
    return {key: ProbeResult(key, tuple(attempts[key])) for key, _ in items}


def probe_fleet(
    targets: Mapping[str, Target],
    settings: ProbeSettings,
    clock: Clock = utc_now,
    sleep: Sleep = asyncio.sleep,
    progress: Counted | None = None,
) -> dict[str, ProbeResult]:
    """Synchronous entry for the sweep and the Lambda: one event loop, created and closed here."""
    return asyncio.run(probe_fleet_async(targets, settings, clock=clock, sleep=sleep, progress=progress))

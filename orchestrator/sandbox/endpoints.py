"""Fake sshd endpoints: one listening socket per instance, all on one event loop.

What each fake sshd says on a connection (its ``Mode``, the banner) is ``sshd``'s job;
this module owns the listeners: binding, rebinding on a mode change, the network cut,
the loop they are served from and the file descriptors they cost.

A network fault between the prober and a box (a route, a NAT, an ACL, a dark zone) is
the path, not sshd: ``set_cut`` drops the prober's packets, so a connection attempt
times out whatever sshd is doing, and the endpoint's mode (a reboot's, a flap's) takes
effect again when the cut is lifted. On loopback, without root and without a firewall,
a cut endpoint is a listening socket of backlog 0 whose one queue slot is taken by a
connection of our own and never accepted: Linux drops a SYN to a listener whose accept
queue is full, so the prober's handshake never completes and its connect times out.

Why one loop: a thread per endpoint would be 10,000 threads. One asyncio loop in one
background thread serves every endpoint; other threads change modes through
``call_soon_threadsafe``-style hand-offs, so callers never touch loop state directly.

File descriptors: each endpoint costs one fd for its listening socket (none while
REFUSING) plus one per open connection. ``ensure_fd_limit`` raises the soft
RLIMIT_NOFILE to the hard limit (and, as root, the hard limit too when needed), so the
ceiling is ``RLIMIT_NOFILE - open connections - about 100`` for the rest of the
process (moto server, clients, pytest). At a hard limit of 20,000 that is about
18,000 endpoints with a prober that keeps up to 900 connections open.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import resource
import socket
import threading
from concurrent.futures import Future
from typing import Any, Callable, Iterable

from orchestrator.sandbox.sshd import BANNER, Connection, Endpoint, Mode

log = logging.getLogger(__name__)

FD_HEADROOM = 1024  # probes in flight, moto's server and clients, pytest itself


class FdLimitError(RuntimeError):
    """Not enough file descriptors for the endpoints asked for."""


def ensure_fd_limit(needed: int) -> int:
    """Raise RLIMIT_NOFILE so ``needed`` descriptors fit; return the new soft limit.

    The soft limit always goes up to the hard one (it costs nothing and a sweep in the
    same process needs fds too). Past the hard limit only a privileged process can go;
    when that fails the error says how many were asked for and what the ceiling is.
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        soft = hard
    if soft >= needed:
        return soft
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (needed, max(needed, hard)))
    except (ValueError, OSError) as exc:
        raise FdLimitError(
            f"{needed} file descriptors needed but RLIMIT_NOFILE is {soft} (hard {hard}) and cannot be raised: {exc}; "
            "run fewer endpoints or raise the limit (ulimit -n) before starting"
        ) from None
    return needed


class EndpointFleet:
    """Every fake sshd of a simulated fleet, served from one background event loop.

    All public methods are thread-safe and synchronous: they hand work to the loop and
    wait for it, so when ``set_mode`` returns the new behaviour is already in force.
    Do not call them from inside the loop thread (they would wait on themselves).
    """

    def __init__(
        self,
        port: int,
        *,
        slow_delay: float = 1.5,
        hold: float = 2.0,
        banner: bytes = BANNER,
        backlog: int = 64,
    ) -> None:
        if not 1 <= port <= 65535:
            raise ValueError(f"port must be 1..65535, got {port}")
        self.port = port
        self.slow_delay = slow_delay
        self.hold = hold
        self.banner = banner
        self.backlog = backlog
        self._endpoints: dict[str, Endpoint] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle -------------------------------------------------------------------

    def start(self, expected_endpoints: int = 0) -> None:
        """Start the loop thread after making sure the fd limit fits the endpoints."""
        if self._thread is not None:
            raise RuntimeError("endpoint fleet already started")
        ensure_fd_limit(expected_endpoints + FD_HEADROOM)
        loop = asyncio.new_event_loop()
        ready = threading.Event()

        def run() -> None:
            asyncio.set_event_loop(loop)
            loop.call_soon(ready.set)
            loop.run_forever()

        # daemon: a test that forgets stop() must not hang the interpreter at exit.
        self._thread = threading.Thread(target=run, name="orch-sandbox-endpoints", daemon=True)
        self._loop = loop
        self._thread.start()
        ready.wait()

    def stop(self) -> None:
        """Close every listener and connection, stop the loop and join its thread."""
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        try:
            self._call(self._close_all)
        finally:
            loop.call_soon_threadsafe(loop.stop)
            thread.join(timeout=10)
            loop.close()
            self._loop = None
            self._thread = None

    # -- public, thread-safe ---------------------------------------------------------

    def add(self, instance_id: str, ip: str, mode: Mode = Mode.HEALTHY) -> None:
        """Create the endpoint of one instance (bound unless REFUSING)."""
        self.add_many([(instance_id, ip, mode)])

    def add_many(self, items: Iterable[tuple[str, str, Mode]]) -> None:
        """Create many endpoints in one hand-off to the loop (10,000 binds in one go)."""
        batch = list(items)
        self._call(self._add_many, batch)

    def set_mode(self, instance_id: str, mode: Mode, *, delay: float = 0.0) -> None:
        """Switch behaviour now, or ``delay`` seconds from now unless changed meanwhile.

        Open connections are reset on an immediate change, as a reboot or a dying
        sshd would reset them. A delayed change is cancelled by any later change.
        """
        mode = Mode(mode)
        if delay <= 0:
            self._call(self._apply, instance_id, mode)
        else:
            self._call(self._schedule, instance_id, mode, delay)

    def set_cut(self, instance_id: str, cut: bool) -> None:
        """Cut the network path to the endpoint (a connection attempt times out) or restore it.

        Connections already open are left as they are (a cut path stalls them, it does
        not reset them); the mode set meanwhile is the one in force once restored.
        """
        self._call(self._set_cut, instance_id, cut)

    def cut_off(self) -> set[str]:
        """The endpoints whose network path is cut now."""
        return set(self._call(lambda: {i for i, e in self._endpoints.items() if e.cut}))

    def remove(self, instance_id: str) -> None:
        """Forget an endpoint (the instance is gone): nothing listens there any more."""
        self._call(self._remove, instance_id)

    def mode(self, instance_id: str) -> Mode:
        return self._call(lambda: self._endpoints[instance_id].mode)

    def modes(self) -> dict[str, Mode]:
        return self._call(lambda: {i: e.mode for i, e in self._endpoints.items()})

    def address(self, instance_id: str) -> tuple[str, int]:
        return self._call(lambda: (self._endpoints[instance_id].ip, self.port))

    def __contains__(self, instance_id: object) -> bool:
        return bool(self._call(lambda: instance_id in self._endpoints))

    def __len__(self) -> int:
        return int(self._call(lambda: len(self._endpoints)))

    # -- loop side -------------------------------------------------------------------

    def _call(self, fn: Callable[..., Any], *args: Any) -> Any:
        loop = self._loop
        if loop is None:
            raise RuntimeError("endpoint fleet not started")
        if threading.current_thread() is self._thread:
            raise RuntimeError("EndpointFleet methods must not be called from its own loop thread")
        result: Future[Any] = Future()

        def run() -> None:
            try:
                outcome = fn(*args)
                if asyncio.iscoroutine(outcome):
                    task = loop.create_task(outcome)
                    task.add_done_callback(lambda t: _copy_outcome(t, result))
                else:
                    result.set_result(outcome)
            except BaseException as exc:  # noqa: BLE001 - handed back to the caller
                result.set_exception(exc)

        loop.call_soon_threadsafe(run)
        return result.result(timeout=120)

    async def _add_many(self, batch: list[tuple[str, str, Mode]]) -> None:
        for instance_id, _, _ in batch:
            if instance_id in self._endpoints:
                raise ValueError(f"endpoint for {instance_id} already exists")
        added: list[str] = []
        try:
            for instance_id, ip, mode in batch:
                endpoint = Endpoint(instance_id, ip, Mode(mode))
                self._endpoints[instance_id] = endpoint
                added.append(instance_id)
                if endpoint.mode is not Mode.REFUSING:
                    await self._listen(endpoint)
        except BaseException:
            for instance_id in added:  # all or nothing: no half-built fleet
                self._remove(instance_id)
            raise

    async def _listen(self, endpoint: Endpoint) -> None:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            # Re-binding after REFUSING must not wait for TIME_WAIT of old connections.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((endpoint.ip, self.port))
            sock.listen(self.backlog)
            sock.setblocking(False)
        except OSError as exc:
            sock.close()
            hint = " (another sandbox on the same addresses? give another --port, or --port 0 for a free one)" if exc.errno == errno.EADDRINUSE else ""
            raise OSError(exc.errno, f"cannot listen on {endpoint.ip}:{self.port} for {endpoint.instance_id}: {exc.strerror}{hint}") from None
        loop = asyncio.get_running_loop()
        endpoint.server = await loop.create_server(lambda: Connection(endpoint, self), sock=sock)

    def _unlisten(self, endpoint: Endpoint) -> None:
        if endpoint.server is not None:
            endpoint.server.close()
            endpoint.server = None
        if endpoint.dark is not None:
            for sock in endpoint.dark:
                sock.close()
            endpoint.dark = None

    def _darken(self, endpoint: Endpoint) -> None:
        """Bind the endpoint's address with a listener whose accept queue is full: SYNs are dropped."""
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        filler = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            listener.bind((endpoint.ip, self.port))
            listener.listen(0)  # Linux queues backlog + 1: the filler's connection takes the one slot
            filler.settimeout(0.5)
            try:
                filler.connect((endpoint.ip, self.port))  # loopback: the handshake completes at once
            except TimeoutError:
                pass  # a probe's connection took the slot first: the queue is full all the same
        except OSError as exc:
            listener.close()
            filler.close()
            raise OSError(exc.errno, f"cannot cut {endpoint.ip}:{self.port} for {endpoint.instance_id}: {exc.strerror}") from None
        endpoint.dark = (listener, filler)

    async def _realize(self, endpoint: Endpoint) -> None:
        """Make the sockets match the endpoint's mode and cut."""
        if endpoint.cut:
            if endpoint.dark is None:
                self._unlisten(endpoint)
                self._darken(endpoint)
        elif endpoint.mode is Mode.REFUSING or endpoint.dark is not None:
            self._unlisten(endpoint)
        if not endpoint.cut and endpoint.mode is not Mode.REFUSING and endpoint.server is None:
            await self._listen(endpoint)

    async def _set_cut(self, instance_id: str, cut: bool) -> None:
        endpoint = self._endpoints[instance_id]
        if endpoint.cut is not cut:
            endpoint.cut = cut
            await self._realize(endpoint)

    def _reset_connections(self, endpoint: Endpoint) -> None:
        for connection in list(endpoint.connections):
            connection.abort()

    async def _apply(self, instance_id: str, mode: Mode) -> None:
        endpoint = self._endpoints[instance_id]
        endpoint.generation += 1
        await self._switch(endpoint, mode)

    async def _switch(self, endpoint: Endpoint, mode: Mode) -> None:
        self._reset_connections(endpoint)
        endpoint.mode = mode
        await self._realize(endpoint)

    def _schedule(self, instance_id: str, mode: Mode, delay: float) -> None:
        endpoint = self._endpoints[instance_id]
        expected = endpoint.generation
        loop = asyncio.get_running_loop()

        def fire() -> None:
            if self._endpoints.get(instance_id) is not endpoint or endpoint.generation != expected:
                return  # superseded by a later change, or the instance is gone
            endpoint.generation += 1
            task = loop.create_task(self._switch(endpoint, mode))
            task.add_done_callback(_log_failure)

        loop.call_later(delay, fire)

    def _remove(self, instance_id: str) -> None:
        endpoint = self._endpoints.pop(instance_id, None)
        if endpoint is not None:
            endpoint.generation += 1
            self._reset_connections(endpoint)
            self._unlisten(endpoint)

    def _close_all(self) -> None:
        for instance_id in list(self._endpoints):
            self._remove(instance_id)


def _copy_outcome(task: asyncio.Task[Any], result: Future[Any]) -> None:
    if task.cancelled():
        result.cancel()
    elif task.exception() is not None:
        result.set_exception(task.exception())  # type: ignore[arg-type]
    else:
        result.set_result(task.result())


def _log_failure(task: asyncio.Task[Any]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.warning("delayed endpoint mode change failed: %s", task.exception())

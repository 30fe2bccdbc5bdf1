"""Peers on 127.0.0.1 that do not speak HTTP, or speak it badly: what a webhook URL may point at.

Each server reads whatever the client sends (up to the end of its headers and body,
or a moment's worth), answers with its script, and keeps the connection until told.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from typing import Callable, Iterator

Script = Callable[[socket.socket, threading.Event], None]


def _read_request(conn: socket.socket) -> None:
    conn.settimeout(2.0)
    data = b""
    try:
        while b"\r\n\r\n" not in data:
            chunk = conn.recv(4096)
            if not chunk:
                return
            data += chunk
        head, _, body = data.partition(b"\r\n\r\n")
        length = 0
        for line in head.split(b"\r\n"):
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":", 1)[1])
        while len(body) < length:
            chunk = conn.recv(4096)
            if not chunk:
                return
            body += chunk
    except OSError:
        return


def sends(payload: bytes, read_first: bool = True) -> Script:
    """Answer ``payload`` (then hold the connection open until the test ends)."""

    def script(conn: socket.socket, stop: threading.Event) -> None:
        if read_first:
            _read_request(conn)
        try:
            conn.sendall(payload)
        except OSError:
            return
        stop.wait(10)

    return script


def drips(payload: bytes, every: float = 0.05, read_first: bool = True) -> Script:
    """Answer one byte at a time, each well inside any per-read timeout, for as long as the client listens."""

    def script(conn: socket.socket, stop: threading.Event) -> None:
        if read_first:
            _read_request(conn)
        for i in range(len(payload) * 1000):
            if stop.wait(every):
                return
            try:
                conn.sendall(payload[i % len(payload) : i % len(payload) + 1])
            except OSError:
                return

    return script


SSHD_BANNER = b"SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3\r\n"
GARBAGE_STATUS = b"\x00\xffHELLO THERE\r\n\r\n"
MANY_HEADERS = b"HTTP/1.1 200 OK\r\n" + b"".join(b"X-H%d: v\r\n" % i for i in range(150)) + b"\r\n"
LONG_HEADER = b"HTTP/1.1 200 OK\r\nX-Long: " + b"a" * 65_536 + b"\r\n\r\n"
BAD_CHUNKED = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz-not-hex\r\nabc\r\n"
SHORT_BODY = b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly this"
DRIP_HEADERS = b"HTTP/1.1 200 OK\r\n" + b"X-Slow: " + b"z" * 10_000 + b"\r\n\r\n"


@contextlib.contextmanager
def tcp_server(script: Script) -> Iterator[str]:
    """A listener on 127.0.0.1 running ``script`` per connection; yields a webhook URL with a secret path."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    listener.settimeout(0.2)
    stop = threading.Event()
    threads: list[threading.Thread] = []

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except OSError:
                continue
            thread = threading.Thread(target=_run, args=(conn,), daemon=True)
            threads.append(thread)
            thread.start()

    def _run(conn: socket.socket) -> None:
        with conn:
            script(conn, stop)

    acceptor = threading.Thread(target=serve, daemon=True)
    acceptor.start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}/services/T000/B000/SECRET-PATH"
    finally:
        stop.set()
        acceptor.join(2)
        listener.close()

"""A scripted HTTP server on 127.0.0.1 (http.server in a thread) standing in for Slack/PagerDuty.

Each POST gets the next scripted reply: (status, headers) or HANG (read the request,
never answer until the test ends). Every request body is kept, parsed as JSON.
"""

from __future__ import annotations

import contextlib
import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Iterator

HANG = "hang"


@dataclass
class Script:
    replies: list[Any]
    bodies: list[Any] = field(default_factory=list)
    paths: list[str] = field(default_factory=list)
    release: threading.Event = field(default_factory=threading.Event)
    url: str = ""

    def next_reply(self) -> Any:
        return self.replies.pop(0) if len(self.replies) > 1 else self.replies[0]


@contextlib.contextmanager
def webhook_server(replies: list[Any]) -> Iterator[Script]:
    script = Script(list(replies))

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 (http.server's name)
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length)
            script.paths.append(self.path)
            script.bodies.append(json.loads(raw) if raw else None)
            reply = script.next_reply()
            if reply == HANG:
                script.release.wait(30)
                return
            status, headers = reply
            body = b'{"status":"ok"}' if status < 300 else b'{"status":"no"}'
            self.send_response(status)
            for key, value in headers.items():
                self.send_header(key, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            return None

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    script.url = f"http://127.0.0.1:{server.server_address[1]}/hook/SECRET-PATH"
    try:
        yield script
    finally:
        script.release.set()
        server.shutdown()
        server.server_close()

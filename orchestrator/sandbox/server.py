"""An embedded moto server on 127.0.0.1 and the environment boto3 needs to reach it.

The sandbox runs moto as a real HTTP server (not the in-process ``mock_aws``) so the
code under test talks to it exactly as it talks to AWS: through boto3, over a socket,
with retries and paginators, in another process if it likes. Only loopback is ever
bound, and the credentials are fake, so nothing can reach a real account.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from moto.server import ThreadedMotoServer

DEFAULT_REGION = "us-east-1"
FAKE_KEY = "sandbox"
HOST = "127.0.0.1"


def sandbox_env(endpoint_url: str, region: str = DEFAULT_REGION) -> dict[str, str]:
    """Variables that point any boto3 client at the sandbox and away from real AWS.

    AWS_ENDPOINT_URL redirects every service; the fake keys stop boto3 from looking for
    real ones; the metadata switch stops it from probing 169.254.169.254.
    """
    return {
        "AWS_ENDPOINT_URL": endpoint_url,
        "AWS_ACCESS_KEY_ID": FAKE_KEY,
        "AWS_SECRET_ACCESS_KEY": FAKE_KEY,
        "AWS_REGION": region,
        "AWS_DEFAULT_REGION": region,
        "AWS_EC2_METADATA_DISABLED": "true",
    }


# werkzeug logs each request, and the traceback of any request moto fails on; flask and
# moto log through their own loggers.
SERVER_LOGGERS = ("werkzeug", "flask.app", "moto")


def log_requests(path: Path) -> Callable[[], None]:
    """Send the server's request lines and tracebacks to ``path``, not the terminal.

    Returns the function that undoes it (and closes the file).
    """
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(levelname)s %(message)s"))
    saved = []
    for name in SERVER_LOGGERS:
        logger = logging.getLogger(name)
        # werkzeug adds a stream handler of its own on its first request: replace it too.
        saved.append((logger, logger.level, logger.propagate, list(logger.handlers)))
        logger.handlers = [handler]
        logger.setLevel(logging.INFO)
        logger.propagate = False

    def undo() -> None:
        for logger, level, propagate, handlers in saved:
            logger.handlers = handlers
            logger.setLevel(level)
            logger.propagate = propagate
        handler.close()

    return undo


@dataclass
class MotoServer:
    """A ThreadedMotoServer bound to 127.0.0.1; port 0 lets the kernel pick a free one."""

    port: int = 0
    quiet: bool = True
    _server: ThreadedMotoServer | None = field(default=None, init=False, repr=False)
    _url: str | None = field(default=None, init=False)

    def start(self) -> str:
        """Start serving and return the endpoint URL (``http://127.0.0.1:PORT``)."""
        if self._server is not None:
            raise RuntimeError("moto server already started")
        if self.quiet:
            # werkzeug logs one line per request to stderr: thousands per sweep.
            logging.getLogger("werkzeug").setLevel(logging.ERROR)
        server = ThreadedMotoServer(ip_address=HOST, port=self.port, verbose=False)
        server.start()
        host, port = server.get_host_and_port()
        self._server = server
        self._url = f"http://{host}:{port}"
        return self._url

    @property
    def endpoint_url(self) -> str:
        if self._url is None:
            raise RuntimeError("moto server not started")
        return self._url

    def stop(self) -> None:
        """Shut the HTTP server down and join its thread; safe to call twice."""
        server, self._server = self._server, None
        if server is not None:
            server.stop()

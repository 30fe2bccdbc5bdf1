"""Pure decision of what the bytes a server sent before its SSH banner mean.

Kept free of sockets and clocks so every hostile byte sequence can be tested (and
fuzzed) without a server. RFC 4253 §4.2: the server may send other lines before the
identification line ``SSH-protoversion-softwareversion``; no line may exceed 255
bytes including CR LF, and no other line may start with ``SSH-``.

The reader is prefix-consistent: once it decides, more bytes never change the
decision, and how the bytes were split into chunks never matters. That is what lets
the probe stop reading the moment a decision exists.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

MAX_LINE_BYTES = 255
_SSH = b"SSH-"
_ACCEPTED = (b"SSH-2.0-", b"SSH-1.99-")  # 1.99 = a server that also speaks protocol 2
_SAMPLE_CHARS = 60
# OpenSSH's sshd writes this line instead of forking when MaxStartups (or, since 9.8,
# PerSourceMaxStartups / PerSourcePenalties) sheds an unauthenticated connection.
_SSHD_SHEDDING = b"Exceeded MaxStartups"


class ScanStatus(str, enum.Enum):
    NEED_MORE = "need-more"
    OK = "ok"
    NOT_SSH = "not-ssh"
    SILENT = "silent"  # nothing that rules SSH out arrived: the caller decides (timeout / reset)
    DROPPED = "dropped"  # sshd itself said it is shedding this connection: alive, not answering


@dataclass(frozen=True, slots=True)
class BannerScan:
    status: ScanStatus
    banner: str | None = None
    why: str = ""

    @property
    def decided(self) -> bool:
        return self.status is not ScanStatus.NEED_MORE


_NEED_MORE = BannerScan(ScanStatus.NEED_MORE)
_LINE_TOO_LONG = BannerScan(ScanStatus.NOT_SSH, why=f"a line exceeds {MAX_LINE_BYTES} bytes (RFC 4253 4.2)")


def _text(raw: bytes) -> str:
    """Peers may send any bytes; a probe must never crash on them."""
    return raw.decode("utf-8", errors="replace").strip()


class BannerReader:
    """Accumulates bytes from a server until they prove SSH, rule it out, or run over the cap."""

    def __init__(self, max_bytes: int) -> None:
        if max_bytes < 1:
            raise ValueError("max_bytes must be positive")
        self._max_bytes = max_bytes
        self._partial = bytearray()
        self._received = 0
        self._skipped = 0
        self._first_skipped = ""
        self._result: BannerScan | None = None

    @property
    def received(self) -> int:
        """Bytes taken into account (never more than max_bytes)."""
        return self._received

    @property
    def lines_skipped(self) -> int:
        return self._skipped

    def feed(self, chunk: bytes) -> BannerScan:
        if self._result is not None:
            return self._result
        take = chunk[: self._max_bytes - self._received]
        self._received += len(take)
        self._partial += take
        while (end := self._partial.find(b"\n")) >= 0:
            line = bytes(self._partial[: end + 1])
            del self._partial[: end + 1]
            if (decision := self._judge_line(line)) is not None:
                return self._decide(decision)
        if len(self._partial) >= MAX_LINE_BYTES:  # any terminator would make it 256+
            return self._decide(_LINE_TOO_LONG)
        if self._received >= self._max_bytes:
            return self._decide(
                BannerScan(ScanStatus.NOT_SSH, why=f"no SSH- line in the first {self._max_bytes} bytes{self._seen()}")
            )
        return _NEED_MORE

    def finish(self) -> BannerScan:
        """The peer closed: an unterminated last line still counts, as OpenSSH's client reads it."""
        if self._result is not None:
            return self._result
        if self._partial:
            line = bytes(self._partial)
            self._partial.clear()
            if (decision := self._judge_line(line)) is not None:
                return self._decide(decision)
        if self._received == 0:
            return self._decide(BannerScan(ScanStatus.SILENT, why="closed without sending anything"))
        return self._decide(
            BannerScan(ScanStatus.NOT_SSH, why=f"closed after {self._received} bytes without an SSH- line{self._seen()}")
        )

    def expire(self) -> BannerScan:
        """The deadline passed: silence (or a banner still arriving) is the incident; chatter is not SSH."""
        if self._result is not None:
            return self._result
        if self._received == 0:
            return self._decide(BannerScan(ScanStatus.SILENT, why="TCP accepted, no bytes before the deadline"))
        if self._skipped == 0 and _SSH.startswith(bytes(self._partial[: len(_SSH)])):
            sample = _text(bytes(self._partial))[:_SAMPLE_CHARS]
            return self._decide(BannerScan(ScanStatus.SILENT, why=f"identification line unfinished at the deadline: {sample!r}"))
        return self._decide(
            BannerScan(ScanStatus.NOT_SSH, why=f"{self._received} bytes but no SSH- line before the deadline{self._seen()}")
        )

    def _judge_line(self, line: bytes) -> BannerScan | None:
        """None means 'an allowed line before the banner': keep reading."""
        if len(line) > MAX_LINE_BYTES:
            return _LINE_TOO_LONG
        body = line.rstrip(b"\n").rstrip(b"\r")
        if body == _SSHD_SHEDDING:
            return BannerScan(ScanStatus.DROPPED, why="sshd shed the connection: Exceeded MaxStartups")
        if not body.startswith(_SSH):
            self._skipped += 1
            if self._skipped == 1:
                self._first_skipped = _text(body)[:_SAMPLE_CHARS]
            return None
        banner = _text(body)[:MAX_LINE_BYTES]
        if body.startswith(_ACCEPTED):
            return BannerScan(ScanStatus.OK, banner=banner)
        if body.startswith(b"SSH-1."):
            return BannerScan(ScanStatus.NOT_SSH, banner=banner, why=f"protocol 1 only: {banner!r}")
        return BannerScan(ScanStatus.NOT_SSH, banner=banner, why=f"unsupported protocol version: {banner!r}")

    def _seen(self) -> str:
        if not self._skipped:
            return ""
        return f" ({self._skipped} other lines, first {self._first_skipped!r})"

    def _decide(self, scan: BannerScan) -> BannerScan:
        self._result = scan
        return scan


def scan_banner(buffer: bytes, max_bytes: int) -> BannerScan:
    """Decision for bytes received so far; NEED_MORE while nothing is settled."""
    return BannerReader(max_bytes).feed(buffer)

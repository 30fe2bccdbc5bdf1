"""What a server's first bytes mean, decided without a socket."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from orchestrator.observe.banner import (
    MAX_LINE_BYTES,
    BannerReader,
    BannerScan,
    ScanStatus,
    scan_banner,
)

OK, NOT_SSH, NEED_MORE, SILENT, DROPPED = (
    ScanStatus.OK, ScanStatus.NOT_SSH, ScanStatus.NEED_MORE, ScanStatus.SILENT, ScanStatus.DROPPED
)
CAP = 8192


@pytest.mark.parametrize(
    ("data", "status", "banner"),
    [
        (b"SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3\r\n", OK, "SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3"),
        (b"SSH-2.0-dropbear\n", OK, "SSH-2.0-dropbear"),  # LF only: accepted like OpenSSH does
        (b"SSH-1.99-Cisco-1.25\r\n", OK, "SSH-1.99-Cisco-1.25"),
        (b"Hello\r\nplease wait\r\n\r\nSSH-2.0-X\r\n", OK, "SSH-2.0-X"),  # RFC 4253: other lines first
        (b"SSH-2.0-X\r\nextra bytes after the banner", OK, "SSH-2.0-X"),
        (b"\xff\xfe\r\nSSH-2.0-Caf\xe9\r\n", OK, "SSH-2.0-Caf\ufffd"),  # not UTF-8: replaced, not crashed
        (b"SSH-1.5-OldServer\r\n", NOT_SSH, None),
        (b"SSH-3.0-Future\r\n", NOT_SSH, None),
        (b"SSH-\r\n", NOT_SSH, None),
        (b"A" * 300 + b"\r\nSSH-2.0-X\r\n", NOT_SSH, None),  # a line over 255 bytes
        (b"A" * MAX_LINE_BYTES, NOT_SSH, None),  # unterminated and already too long
        (b"SSH-2.0-" + b"x" * 260 + b"\r\n", NOT_SSH, None),
        (b"Exceeded MaxStartups\r\n", DROPPED, None),  # sshd shedding load, not a stranger on port 22
        (b"", NEED_MORE, None),
        (b"SSH-2.0-OpenSSH", NEED_MORE, None),  # no line end yet
        (b"220 mail.example.com ESMTP\r\n", NEED_MORE, None),  # could still be followed by a banner
    ],
)
def test_scan_table(data: bytes, status: ScanStatus, banner: str | None) -> None:
    scan = scan_banner(data, CAP)
    assert scan.status is status
    if status is OK:
        assert scan.banner == banner


def test_not_ssh_explains_why() -> None:
    assert "protocol 1" in scan_banner(b"SSH-1.5-x\r\n", CAP).why
    assert "255" in scan_banner(b"B" * 400, CAP).why
    assert "first 300 bytes" in scan_banner(b"hello\r\n" * 100, 300).why


def test_byte_cap_counts_only_what_was_allowed() -> None:
    reader = BannerReader(max_bytes=64)
    assert reader.feed(b"line\n" * 10).status is NEED_MORE  # 50 bytes
    scan = reader.feed(b"line\n" * 10)
    assert scan.status is NOT_SSH and "first 64 bytes" in scan.why
    assert reader.received == 64


def test_banner_exactly_at_the_cap_is_found() -> None:
    data = b"x\n" * 10 + b"SSH-2.0-X\r\n"
    assert scan_banner(data, len(data)).status is OK
    assert scan_banner(data, len(data) - 1).status is NOT_SSH


def test_line_limit_includes_cr_lf() -> None:
    longest = b"SSH-2.0-" + b"x" * (MAX_LINE_BYTES - 2 - 8)  # 253 bytes + CR LF = 255
    scan = scan_banner(longest + b"\r\n", CAP)
    assert scan.status is OK and scan.banner is not None and len(scan.banner) == 253
    assert scan_banner(longest + b"y\r\n", CAP).status is NOT_SSH


@pytest.mark.parametrize(
    ("data", "status", "why"),
    [
        (b"", SILENT, "without sending anything"),
        (b"SSH-2.0-NoNewline", OK, ""),  # last line counts at EOF
        (b"HTTP/1.1 400 Bad Request\r\n", NOT_SSH, "without an SSH- line"),
        (b"\x00\x01\x02", NOT_SSH, "without an SSH- line"),
    ],
)
def test_finish_when_peer_closes(data: bytes, status: ScanStatus, why: str) -> None:
    reader = BannerReader(CAP)
    reader.feed(data)
    scan = reader.finish()
    assert scan.status is status and why in scan.why


@pytest.mark.parametrize(
    ("data", "status", "why"),
    [
        (b"", SILENT, "no bytes"),  # the incident: accepted, never a byte
        (b"SSH-2.0-Open", SILENT, "unfinished"),  # still looks like a banner arriving
        (b"SS", SILENT, "unfinished"),
        (b"220 smtp ESMTP\r\n", NOT_SSH, "220 smtp"),  # talks, but not SSH
        (b"garbage", NOT_SSH, "no SSH- line"),
    ],
)
def test_expire_at_deadline(data: bytes, status: ScanStatus, why: str) -> None:
    reader = BannerReader(CAP)
    reader.feed(data)
    scan = reader.expire()
    assert scan.status is status and why in scan.why


def test_decision_is_final() -> None:
    reader = BannerReader(CAP)
    first = reader.feed(b"SSH-2.0-X\r\n")
    assert reader.feed(b"SSH-1.5-Y\r\n") is first
    assert reader.finish() is first and reader.expire() is first


def test_max_bytes_must_be_positive() -> None:
    with pytest.raises(ValueError):
        BannerReader(0)


# --- properties -----------------------------------------------------------------

_other_line = (
    st.binary(max_size=MAX_LINE_BYTES - 2)
    .map(lambda b: b.replace(b"\n", b" ").replace(b"\r", b" "))
    .filter(lambda b: not b.startswith(b"SSH-") and b != b"Exceeded MaxStartups")  # sshd's shedding line
)
_software = st.text(
    alphabet=st.characters(min_codepoint=0x21, max_codepoint=0x7E, blacklist_characters="-"), min_size=1, max_size=40
)


def _feed_chunks(reader: BannerReader, data: bytes, cuts: list[int]) -> BannerScan:
    points = sorted({c % (len(data) + 1) for c in cuts} | {0, len(data)})
    scan = BannerScan(NEED_MORE)
    for start, end in zip(points, points[1:]):
        scan = reader.feed(data[start:end])
        if scan.decided:
            break
    return scan


@settings(max_examples=300, deadline=None)
@given(data=st.binary(max_size=2000), cap=st.integers(min_value=1, max_value=4096), cuts=st.lists(st.integers(0, 4000)))
def test_any_bytes_never_raise(data: bytes, cap: int, cuts: list[int]) -> None:
    for end in (BannerReader.finish, BannerReader.expire):
        reader = BannerReader(cap)
        scan = _feed_chunks(reader, data, cuts)
        assert scan.status in (OK, NOT_SSH, NEED_MORE, DROPPED)
        final = end(reader)
        assert final.status is not NEED_MORE
        if final.status is OK:
            assert final.banner is not None and final.banner.startswith("SSH-") and len(final.banner) <= 255
        assert reader.received <= cap


@settings(max_examples=300, deadline=None)
@given(lines=st.lists(_other_line, max_size=20), version=st.sampled_from(["2.0", "1.99"]), software=_software)
def test_banner_after_other_lines_is_found(lines: list[bytes], version: str, software: str) -> None:
    banner = f"SSH-{version}-{software}"
    data = b"".join(line + b"\r\n" for line in lines) + banner.encode() + b"\r\n"
    scan = scan_banner(data, CAP)
    assert scan.status is OK
    assert scan.banner == banner


@settings(max_examples=300, deadline=None)
@given(
    prefix=st.lists(_other_line, max_size=5),
    tail=st.binary(max_size=300),
    cap=st.integers(min_value=1, max_value=2048),
    cuts=st.lists(st.integers(0, 3000), max_size=30),
)
def test_chunking_never_changes_the_decision(prefix: list[bytes], tail: bytes, cap: int, cuts: list[int]) -> None:
    data = b"".join(line + b"\r\n" for line in prefix) + b"SSH-2.0-X\r\n" + tail
    whole = BannerReader(cap)
    chunked = BannerReader(cap)
    assert _feed_chunks(chunked, data, cuts) == whole.feed(data)
    assert chunked.finish() == whole.finish()


@settings(max_examples=200, deadline=None)
@given(data=st.binary(max_size=600), cuts=st.lists(st.integers(0, 700), max_size=40))
def test_chunking_of_arbitrary_bytes_never_changes_the_decision(data: bytes, cuts: list[int]) -> None:
    whole, chunked = BannerReader(512), BannerReader(512)
    assert _feed_chunks(chunked, data, cuts) == whole.feed(data)
    assert chunked.expire() == whole.expire()

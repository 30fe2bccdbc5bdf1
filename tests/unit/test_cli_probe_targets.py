"""Command-line target text: every accepted form, and a clear word for the rest."""

from __future__ import annotations

import pytest

from orchestrator.cli.probe_cmd import parse_target


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("127.0.0.1", ("127.0.0.1", 22)),
        ("127.0.0.1:2222", ("127.0.0.1", 2222)),
        ("localhost:22", ("localhost", 22)),
        ("ip-10-0-0-1.ec2.internal", ("ip-10-0-0-1.ec2.internal", 22)),
        ("[::1]:2200", ("::1", 2200)),
        ("[::1]", ("::1", 22)),
        ("::1", ("::1", 22)),
        ("fe80::1", ("fe80::1", 22)),
        (" 127.0.0.2 ", ("127.0.0.2", 22)),
    ],
)
def test_accepted(text: str, expected: tuple[str, int]) -> None:
    assert parse_target(text, 22) == expected


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("", "no host"),
        (":22", "no host"),
        ("host:", "port must be"),
        ("host:0", "port must be"),
        ("host:65536", "port must be"),
        ("host:ssh", "port must be"),
        ("host:-1", "port must be"),
        ("[::1", "missing ']'"),
        ("[::1]22", "unexpected"),
        ("[nope]:22", "not an IPv6"),
        ("::zz", "not an IPv6"),
        ("999.1.1.1", "not a valid IPv4"),
        ("bad host", "not a valid host name"),
        ("http://x", "port must be"),
        ("-x", "not a valid host name"),
    ],
)
def test_rejected(text: str, why: str) -> None:
    with pytest.raises(ValueError, match=why.replace("[", r"\[").replace("]", r"\]")):
        parse_target(text, 22)

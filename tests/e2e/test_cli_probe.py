"""``orch probe`` through click, against loopback endpoints."""

from __future__ import annotations

import io
import json

from click.testing import CliRunner
from rich.console import Console

from orchestrator.cli.probe_cmd import probe_command, render_table
from tests.e2e.fake_endpoints import (
    BANNER,
    EndpointLoop,
    refusing_socket,
    sends,
    silent,
)


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(probe_command, list(args))
    return result.exit_code, result.output


def test_all_answer_exits_zero(endpoints: EndpointLoop) -> None:
    port = endpoints.serve(sends(BANNER))
    code, out = run(f"127.0.0.1:{port}", "127.0.0.1", "--port", str(port))
    assert code == 0, out
    lines = out.splitlines()
    assert lines[0].split()[:4] == ["TARGET", "OUTCOME", "LATENCY", "TRIES"]
    assert [line.split()[0] for line in lines[1:]] == [f"127.0.0.1:{port}", "127.0.0.1"]
    assert all(" ok " in line and "SSH-2.0-OpenSSH_9.2p1" in line for line in lines[1:])


def test_json_output_and_failure_exit(endpoints: EndpointLoop) -> None:
    ok = endpoints.serve(sends(BANNER))
    hung = endpoints.serve(silent, "127.0.0.2")
    refused = refusing_socket("127.0.0.3")
    try:
        code, out = run(
            f"127.0.0.1:{ok}", f"127.0.0.2:{hung}", f"127.0.0.3:{refused.getsockname()[1]}",
            "--banner-timeout", "2", "--attempts", "2", "--retry-window", "0.1", "--output", "json",
        )
    finally:
        refused.close()
    assert code == 1
    rows = json.loads(out)
    assert [(r["outcome"], r["attempts"]) for r in rows] == [("ok", 1), ("banner-timeout", 2), ("refused", 2)]
    assert rows[0]["banner"].startswith("SSH-2.0-OpenSSH") and rows[0]["latency_ms"] >= 0
    assert rows[1]["banner"] is None and "no bytes" in rows[1]["detail"]
    assert set(rows[0]) >= {"target", "outcome", "latency_ms", "banner"}


def test_ipv6_target(endpoints: EndpointLoop) -> None:
    port = endpoints.serve(sends(BANNER), "::1")
    code, out = run(f"[::1]:{port}", "--output", "json")
    assert code == 0, out
    assert json.loads(out)[0]["target"] == f"[::1]:{port}"


def test_bad_target_is_a_usage_error() -> None:
    code, out = run("127.0.0.1:99999")
    assert code == 2
    assert "HOST[:PORT]" in out and "port must be a number from 1 to 65535" in out


def test_bad_setting_is_a_usage_error() -> None:
    code, out = run("127.0.0.1", "--attempts", "0")
    assert code == 2 and "attempts" in out


def test_no_target_is_a_usage_error() -> None:
    code, out = run()
    assert code == 2 and "Missing argument" in out


def test_terminal_gets_a_table() -> None:
    buffer = io.StringIO()
    rows = [
        {"target": "a:22", "outcome": "ok", "latency_ms": 1.5, "banner": "SSH-2.0-X", "attempts": 1, "detail": ""},
        {"target": "b:22", "outcome": "banner-timeout", "latency_ms": 5000.0, "banner": None, "attempts": 3, "detail": "no bytes"},
    ]
    render_table(rows, Console(file=buffer, force_terminal=True, width=100))
    text = buffer.getvalue()
    assert "SSH-2.0-X" in text and "banner-timeout" in text and "5000.0 ms" in text

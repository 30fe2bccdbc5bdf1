"""``orch probe HOST[:PORT] ...``: the fleet's SSH probe, by hand, against any host.

For the operator who wants to see what orch sees before trusting it with a reboot:
the same probe_fleet, the same outcomes, one line per target; the exit code lets a
shell script ask "does every one of these answer?".
"""

from __future__ import annotations

import ipaddress
import re
import sys
from typing import Any

import click
from pydantic import ValidationError
from rich.console import Console
from rich.table import Table
from rich.text import Text

from orchestrator.cli.common import Display, display_options
from orchestrator.cli.params import FiniteFloat
from orchestrator.config import ProbeSettings, describe_validation_error
from orchestrator.model import ProbeOutcome, ProbeResult
from orchestrator.observe.probe import Target, probe_fleet

_DEFAULTS = ProbeSettings()
_HOSTNAME = re.compile(r"^(?=.{1,253}$)[A-Za-z0-9_]([A-Za-z0-9_-]*[A-Za-z0-9_])?(\.[A-Za-z0-9_]([A-Za-z0-9_-]*[A-Za-z0-9_])?)*\.?$")
_FORMS = "expected HOST, HOST:PORT, IPV6 or [IPV6]:PORT"


def parse_target(text: str, default_port: int) -> tuple[str, int]:
    """Split one command-line target; ValueError says what is wrong with it."""
    raw = text.strip()
    if raw.startswith("["):
        host, bracket, rest = raw[1:].partition("]")
        if not bracket:
            raise ValueError(f"{text!r}: missing ']' ({_FORMS})")
        if rest and not rest.startswith(":"):
            raise ValueError(f"{text!r}: unexpected {rest!r} after ']' ({_FORMS})")
        _require_ipv6(host, text)
        return host, _parse_port(rest[1:], text) if rest else default_port
    if raw.count(":") > 1:  # a bare IPv6 address cannot carry a port
        _require_ipv6(raw, text)
        return raw, default_port
    host, colon, port_text = raw.partition(":")
    if not host:
        raise ValueError(f"{text!r}: no host ({_FORMS})")
    if re.fullmatch(r"[0-9.]+", host):
        try:
            ipaddress.IPv4Address(host)
        except ValueError:
            raise ValueError(f"{text!r}: {host!r} is not a valid IPv4 address") from None
    elif not _HOSTNAME.match(host):
        raise ValueError(f"{text!r}: {host!r} is not a valid host name ({_FORMS})")
    return host, _parse_port(port_text, text) if colon else default_port


def _require_ipv6(host: str, text: str) -> None:
    try:
        ipaddress.IPv6Address(host)
    except ValueError:
        raise ValueError(f"{text!r}: {host!r} is not an IPv6 address ({_FORMS})") from None


def _parse_port(port_text: str, text: str) -> int:
    if not port_text.isdigit() or not 1 <= int(port_text) <= 65535:
        raise ValueError(f"{text!r}: port must be a number from 1 to 65535, got {port_text!r}")
    return int(port_text)


def result_row(result: ProbeResult) -> dict[str, Any]:
    """The JSON shape, also what the table shows: latency of the answer, else of the last try."""
    latency = result.ok_latency_s if result.ok_latency_s is not None else result.last.latency_s
    ok = next((a for a in result.attempts if a.outcome is ProbeOutcome.OK), None)
    return {
        "target": result.target,
        "outcome": result.outcome.value,
        "latency_ms": round(latency * 1000, 1),
        "banner": ok.banner if ok else None,
        "attempts": len(result.attempts),
        "detail": "" if ok else result.last.detail,
    }


def render_plain(rows: list[dict[str, Any]]) -> str:
    """Aligned columns for pipes and logs, where a rich table's box characters are noise."""
    header = ("TARGET", "OUTCOME", "LATENCY", "TRIES", "BANNER / DETAIL")
    lines = [header] + [
        (r["target"], r["outcome"], f"{r['latency_ms']:.1f}ms", str(r["attempts"]), r["banner"] or r["detail"]) for r in rows
    ]
    widths = [max(len(line[i]) for line in lines) for i in range(len(header) - 1)]
    return "\n".join("  ".join([*(cell.ljust(w) for cell, w in zip(line, widths)), line[-1]]).rstrip() for line in lines)


def render_table(rows: list[dict[str, Any]], console: Console) -> None:
    table = Table("target", "outcome", "latency", "tries", "banner / detail")
    for r in rows:
        style = "green" if r["outcome"] == ProbeOutcome.OK.value else "red"
        table.add_row(
            r["target"], Text(r["outcome"], style=style), f"{r['latency_ms']:.1f} ms", str(r["attempts"]),
            r["banner"] or r["detail"],
        )
    console.print(table)


@click.argument("targets", metavar="HOST[:PORT]...", nargs=-1, required=True)
@click.option("--port", type=click.IntRange(1, 65535), default=_DEFAULTS.port, show_default=True, help="Port for targets without one.")
@click.option("--connect-timeout", type=FiniteFloat(), default=_DEFAULTS.connect_timeout, show_default=True, help="Seconds for the TCP handshake.")
@click.option("--banner-timeout", type=FiniteFloat(), default=_DEFAULTS.banner_timeout, show_default=True, help="Seconds from connect to the SSH- line.")
@click.option("--attempts", type=int, default=1, show_default=True, help="Probes of a target that does not answer.")
@click.option("--retry-window", type=FiniteFloat(), default=_DEFAULTS.retry_window, show_default=True, help="Seconds the attempts are spread over.")
@click.option("--concurrency", type=int, default=_DEFAULTS.concurrency, show_default=True, help="Probes in flight at once.")
@display_options
def probe(
    display: Display,
    targets: tuple[str, ...],
    port: int,
    connect_timeout: float,
    banner_timeout: float,
    attempts: int,
    retry_window: float,
    concurrency: int,
) -> None:
    """Probe sshd on each HOST[:PORT] the way a sweep does; exit 1 unless all answer."""
    try:
        settings = ProbeSettings(
            port=port, connect_timeout=connect_timeout, banner_timeout=banner_timeout,
            attempts=attempts, retry_window=retry_window, concurrency=concurrency,
        )
    except ValidationError as exc:
        raise click.UsageError(describe_validation_error(exc, "command line")) from None
    parsed: dict[str, Target] = {}
    for text in targets:
        try:
            parsed[text] = parse_target(text, port)
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="HOST[:PORT]") from None
    results = probe_fleet(parsed, settings)
    rows = [result_row(results[text]) for text in parsed]
    if display.json:
        display.emit(rows)
    elif sys.stdout.isatty():
        render_table(rows, display.console())
    else:
        click.echo(render_plain(rows))
    click.get_current_context().exit(0 if all(r["outcome"] == ProbeOutcome.OK.value for r in rows) else 1)


probe_command = click.command("probe")(probe)

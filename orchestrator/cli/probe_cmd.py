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
from rich.text import Text

from orchestrator.aws import AWS_CALL_ERRORS, AwsError
from orchestrator.cli.common import Exit, OrchError, Runtime, common_options
from orchestrator.cli.instances import INSTANCE_ID
from orchestrator.cli.params import FiniteFloat
from orchestrator.cli.tables import Column, fitted_table
from orchestrator.config import ProbeSettings, describe_validation_error
from orchestrator.echo import clip
from orchestrator.model import Instance, ProbeOutcome, ProbeResult
from orchestrator.observe import inventory
from orchestrator.observe.probe import Target, probe_fleet

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
    header = ("target", "outcome", "latency", "tries", "banner / detail")
    lines = [header] + [
        (r["target"] if r.get("address") in (None, r["target"]) else f"{r['target']} ({r['address']})", r["outcome"], f"{r['latency_ms']:.1f}ms", str(r["attempts"]), r["banner"] or r["detail"]) for r in rows
    ]
    widths = [max(len(line[i]) for line in lines) for i in range(len(header) - 1)]
    return "\n".join("  ".join([*(cell.ljust(w) for cell, w in zip(line, widths)), line[-1]]).rstrip() for line in lines)


PROBE_COLUMNS = (
    Column("target", "target"),
    Column("outcome", "outcome"),
    Column("latency", "latency", right=True),
    Column("tries", "tries", drop=1, right=True),
    Column("detail", "banner / detail", cut=True, min_width=16),
)


def render_table(rows: list[dict[str, Any]], console: Console) -> None:
    cells = [
        {"target": r["target"] if r.get("address") in (None, r["target"]) else f"{r['target']} ({r['address']})", "outcome": Text(r["outcome"], style="green" if r["outcome"] == ProbeOutcome.OK.value else "red"),
         "latency": f"{r['latency_ms']:.1f} ms", "tries": str(r["attempts"]), "detail": r["banner"] or r["detail"] or "-"}
        for r in rows
    ]
    console.print(fitted_table(None, PROBE_COLUMNS, cells, console.width))


def resolve_targets(runtime: Runtime, texts: tuple[str, ...], port: int) -> dict[str, Target]:
    """Each HOST[:PORT], instance id or Name as a target. Ids and Names are looked up among the
    selected instances (one DescribeInstances), at the address the probe settings name."""
    address = runtime.settings.probe.address
    wanted = [t for t in texts if _maybe_instance(t)]
    instances = []
    if wanted:
        try:
            instances = inventory.list_instances(runtime.clients.ec2, runtime.settings.selector, vpc_id=runtime.settings.vpc_id)
        except (*AWS_CALL_ERRORS, AwsError):
            if any(INSTANCE_ID.fullmatch(t.strip()) for t in wanted):
                raise  # an id is nothing without AWS: its one-line error
    by_ref: dict[str, list[Instance]] = {}
    for inst in instances:
        by_ref.setdefault(inst.instance_id, []).append(inst)
        if inst.name:
            by_ref.setdefault(inst.name, []).append(inst)
    parsed: dict[str, Target] = {}
    for text in texts:
        found = by_ref.get(text.strip(), [])
        if len(found) > 1:
            raise OrchError(f"the Name {clip(text)} is on {len(found)} instances ({', '.join(i.instance_id for i in found)}): "
                            "give the instance id", Exit.USAGE)
        if found:
            ip = found[0].private_ip if address == "private" else found[0].public_ip
            if not ip:
                raise OrchError(f"{clip(text)} ({found[0].instance_id}) has no {address} address to probe", Exit.USAGE)
            parsed[text] = (ip, port)
            continue
        if INSTANCE_ID.fullmatch(text.strip()):
            raise OrchError(f"{clip(text)} is not among the instances selected by {runtime.selector_text()}: check --selector and --region",
                            Exit.USAGE)
        try:
            parsed[text] = parse_target(text, port)
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="HOST[:PORT]") from None
    return parsed


def _address(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _maybe_instance(text: str) -> bool:
    """An id, or a word that could be a Name: not an address, not a host with a domain or a port."""
    raw = text.strip()
    if INSTANCE_ID.fullmatch(raw):
        return True
    return raw != "localhost" and not any(c in raw for c in ".:[]")


@click.argument("targets", metavar="TARGET...", nargs=-1, required=True)
@click.option("--port", type=click.IntRange(1, 65535), help="Port for targets without one (default: probe.port, ORCH_PROBE_PORT, 22).")
@click.option("--connect-timeout", type=FiniteFloat(), help="Seconds for the TCP handshake (default: probe.connect_timeout).")
@click.option("--banner-timeout", type=FiniteFloat(), help="Seconds from connect to the SSH- line (default: probe.banner_timeout).")
@click.option("--attempts", type=int, default=1, show_default=True, help="Probes of a target that does not answer.")
@click.option("--retry-window", type=FiniteFloat(), help="Seconds the attempts are spread over (default: probe.retry_window).")
@click.option("--concurrency", type=int, help="Probes in flight at once (default: probe.concurrency).")
@common_options
def probe(
    runtime: Runtime,
    targets: tuple[str, ...],
    port: int | None,
    connect_timeout: float | None,
    banner_timeout: float | None,
    attempts: int,
    retry_window: float | None,
    concurrency: int | None,
) -> None:
    """Probe sshd on each TARGET the way a sweep does; exit 1 unless all answer.

    A TARGET is HOST[:PORT], [IPV6]:PORT, an instance id or an instance's Name (among
    the selected instances, at the address probe.address names). Unless given here,
    the timeouts and the port are the probe settings' (config file or ORCH_PROBE_*),
    the ones a sweep uses.
    """
    given = {"port": port, "connect_timeout": connect_timeout, "banner_timeout": banner_timeout, "attempts": attempts,
             "retry_window": retry_window, "concurrency": concurrency}
    try:
        settings = ProbeSettings.model_validate({**runtime.settings.probe.model_dump(), **{k: v for k, v in given.items() if v is not None}})
    except ValidationError as exc:
        raise click.UsageError(describe_validation_error(exc, "command line")) from None
    parsed = resolve_targets(runtime, targets, settings.port)
    results = probe_fleet(parsed, settings)
    rows = [{**result_row(results[text]), "address": _address(*parsed[text])} for text in parsed]
    if runtime.json:
        runtime.emit(rows)
    elif sys.stdout.isatty():
        render_table(rows, runtime.console())
    else:
        click.echo(render_plain(rows))
    sys.exit(0 if all(r["outcome"] == ProbeOutcome.OK.value for r in rows) else 1)


probe_command = click.command("probe")(probe)

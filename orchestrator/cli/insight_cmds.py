"""`orch explain` and `orch report`: why orch thinks what it thinks."""

from __future__ import annotations

import json
import sys
from dataclasses import asdict
from typing import Any

import click
from rich.table import Table

from orchestrator.cli.common import Exit, OrchError, Runtime, common_options
from orchestrator.cli.render import stdout_console
from orchestrator.cli.sweep_cmds import run_sweep
from orchestrator.kernel_log import parse_console
from orchestrator.model import MemorySeries
from orchestrator.observe.console import read_console
from orchestrator.report import patterns
from orchestrator.sweep import Mode

BLOCKS = " ▁▂▃▄▅▆▇█"


def sparkline(series: MemorySeries, width: int = 60) -> str:
    """Memory over the window on a fixed 0-100% scale, so two instances compare at a glance."""
    values = [v for _, v in series.points][-width:]
    return "".join(BLOCKS[min(len(BLOCKS) - 1, max(0, round(v / 100 * (len(BLOCKS) - 1))))] for v in values)


@click.command("explain")
@click.argument("instance_id")
@click.option("--console/--no-console", "with_console", default=True, help="Read and parse the console output now.")
@common_options
def explain_command(runtime: Runtime, instance_id: str, with_console: bool) -> None:
    """Everything orch knows about one instance: verdict, memory, probes, evidence, actions."""
    report = run_sweep(runtime, Mode.SCAN, dry_run=True, assume_yes=True, only=(instance_id,))
    if not report.facts:
        raise OrchError(f"{instance_id}: not found among instances selected by {runtime.settings.selector} (check the id, --selector and --region)", Exit.USAGE)
    facts, verdict = report.facts[0], report.verdicts[0]
    history = runtime.store.get_histories([instance_id]).get(instance_id)
    actions = runtime.store.list_actions(instance_id, 10)
    findings = None
    console_error = None
    if with_console:
        text, console_error = read_console(runtime.clients.ec2, instance_id)
        findings = parse_console(text) if text else None
    if runtime.json:
        click.echo(
            json.dumps(
                {
                    "instance_id": instance_id,
                    "name": facts.instance.name,
                    "verdict": verdict.kind.value,
                    "reasons": list(verdict.reasons),
                    "evidence": list(verdict.evidence),
                    "memory": {
                        "percent": verdict.memory_percent,
                        "slope_per_min": verdict.memory_slope_per_min,
                        "minutes_to_exhaustion": verdict.minutes_to_exhaustion,
                        "points": [[t.isoformat(), v] for t, v in (facts.memory.points if facts.memory else ())],
                    },
                    "probe": [asdict(a) for a in facts.probe.attempts] if facts.probe else [],
                    "status_checks": facts.status.label() if facts.status else None,
                    "console": None if findings is None else {"cause": findings.cause.value, "summary": findings.summary},
                    "console_error": console_error,
                    "history": asdict(history) if history else None,
                    "actions": [asdict(a) for a in actions],
                },
                indent=2,
                default=str,
            )
        )
        return
    out = stdout_console()
    inst = facts.instance
    out.print(f"[bold]{instance_id}[/] {inst.name}  {inst.instance_type or ''} {inst.availability_zone}  {inst.private_ip or 'no private ip'}  {inst.state}")
    out.print(f"verdict: [bold]{verdict.kind.value}[/]")
    for reason in verdict.reasons:
        out.print(f"  - {reason}")
    if verdict.evidence:
        out.print(f"host-side evidence: {'; '.join(verdict.evidence)}")
    if facts.memory and facts.memory.points:
        first, last = facts.memory.points[0], facts.memory.points[-1]
        out.print(f"memory {first[0]:%H:%M}-{last[0]:%H:%M} UTC (0-100%): {sparkline(facts.memory)}  now {last[1]:.1f}%")
    else:
        out.print("memory: no data")
    if facts.probe:
        for a in facts.probe.attempts:
            out.print(f"  probe {a.started_at:%H:%M:%S}: {a.outcome.value} in {a.latency_s * 1000:.0f} ms {a.banner or a.detail}")
    if findings is not None:
        out.print(f"console now: {findings.summary}")
    elif console_error:
        out.print(f"console: {console_error}")
    if history:
        out.print(f"ladder rung {history.rung}, {len(history.attempts)} action(s) recorded, in flight: {'yes' if history.in_flight_key else 'no'}"
                  + (f", quarantined: {history.quarantine_reason}" if history.quarantined_at else ""))
    if actions:
        table = Table(title="actions", title_justify="left")
        for column in ("when (UTC)", "action", "status", "reason", "evidence"):
            table.add_column(column)
        for r in actions:
            table.add_row(f"{r.created_at:%Y-%m-%d %H:%M:%S}", r.action.value, r.status.value, r.reason, str(r.evidence.get("console_summary") or r.evidence.get("s3_key") or ""))
        out.print(table)


@click.command("report")
@click.option("--tag", help="Also group by this tag, e.g. app:version.")
@common_options
def report_command(runtime: Runtime, tag: str | None) -> None:
    """Unhealthy and leaking instances grouped by AMI, template, type, group and tag."""
    report = run_sweep(runtime, Mode.SCAN, dry_run=True, assume_yes=True)
    verdicts = {v.instance_id: v for v in report.verdicts}
    found = patterns(report.facts, verdicts, tag, runtime.settings.memory.min_slope_per_min)
    if runtime.json:
        payload: dict[str, Any] = {name: [asdict(r) for r in rows] for name, rows in found.items()}
        click.echo(json.dumps({"instances": len(report.facts), "patterns": payload}, indent=2))
        return
    out = stdout_console()
    out.print(f"{len(report.facts)} instances; verdicts: {', '.join(f'{n} {k}' for k, n in report.verdict_counts().items())}")
    for name, rows in found.items():
        table = Table(title=name, title_justify="left")
        for column in ("value", "instances", "unhealthy", "leaking", "which"):
            table.add_column(column)
        for r in rows:
            style = "bold red" if r.share >= 0.5 and (r.unhealthy + r.leaking) > 0 else ""
            table.add_row(f"[{style}]{r.value}[/]" if style else r.value, str(r.total), str(r.unhealthy), str(r.leaking), " ".join(r.instance_ids[:5]) + (" …" if len(r.instance_ids) > 5 else ""))
        out.print(table)
    sys.exit(0)

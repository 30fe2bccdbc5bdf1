"""`orch explain` and `orch report`: why orch thinks what it thinks."""

from __future__ import annotations

from datetime import timedelta

import click
from rich.text import Text

from orchestrator import files
from orchestrator.cli.chart import MemoryChart, render_chart
from orchestrator.cli.common import Exit, OrchError, Runtime, common_options
from orchestrator.cli.instance_view import CHART_HEIGHT, CHART_MAX_WIDTH, memory_chart, memory_now
from orchestrator.cli.instances import resolve_instance
from orchestrator.cli.sweep_cmds import no_match, run_sweep
from orchestrator.cli.tables import Column, fitted_table, styled
from orchestrator.decide.patterns import PatternRow, patterns
from orchestrator.model import Facts, InstanceHistory, Verdict
from orchestrator.observe.console import read_console
from orchestrator.observe.kernel_log import ConsoleFindings, parse_console
from orchestrator.report.html import render_html
from orchestrator.report.page import TIMELINE_HOURS, build_page
from orchestrator.state.store import ActionRecord
from orchestrator.sweep.pipeline import Mode, SweepReport

SWEEPS_SHOWN = 100  # sweep records read for the timeline: 8 hours at 5 minutes (a record of a big fleet is up to 350 KB)



@click.command("explain")
@click.argument("instance")
@click.option("--console/--no-console", "with_console", default=True, help="Read and parse the console output now.")
@common_options
def explain_command(runtime: Runtime, instance: str, with_console: bool) -> None:
    """Everything orch knows about one instance (by id or Name): verdict, memory, probes, evidence, actions."""
    instance_id = resolve_instance(runtime, instance)
    report = run_sweep(runtime, Mode.SCAN, dry_run=True, assume_yes=True, only=(instance_id,))
    if not report.facts:
        raise OrchError(
            f"{instance_id}: not among the instances selected by {runtime.selector_text()} in {runtime.clients.region or '-'} "
            "(check the id, --selector and --region)",
            Exit.USAGE,
        )
    facts, verdict = report.facts[0], report.verdicts[0]
    history = runtime.store.get_histories([instance_id]).get(instance_id)
    actions = runtime.store.list_actions(instance_id, 10)
    findings = None
    console_error = None
    if with_console:
        text, console_error = read_console(runtime.clients.ec2, instance_id)
        findings = parse_console(text) if text else None
    document = {
        "instance_id": instance_id,
        "name": facts.instance.name,
        "verdict": verdict.kind.value,
        "reasons": list(verdict.reasons),
        "evidence": list(verdict.evidence),
        "corroboration": verdict.corroboration.value,
        "signals": [{"says": g.says, "path": g.path.value, "host_side": g.host_side} for g in verdict.signals],
        "memory": {
            "percent": verdict.memory_percent,
            "slope_per_min": verdict.memory_slope_per_min,
            "minutes_to_exhaustion": verdict.minutes_to_exhaustion,
            "points": [[t, v] for t, v in (facts.memory.points if facts.memory else ())],
        },
        "probe": list(facts.probe.attempts) if facts.probe else [],
        "status_checks": facts.status.label() if facts.status else None,
        "console": None if findings is None else {"cause": findings.cause.value, "summary": findings.summary},
        "console_error": console_error,
        "history": history,
        "actions": actions,
    }
    cycle_start = history.cycle_started_at if history else None
    chart = memory_chart(facts, verdict, actions, report.started_at, runtime.settings.memory, cycle_start)
    runtime.emit(document, lambda: _explain_table(runtime, facts, verdict, findings, console_error, history, actions, chart))


def _explain_table(runtime: Runtime, facts: Facts, verdict: Verdict, findings: ConsoleFindings | None, console_error: str | None,
                   history: InstanceHistory | None, actions: list[ActionRecord], chart: MemoryChart) -> None:
    out = runtime.console()
    inst = facts.instance
    out.print(Text.assemble((inst.instance_id, "bold"), f" {inst.name}  {inst.instance_type or ''} {inst.availability_zone}  "
                            f"{inst.private_ip or 'no private ip'}  {inst.state}"))
    out.print(Text.assemble("verdict: ", (verdict.kind.value, "bold")))
    for reason in verdict.reasons:
        out.print(f"  - {reason}")
    if verdict.evidence:
        out.print(f"host-side evidence: {'; '.join(verdict.evidence)}")
    if verdict.signals:
        out.print("evidence, by the path it travelled:")
        for signal in verdict.signals:
            out.print(Text.assemble(("  " + f"{signal.path.value:>10}", "dim"), f"  {signal.says}",
                                    (" (host-side)", "bold") if signal.host_side else ""))
    if facts.memory and facts.memory.points:
        first, last = facts.memory.points[0], facts.memory.points[-1]
        out.print(f"memory %, {first[0]:%H:%M}-{last[0]:%H:%M} UTC: {memory_now(verdict, last, history)}", markup=False, highlight=False)
        for line in render_chart(chart, min(out.width, CHART_MAX_WIDTH), CHART_HEIGHT):
            out.print(line, markup=False, highlight=False, soft_wrap=True)
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
        rows = [
            {"when": f"{r.created_at:%Y-%m-%d %H:%M:%S}", "action": r.action.value, "status": r.status.value, "reason": r.reason,
             "evidence": str(r.evidence.get("console_summary") or r.evidence.get("s3_key") or "-")}
            for r in actions
        ]
        table = fitted_table("actions", EXPLAIN_ACTION_COLUMNS, rows, out.width, wide=True)  # one instance: its reasons whole
        out.print(table)


EXPLAIN_ACTION_COLUMNS = (
    Column("when", "when (UTC)"),
    Column("action", "action"),
    Column("status", "status"),
    Column("reason", "reason", drop=2, cut=True, min_width=16),
    Column("evidence", "evidence", drop=1, cut=True, min_width=16),
)
GROUP_COLUMNS = (
    Column("value", "value"),
    Column("instances", "instances", right=True),
    Column("unhealthy", "unhealthy", right=True),
    Column("leaking", "leaking", right=True),
    Column("which", "which", drop=1, cut=True, min_width=20),  # ids, a space apart: cut between two, never inside one
)


def _hot(row: PatternRow) -> str:
    """Half or more of the group unhealthy or leaking: the group to look at first."""
    return "bold red" if row.share >= 0.5 and (row.unhealthy + row.leaking) > 0 else ""


@click.command("report")
@click.option("--tag", help="Also group by this tag, e.g. app:version.")
@click.option(
    "--html", "html_path", metavar="FILE",
    help="Also write one self-contained HTML page here: memory charts, timeline, chronic patterns, what changed.",
)
@common_options
def report_command(runtime: Runtime, tag: str | None, html_path: str | None) -> None:
    """Unhealthy and leaking instances grouped by AMI, template, type, group and tag."""
    if html_path is not None:
        try:  # before the scan: a path that cannot be written is said at once, not after a minute of reads
            files.check_writable(html_path, probe=True)
        except files.FileRefused as exc:
            raise html_refused(exc) from None
    report = run_sweep(runtime, Mode.SCAN, dry_run=True, assume_yes=True)
    if not report.facts:
        raise no_match(runtime)
    verdicts = {v.instance_id: v for v in report.verdicts}
    found = patterns(report.facts, verdicts, tag)
    counts = report.verdict_counts()
    if html_path is not None:
        write_html_report(runtime, report, found, html_path)

    def table() -> None:
        out = runtime.console()
        out.print(f"{len(report.facts)} instances; verdicts: {', '.join(f'{n} {k}' for k, n in counts.items())}")
        out.print(styled("unhealthy: unreachable, aws-impaired, memory-critical or metrics-stale; leaking: memory-exhaustion-forecast", "dim"))
        for name, rows in found.items():
            cells = [
                {"value": styled(r.value, _hot(r)), "instances": str(r.total),
                 "unhealthy": str(r.unhealthy), "leaking": str(r.leaking), "which": " ".join(r.instance_ids)}
                for r in rows
            ]
            table = fitted_table(name, GROUP_COLUMNS, cells, out.width)
            out.print(table)
        for pattern in report.patterns:
            runtime.say(pattern.describe(bool(runtime.settings.memory.ssm_commands)))

    chronic = [
        {"instances": list(p.members), "shared": dict(p.shared), "since": p.since, "text": p.describe(bool(runtime.settings.memory.ssm_commands))}
        for p in report.patterns
    ]
    document = {"instances": len(report.facts), "verdicts": counts, "patterns": found, "chronic": chronic}
    if html_path is not None:
        document["html"] = html_path
    runtime.emit(document, table)


def html_refused(exc: files.FileRefused) -> OrchError:
    return OrchError(f"cannot write the HTML report to {exc.shown}: {exc.why}; give a regular file path with --html", Exit.USAGE)


def write_html_report(runtime: Runtime, report: SweepReport, found: dict[str, list[PatternRow]], path: str) -> None:
    """Gather the scan and the store's last day of records into one page, written whole or not at all."""
    settings = runtime.settings
    now = report.finished_at or report.started_at
    store = runtime.store
    page = build_page(
        facts=report.facts,
        verdicts=report.verdicts,
        histories=report.histories,
        actions=store.actions_since(now - timedelta(hours=TIMELINE_HOURS)),
        sweeps=store.list_sweeps(SWEEPS_SHOWN),
        chronic=report.patterns,
        groups=found,
        now=now,
        region=runtime.clients.region or "-",
        selector=runtime.selector_text(),
        opt_out_tag=settings.opt_out_tag,
        critical_percent=settings.memory.critical_percent,
        exhaustion_percent=settings.memory.exhaustion_percent,
        window_minutes=settings.memory.window_minutes,
        ssm_configured=bool(settings.memory.ssm_commands),
    )
    try:
        files.write_text(path, render_html(page))
    except files.FileRefused as exc:
        raise html_refused(exc) from None
    sick = sum(1 for v in page.instances if v.needs_a_look)
    runtime.console(stderr=True).print(
        f"wrote {path}: {len(page.instances)} instances, {sick} need a look, {len(page.timeline)} timeline events", markup=False, highlight=False
    )

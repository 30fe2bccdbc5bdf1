"""What the handler writes to CloudWatch Logs: one JSON line per decision, and the sweep's metrics.

The metrics are one CloudWatch embedded-metric-format line per sweep (namespace ``orch``,
dimension ``Selector``); the template's breaker alarm watches ``BreakerTripped``, which
counts the blocks whose rule is a fleet-wide stop (``BlockRule.BREAKER``, and
``BlockRule.PROBER`` when every probe failed), read from the rule, not from note text.
"""

from __future__ import annotations

import json
import sys
from typing import Any, Mapping

from orchestrator.echo import redact
from orchestrator.model import BlockRule
from orchestrator.sweep.pipeline import SweepReport

METRIC_NAMESPACE = "orch"
BREAKER_RULES = frozenset({BlockRule.BREAKER.value, BlockRule.PROBER.value})  # a fleet-wide stop
ACTED = frozenset({"done", "uncertain"})  # outcomes where AWS may have accepted the call


def emit(record: Mapping[str, Any]) -> None:
    """One JSON object per line on stdout, which Lambda sends to the function's log group."""
    sys.stdout.write(redact(json.dumps(record, default=str, separators=(",", ":"))) + "\n")
    sys.stdout.flush()


def selector_dimension(selector: Mapping[str, str]) -> str:
    """``key=value[,key=value]``: the template's alarm uses the same text for one tag."""
    return ",".join(f"{k}={v}" for k, v in sorted(selector.items()))


def breaker_tripped(blocked: list[Mapping[str, Any]]) -> bool:
    """A fleet-wide stop held something back this sweep (by the block's rule, not its text)."""
    return any(b.get("rule") in BREAKER_RULES for b in blocked)


def decision_lines(summary: Mapping[str, Any]) -> list[dict[str, Any]]:
    sweep_id = summary["sweep_id"]
    lines: list[dict[str, Any]] = []
    for action in summary["actions"]:
        level = "info" if action["outcome"] in ("done", "dry-run") else "warning"
        lines.append(
            {
                "level": level,
                "event": "action",
                "sweep_id": sweep_id,
                "instance_id": action["instance_id"],
                "action": action["action"],
                "reason": action["reason"],
                "outcome": action["outcome"],
                "detail": action["detail"],
            }
        )
    for blocked in summary["blocked"]:
        lines.append(
            {
                "level": "info",
                "event": "blocked",
                "sweep_id": sweep_id,
                "instance_id": blocked["instance_id"],
                "action": blocked["action"],
                "why": blocked["why"],
            }
        )
    lines.extend({"level": "info", "event": "note", "sweep_id": sweep_id, "note": n} for n in summary["notes"])
    return lines


def metrics_record(report: SweepReport, summary: Mapping[str, Any], selector: Mapping[str, str]) -> dict[str, Any]:
    """One CloudWatch embedded-metric-format object: the metrics of one sweep."""
    finished = report.finished_at or report.started_at
    values = {
        "Instances": summary["instances"],
        "Unreachable": summary["verdicts"].get("unreachable", 0),
        "Actions": sum(1 for a in summary["actions"] if a["outcome"] in ACTED),
        "Blocked": len(summary["blocked"]),
        "BreakerTripped": 1 if breaker_tripped(summary["blocked"]) else 0,
        "Chronic": sum(len(p["instances"]) for p in summary.get("chronic", [])),
        "Quarantined": len(summary.get("quarantined", {})),
        "DurationSeconds": round((finished - report.started_at).total_seconds(), 3),
        "ApiCalls": summary["api_calls_total"],
    }
    units = {name: "Count" for name in values} | {"DurationSeconds": "Seconds"}
    return {
        "_aws": {
            "Timestamp": int(finished.timestamp() * 1000),
            "CloudWatchMetrics": [
                {
                    "Namespace": METRIC_NAMESPACE,
                    "Dimensions": [["Selector"]],
                    "Metrics": [{"Name": name, "Unit": units[name]} for name in values],
                }
            ],
        },
        "Selector": selector_dimension(selector),
        "sweep_id": report.sweep_id,
        "dry_run": report.dry_run,
        "partial": report.partial,
        **values,
    }

"""Evidence first: what the box looked like before orch touched it.

Captured by the executor right before each mutation, so the operator gets the OOM line
the team once spent three days grepping for. A summary goes with the action record;
the whole bundle goes to S3 when a bucket is configured. Capture is best effort: its
failure is recorded in the bundle and never blocks the heal.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Callable, Mapping

from orchestrator.aws import AWS_CALL_ERRORS, Clients, describe_aws_error
from orchestrator.config import EvidenceSettings
from orchestrator.model import Action, Facts, Verdict
from orchestrator.observe.console import ConsoleRead, read_console_output
from orchestrator.observe.kernel_log import parse_console
from orchestrator.observe.procstat import top_process

PERMISSIONS = frozenset({"s3:PutObject"})


def bundle(action: Action, facts: Facts, verdict: Verdict, console: ConsoleRead, now: datetime) -> dict[str, Any]:
    console_text, console_error = console.text, console.error
    findings = parse_console(console_text)
    probe = facts.probe
    status = facts.status
    return {
        "instance_id": action.instance_id,
        "name": facts.instance.name,
        "captured_at": now.isoformat(),
        "action": action.kind.value,
        "reason": action.reason,
        "verdict": {"kind": verdict.kind.value, "reasons": list(verdict.reasons), "evidence": list(verdict.evidence)},
        "status_checks": None if status is None else {"system": status.system.value, "instance": status.instance.value},
        "probe": None
        if probe is None
        else [
            {"outcome": a.outcome.value, "started_at": a.started_at.isoformat(), "latency_s": round(a.latency_s, 3), "banner": a.banner, "detail": a.detail}
            for a in probe.attempts
        ],
        "memory": {
            "percent": verdict.memory_percent,
            "slope_per_min": verdict.memory_slope_per_min,
            "minutes_to_exhaustion": verdict.minutes_to_exhaustion,
            "window": [] if facts.memory is None else [[t.isoformat(), v] for t, v in facts.memory.points],
        },
        "console": {
            "cause": findings.cause.value,
            "summary": findings.summary,
            "oom_kills": [
                {"process": k.process, "pid": k.pid, "anon_rss_kb": k.anon_rss_kb, "invoker": k.invoker, "line": k.line}
                for k in findings.oom_kills
            ],
            "panic_lines": list(findings.panic_lines),
            "error": console_error,
            "buffer": console.buffer,
            "tail": console_text[-8192:],
        },
    }


def summary(evidence: Mapping[str, Any]) -> dict[str, Any]:
    """What the action record keeps: small enough for a DynamoDB item."""
    console = evidence.get("console", {})
    kills = console.get("oom_kills") or []
    top = evidence.get("procstat") or {}
    if kills:
        process, rss, source = kills[-1].get("process"), kills[-1].get("anon_rss_kb"), "console"
    elif top.get("name"):
        process, rss, source = top["name"], top.get("rss_kb"), "procstat"
    else:
        process, rss, source = None, None, None
    return {
        "incident_id": evidence.get("incident_id"),
        "console_cause": console.get("cause"),
        "console_summary": console.get("summary"),
        "oom_process": kills[-1].get("process") if kills else None,
        "process": process,  # the leaking process: the OOM killer's victim, else procstat's largest
        "process_rss_kb": rss,
        "process_source": source,
        "console_error": console.get("error"),
        "console_buffer": console.get("buffer"),
        "memory_percent": evidence.get("memory", {}).get("percent"),
        "probe": [p["outcome"] for p in evidence.get("probe") or []],
        "s3_key": evidence.get("s3_key"),
        "s3_error": evidence.get("s3_error"),
    }


def s3_key(prefix: str, sweep_id: str, instance_id: str, now: datetime) -> str:
    return f"{prefix.rstrip('/')}/{now:%Y/%m/%d}/{sweep_id}-{instance_id}.json"


@dataclass
class EvidenceCollector:
    clients: Clients
    settings: EvidenceSettings
    facts: Mapping[str, Facts]
    verdicts: Mapping[str, Verdict]
    sweep_id: str
    clock: Callable[[], datetime]
    captured: dict[str, dict[str, Any]] = field(default_factory=dict)
    memory_namespace: str = ""  # where procstat metrics are published; empty: do not look

    def __call__(self, action: Action) -> dict[str, Any]:
        now = self.clock()
        console = (
            read_console_output(self.clients.ec2, action.instance_id)
            if self.settings.console
            else ConsoleRead("", "console capture disabled", None)
        )
        evidence = bundle(action, self.facts[action.instance_id], self.verdicts[action.instance_id], console, now)
        evidence["incident_id"] = f"{self.sweep_id}-{action.instance_id}"
        if not evidence["console"]["oom_kills"] and self.memory_namespace:
            top, procstat_error = top_process(self.clients.cloudwatch, self.memory_namespace, action.instance_id, now)
            evidence["procstat"] = {"name": top.name, "rss_kb": top.rss_kb} if top else {"error": procstat_error}
        if self.settings.bucket:
            key = s3_key(self.settings.prefix, self.sweep_id, action.instance_id, now)
            try:
                self.clients.client("s3").put_object(
                    Bucket=self.settings.bucket,
                    Key=key,
                    Body=json.dumps(evidence, indent=2, default=str).encode(),
                    ContentType="application/json",
                )
                evidence["s3_key"] = f"s3://{self.settings.bucket}/{key}"
            except AWS_CALL_ERRORS as exc:
                evidence["s3_error"] = describe_aws_error(exc, "s3:PutObject")
        self.captured[action.instance_id] = summary(evidence)
        return self.captured[action.instance_id]

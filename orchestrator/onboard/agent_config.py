"""The CloudWatch agent config that publishes exactly what orch reads, from the same settings.

orch reads memory as ``memory.metric`` in ``memory.namespace`` under every dimension set
that includes ``InstanceId`` (orchestrator/observe/metrics.py discovers them with
ListMetrics), and names a leaking process from ``procstat_memory_rss`` in the same
namespace (orchestrator/observe/procstat.py). The agent's documented config schema
(CloudWatch-Agent-Configuration-File-Details, CloudWatch-Agent-procstat-process-metrics):

- ``metrics.namespace`` is the namespace of everything below it (default ``CWAgent``);
- ``metrics.append_dimensions`` takes only ``${aws:InstanceId}``, ``${aws:ImageId}``,
  ``${aws:InstanceType}`` and ``${aws:AutoScalingGroupName}``; InstanceId is the one orch
  needs, the other three are what the agent's wizard appends (orch finds them anyway);
- ``metrics_collected.mem.measurement`` ``mem_used_percent`` publishes that name; an
  entry ``{"name": ..., "rename": ...}`` publishes it under another;
- ``metrics_collected.procstat`` entries select processes by ``pattern`` (a regular
  expression on the command line) and publish ``procstat_<measurement>`` with the
  dimensions ``pattern`` and ``process_name``; ``memory_rss`` is resident memory in bytes.

``published`` is the same schema read the other way: what the agent will publish for a
config. A unit test checks it against what metrics.py and procstat.py ask for.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Sequence

from orchestrator.config import MemorySettings
from orchestrator.observe import procstat

DEFAULT_PARAMETER = "AmazonCloudWatch-orch"  # CloudWatchAgentServerPolicy reads parameters named AmazonCloudWatch-*
AGENT_MEM_MEASUREMENT = "mem_used_percent"
PROCSTAT_MEASUREMENT = procstat.METRIC.removeprefix("procstat_")  # memory_rss
COLLECTION_INTERVAL_SECONDS = 60  # one point a minute: what the trend fit and staleness expect
APPEND_DIMENSIONS = {
    "InstanceId": "${aws:InstanceId}",
    "ImageId": "${aws:ImageId}",
    "InstanceType": "${aws:InstanceType}",
    "AutoScalingGroupName": "${aws:AutoScalingGroupName}",
}


def agent_config(memory: MemorySettings, processes: Sequence[str] = ()) -> dict[str, Any]:
    """The agent config for these memory settings and process patterns."""
    measurement: Any = AGENT_MEM_MEASUREMENT if memory.metric == AGENT_MEM_MEASUREMENT else {
        "name": AGENT_MEM_MEASUREMENT, "rename": memory.metric
    }
    collected: dict[str, Any] = {"mem": {"measurement": [measurement], "metrics_collection_interval": COLLECTION_INTERVAL_SECONDS}}
    if processes:
        collected["procstat"] = [
            {"pattern": pattern, "measurement": [PROCSTAT_MEASUREMENT], "metrics_collection_interval": COLLECTION_INTERVAL_SECONDS}
            for pattern in dict.fromkeys(processes)
        ]
    return {
        "agent": {"metrics_collection_interval": COLLECTION_INTERVAL_SECONDS},
        "metrics": {"namespace": memory.namespace, "append_dimensions": dict(APPEND_DIMENSIONS), "metrics_collected": collected},
    }


def render(config: dict[str, Any]) -> str:
    """The parameter's value: stable text, so an unchanged config is never written again.

    Compact (no indentation): a Standard parameter holds 4 KB, and indented JSON passed
    that at about 19 --process patterns where compact JSON holds about 40.
    """
    return json.dumps(config, separators=(",", ":"), sort_keys=True)


STANDARD_MAX_BYTES = 4096  # SSM: "Standard tier parameters support a maximum parameter value of 4096 characters"
ADVANCED_MAX_BYTES = 8192
READABLE_PREFIX = "AmazonCloudWatch-"  # CloudWatchAgentServerPolicy: ssm:GetParameter on parameter/AmazonCloudWatch-*
RESERVED_PREFIXES = ("aws", "ssm")  # SSM: "A parameter name can't be prefixed with aws or ssm (case-insensitive)"


class ParameterError(ValueError):
    """The config cannot be stored as asked; the message says why and what to do."""


def tier_for(text: str) -> str:
    """Standard up to 4 KB; above, Intelligent-Tiering (Advanced for this value, and never a failed downgrade
    of a parameter already Advanced); above 8 KB, no tier holds it."""
    size = len(text.encode())
    if size > ADVANCED_MAX_BYTES:
        raise ParameterError(f"the agent config is {size} bytes, over the 8 KB an SSM parameter holds: pass fewer --process patterns")
    return "Intelligent-Tiering" if size > STANDARD_MAX_BYTES else "Standard"


def check_parameter_name(name: str, *, allow_unreadable: bool = False) -> list[str]:
    """Refuse names SSM refuses; refuse (or, allowed, warn about) names the agent's usual policy cannot read. Returns warnings."""
    first = name.lstrip("/")
    if first.lower().startswith(RESERVED_PREFIXES):
        raise ParameterError(f"--parameter-name {name!r}: SSM refuses names that begin with aws or ssm; use {DEFAULT_PARAMETER}")
    if first.startswith(READABLE_PREFIX) and "/" not in first:
        return []
    why = (f"--parameter-name {name!r}: instances with CloudWatchAgentServerPolicy may read only parameters named "
           f"{READABLE_PREFIX}*, so their agent could not load this config")
    if not allow_unreadable:
        raise ParameterError(f"{why}: use a name like {DEFAULT_PARAMETER}, or pass --any-parameter-name after granting "
                             f"ssm:GetParameter on it to the instances' role")
    return [why + "; make sure the instances' role grants ssm:GetParameter on it"]


@dataclass(frozen=True, slots=True)
class Published:
    """One metric the agent publishes: where, what, and the dimension names it carries."""

    namespace: str
    metric: str
    dimensions: frozenset[str]


def published(config: dict[str, Any]) -> set[Published]:
    """What the agent publishes for ``config``, per the schema above."""
    metrics = config.get("metrics", {})
    namespace = metrics.get("namespace", "CWAgent")
    appended = frozenset(metrics.get("append_dimensions", {}))
    found: set[Published] = set()
    collected = metrics.get("metrics_collected", {})
    for entry in collected.get("mem", {}).get("measurement", []):
        name = entry if isinstance(entry, str) else entry.get("rename") or entry["name"]
        found.add(Published(namespace, name, appended))
    for process in collected.get("procstat", []):
        chosen_by = next(k for k in ("pid_file", "exe", "pattern") if k in process)
        for measurement in process.get("measurement", []):
            found.add(Published(namespace, f"procstat_{measurement}", appended | {chosen_by, "process_name"}))
    return found

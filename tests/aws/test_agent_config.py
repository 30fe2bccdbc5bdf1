"""The agent config publishes exactly what orch reads: checked on paper and through moto.

On paper: ``published(agent_config(settings))`` (the agent's documented schema read the
other way) names the namespace, metric and dimensions that metrics.py and procstat.py
ask for. Through moto: datapoints put exactly as that config makes the agent publish
them are found by the sweep's MemoryReader, by procstat.top_process and by `orch agent
check`; and with a namespace or metric of the settings' choosing too.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest
from click.testing import CliRunner

from orchestrator.cli import agent_cmds, cli
from orchestrator.config import MemorySettings
from orchestrator.observe import procstat
from orchestrator.observe.metrics import MemoryReader
from orchestrator.onboard.agent_check import read_process_latest
from orchestrator.onboard.agent_config import Published, agent_config, published
from tests.aws.conftest import launch

NOW = datetime(2026, 12, 2, 10, 0, tzinfo=timezone.utc)
CUSTOM = MemorySettings(namespace="Fleet/Memory", metric="memory_used")


@pytest.mark.parametrize("memory", [MemorySettings(), CUSTOM], ids=["defaults", "custom"])
def test_the_config_publishes_the_metric_orch_reads(memory):
    config = agent_config(memory, ["crawler --worker"])
    found = published(config)
    [mem] = [p for p in found if p.metric == memory.metric]
    assert mem.namespace == memory.namespace and "InstanceId" in mem.dimensions  # metrics.py lists by InstanceId
    [proc] = [p for p in found if p.metric == procstat.METRIC]
    assert proc.namespace == memory.namespace
    assert {"InstanceId", "pattern", "process_name"} <= proc.dimensions
    assert procstat.NAME_DIMENSIONS[0] in proc.dimensions  # the name procstat.py prefers is there
    assert config["metrics"]["metrics_collected"]["procstat"][0]["pattern"] == "crawler --worker"


def test_without_processes_no_procstat_is_collected():
    assert {p.metric for p in published(agent_config(MemorySettings()))} == {"mem_used_percent"}


def publish_as_the_agent(cloudwatch, found: set[Published], instance_id: str, pattern: str, at: datetime) -> None:
    """PutMetricData the way the agent does for this config: every published metric, with its dimensions."""
    values = {"InstanceId": instance_id, "ImageId": "ami-12c6146b", "InstanceType": "t3.micro",
              "pattern": pattern, "process_name": "crawler"}
    for metric in found:
        dims = [{"Name": d, "Value": values[d]} for d in sorted(metric.dimensions) if d != "AutoScalingGroupName"]
        value = 3.5e9 if metric.metric == procstat.METRIC else 62.0
        cloudwatch.put_metric_data(Namespace=metric.namespace, MetricData=[
            {"MetricName": metric.metric, "Dimensions": dims, "Timestamp": at - timedelta(minutes=m), "Value": value} for m in range(3)
        ])


@pytest.mark.parametrize("memory", [MemorySettings(), CUSTOM], ids=["defaults", "custom"])
def test_what_the_agent_publishes_is_what_the_readers_find(aws, subnet, memory):
    [instance_id] = launch(aws, subnet, 1)
    publish_as_the_agent(aws.cloudwatch, published(agent_config(memory, ["crawler"])), instance_id, "crawler", NOW)

    reader = MemoryReader(aws.cloudwatch, memory.namespace, memory.metric, timedelta(minutes=30), 60)
    series = reader.read([instance_id], NOW)[instance_id]
    assert series.latest is not None and series.latest[1] == 62.0

    top, error = procstat.top_process(aws.cloudwatch, memory.namespace, instance_id, NOW)
    assert error is None and top is not None and top.name == "crawler" and top.rss_kb == int(3.5e9 // 1024)

    latest = read_process_latest(aws.cloudwatch, memory.namespace, "crawler", [instance_id], NOW, timedelta(minutes=15))
    assert latest[instance_id] == NOW - timedelta(minutes=1)  # EndTime is exclusive: the newest point before now


def test_agent_check_says_who_lacks_metrics_and_the_fix(aws, subnet, monkeypatch):
    fresh, stale, silent, stopped = launch(aws, subnet, 4)
    aws.ec2.stop_instances(InstanceIds=[stopped])
    found = published(agent_config(MemorySettings(), ["crawler"]))
    publish_as_the_agent(aws.cloudwatch, found, fresh, "crawler", NOW)
    publish_as_the_agent(aws.cloudwatch, {p for p in found if p.metric == "mem_used_percent"}, stale, "crawler", NOW - timedelta(minutes=25))
    monkeypatch.setattr(agent_cmds, "clock", lambda: NOW)

    result = CliRunner().invoke(cli, ["agent", "check", "--region", "us-east-1", "--process", "crawler", "-o", "json"])
    assert result.exit_code == 1
    rows = {r["instance_id"]: r for r in json.loads(result.stdout)["instances"]}
    assert (rows[fresh]["memory"], rows[fresh]["process"]) == ("arriving", "arriving")
    assert (rows[stale]["memory"], rows[stale]["process"]) == ("stale", "missing")
    assert (rows[silent]["memory"], rows[silent]["process"]) == ("missing", "missing")
    assert rows[stopped]["memory"] == "not-running"
    assert "fix: orch agent install --process 'crawler'" in result.stderr



def test_agent_check_passes_when_every_running_instance_publishes(aws, subnet, monkeypatch):
    ids = launch(aws, subnet, 2)
    for instance_id in ids:
        publish_as_the_agent(aws.cloudwatch, published(agent_config(MemorySettings())), instance_id, "-", NOW)
    monkeypatch.setattr(agent_cmds, "clock", lambda: NOW)
    result = CliRunner().invoke(cli, ["agent", "check", "--region", "us-east-1"])
    assert result.exit_code == 0, result.output
    assert "2 of 2 instances publish CWAgent mem_used_percent" in result.stdout

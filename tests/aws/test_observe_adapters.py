"""Inventory, status and memory adapters against moto."""

from __future__ import annotations

import ipaddress
from datetime import datetime, timedelta, timezone

import pytest
from botocore.stub import Stubber

from orchestrator.model import CheckState
from orchestrator.observe import inventory, metrics, status
from tests.aws.conftest import launch


def test_inventory_selects_by_tag_and_keeps_loopback_ips(aws, subnet):
    managed = launch(aws, subnet, 3)
    launch(aws, subnet, 2, tags={"team": "other"})
    launch(aws, subnet, 1, tags={"orch:managed": "false"})
    found = inventory.list_instances(aws.ec2, {"orch:managed": "true"})
    assert sorted(i.instance_id for i in found) == sorted(managed)
    for inst in found:
        assert ipaddress.ip_address(inst.private_ip) in ipaddress.ip_network("127.20.0.0/16")
        assert inst.state == "running" and inst.availability_zone == "us-east-1a"
        assert inst.tags["orch:managed"] == "true"


def test_inventory_refuses_an_empty_selector(aws):
    with pytest.raises(ValueError, match="empty selector"):
        inventory.list_instances(aws.ec2, {})


def test_inventory_follows_every_page():
    """Pages are stubbed so the test does not depend on how moto pages: both must be read."""
    import boto3

    ec2 = boto3.client("ec2", region_name="us-east-1")
    stub = Stubber(ec2)
    t = datetime(2026, 1, 1, tzinfo=timezone.utc)

    def page(ids, token=None):
        body = {"Reservations": [{"Instances": [{"InstanceId": i, "State": {"Name": "running"}, "LaunchTime": t, "Placement": {"AvailabilityZone": "us-east-1a"}} for i in ids]}]}
        if token:
            body["NextToken"] = token
        return body

    stub.add_response("describe_instances", page(["i-0000000000000000a"], "t1"))
    stub.add_response("describe_instances", page(["i-0000000000000000b"]))
    with stub:
        found = inventory.list_instances(ec2, {"orch:managed": "true"})
    assert [i.instance_id for i in found] == ["i-0000000000000000a", "i-0000000000000000b"]
    stub.assert_no_pending_responses()


def test_status_checks_joined_to_inventory(aws, subnet):
    ids = launch(aws, subnet, 2)
    other = launch(aws, subnet, 1, tags={"team": "x"})
    checks = status.read_status_checks(aws.ec2, ids)
    assert set(checks) == set(ids) and other[0] not in checks
    assert all(c.system is CheckState.OK and c.instance is CheckState.OK for c in checks.values())


def test_status_parses_impaired_and_scheduled_events():
    raw = {
        "InstanceId": "i-1",
        "SystemStatus": {"Status": "impaired"},
        "InstanceStatus": {"Status": "ok"},
        "Events": [
            {"Code": "system-reboot", "Description": "scheduled reboot", "NotBefore": datetime(2026, 2, 1, tzinfo=timezone.utc)},
            {"Code": "instance-stop", "Description": "[Completed] done"},
        ],
    }
    checks = status.status_from_api(raw)
    assert checks.impaired and not checks.all_ok
    assert [e.code for e in checks.events] == ["system-reboot"]
    assert status.status_from_api({"InstanceId": "i-2", "SystemStatus": {"Status": "weird"}}).system is CheckState.UNKNOWN


def put_memory(aws, instance_id, values, now, extra_dims=()):
    dims = [{"Name": "InstanceId", "Value": instance_id}, *({"Name": n, "Value": v} for n, v in extra_dims)]
    aws.cloudwatch.put_metric_data(
        Namespace="CWAgent",
        MetricData=[
            {"MetricName": "mem_used_percent", "Dimensions": dims, "Timestamp": now - timedelta(minutes=len(values) - i), "Value": v, "Unit": "Percent"}
            for i, v in enumerate(values)
        ],
    )


def test_memory_reads_appended_dimensions_and_reports_missing_as_empty(aws, subnet):
    ids = launch(aws, subnet, 3)
    now = datetime.now(timezone.utc).replace(second=0, microsecond=0)
    put_memory(aws, ids[0], [40.0, 41.0, 42.0], now)
    put_memory(aws, ids[1], [70.0, 80.0, 90.0], now, extra_dims=(("ImageId", "ami-1"), ("InstanceType", "t3.micro")))
    reader = metrics.MemoryReader(aws.cloudwatch, "CWAgent", "mem_used_percent", timedelta(minutes=60), 60)
    series = reader.read(ids, now)
    assert [v for _, v in series[ids[0]].points] == [40.0, 41.0, 42.0]
    assert [v for _, v in series[ids[1]].points] == [70.0, 80.0, 90.0]
    assert series[ids[2]].points == ()  # no data is "no data", not healthy and not sick
    assert reader.metrics_requested == 2


def test_memory_batches_500_queries_per_call(aws, subnet):
    now = datetime.now(timezone.utc).replace(second=0, microsecond=0)
    ids = [f"i-{n:017x}" for n in range(1203)]
    cache = metrics.DimensionCache(by_instance={i: ((("InstanceId", i),),) for i in ids}, refreshed_at=now)
    before = aws.counter.snapshot().get("cloudwatch.GetMetricData", 0)
    reader = metrics.MemoryReader(aws.cloudwatch, "CWAgent", "mem_used_percent", timedelta(minutes=60), 60, cache=cache)
    reader.read(ids, now)
    assert aws.counter.snapshot()["cloudwatch.GetMetricData"] - before == 3
    assert reader.metrics_requested == 1203


def test_dimension_discovery_keeps_every_recent_set_smallest_first(aws):
    now = datetime.now(timezone.utc).replace(second=0, microsecond=0)
    put_memory(aws, "i-1", [10.0], now, extra_dims=(("ImageId", "ami-1"),))
    put_memory(aws, "i-1", [11.0], now)
    found = metrics.discover_dimensions(aws.cloudwatch, "CWAgent", "mem_used_percent")
    assert found["i-1"] == ((("InstanceId", "i-1"),), (("InstanceId", "i-1"), ("ImageId", "ami-1")))


def test_dimension_cache_is_not_refreshed_every_sweep(aws):
    now = datetime.now(timezone.utc)
    cache = metrics.DimensionCache()
    reader = metrics.MemoryReader(aws.cloudwatch, "CWAgent", "mem_used_percent", timedelta(minutes=60), 60, cache=cache)
    reader.read(["i-1"], now)
    reader.read(["i-1"], now + timedelta(minutes=1))
    assert aws.counter.snapshot()["cloudwatch.ListMetrics"] == 1
    reader.read(["i-1"], now + timedelta(minutes=6))  # i-1 still unknown: look again, at most every 5 min
    assert aws.counter.snapshot()["cloudwatch.ListMetrics"] == 2

"""The sandbox pages EC2 listings as EC2 does, so the benchmark's call counts are honest.

moto pages DescribeInstances by reservation and ignores MaxResults on
DescribeInstanceStatus; the sandbox's ec2_fixes page both by instance. Its
GetMetricStatistics index answers the exact dimension set, as CloudWatch does.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Iterator

import pytest

from orchestrator.sandbox import FleetSpec, Sandbox
from orchestrator.sandbox.demo import SANDBOX_OVERRIDES, exports, stage

pytestmark = pytest.mark.e2e

SPEC = FleetSpec(instances=23, hung=1, refusing=0, leaking=0, opt_out=0, unmanaged=2, seed=3, port=0)


@pytest.fixture(scope="module")
def sb() -> Iterator[Sandbox]:
    with Sandbox(SPEC) as sandbox:
        yield sandbox


def test_describe_instances_pages_by_instance_not_by_reservation(sb: Sandbox) -> None:
    ec2 = sb.client("ec2")
    pages = list(ec2.get_paginator("describe_instances").paginate(PaginationConfig={"PageSize": 5}))
    sizes = [sum(len(r["Instances"]) for r in p["Reservations"]) for p in pages]
    assert sizes == [5, 5, 5, 5, 5]  # 25 instances in a handful of reservations
    ids = [i["InstanceId"] for p in pages for r in p["Reservations"] for i in r["Instances"]]
    assert len(ids) == len(set(ids)) == 25


def test_describe_instances_filters_then_pages(sb: Sandbox) -> None:
    ec2 = sb.client("ec2")
    filters = [{"Name": "tag:orch:managed", "Values": ["true"]}]
    pages = list(ec2.get_paginator("describe_instances").paginate(Filters=filters, PaginationConfig={"PageSize": 10}))
    sizes = [sum(len(r["Instances"]) for r in p["Reservations"]) for p in pages]
    assert sizes == [10, 10, 3]
    tags = [{t["Key"]: t["Value"] for t in i["Tags"]} for p in pages for r in p["Reservations"] for i in r["Instances"]]
    assert all(t["orch:managed"] == "true" and t["Name"].startswith("crawler-") for t in tags)


def test_describe_instance_status_honours_max_results(sb: Sandbox) -> None:
    ec2 = sb.client("ec2")
    pages = list(ec2.get_paginator("describe_instance_status").paginate(IncludeAllInstances=True, PaginationConfig={"PageSize": 10}))
    assert [len(p["InstanceStatuses"]) for p in pages] == [10, 10, 5]
    assert len({s["InstanceId"] for p in pages for s in p["InstanceStatuses"]}) == 25
    one = ec2.describe_instance_status(InstanceIds=[sb.instances[0].instance_id])["InstanceStatuses"]
    assert [s["InstanceId"] for s in one] == [sb.instances[0].instance_id]


def test_get_metric_statistics_wants_the_exact_dimension_set(sb: Sandbox) -> None:
    cloudwatch = sb.client("cloudwatch")
    sim = sb.instances[0]
    now = sb.now()
    common = {"Namespace": "CWAgent", "MetricName": "mem_used_percent", "StartTime": now - timedelta(minutes=10),
              "EndTime": now + timedelta(minutes=1), "Period": 60, "Statistics": ["Average"]}
    exact = cloudwatch.get_metric_statistics(Dimensions=sb.metric_dimensions(sim.instance_id), **common)["Datapoints"]
    assert 9 <= len(exact) <= 11
    partial = cloudwatch.get_metric_statistics(Dimensions=[{"Name": "InstanceId", "Value": sim.instance_id}], **common)
    assert partial["Datapoints"] == []  # CloudWatch matches the whole set, as the agent published it


def test_export_lines_carry_every_sandbox_override(sb: Sandbox, tmp_path) -> None:
    lines = exports(sb, stage(sb, tmp_path))
    assert lines["ORCH_PROBE_CONNECT_TIMEOUT"] == str(SANDBOX_OVERRIDES["probe"]["connect_timeout"])
    assert lines["ORCH_PROBE_BANNER_TIMEOUT"] == str(SANDBOX_OVERRIDES["probe"]["banner_timeout"])
    assert lines["ORCH_PROBE_RETRY_WINDOW"] == str(SANDBOX_OVERRIDES["probe"]["retry_window"])
    assert lines["ORCH_SAFETY_DEBOUNCE_SECONDS"] == str(SANDBOX_OVERRIDES["safety"]["debounce_seconds"])

"""The sandbox, seen only the way orch sees AWS: boto3 against its endpoint, plain sockets.

One read-only sandbox serves the class of observation tests; every test that acts
(reboot, stop, terminate, advance) builds its own, because actions change the fleet.
"""

from __future__ import annotations

import ipaddress
import socket
import threading
from datetime import datetime, timedelta
from typing import Any, Iterator

import boto3
import pytest
from botocore.exceptions import ClientError

from orchestrator.sandbox import EventKind, FleetSpec, Mode, Sandbox, SimInstance
from orchestrator.sandbox.endpoints import BANNER

pytestmark = pytest.mark.e2e

VPC = ipaddress.ip_network("127.20.0.0/16")
SPEC = FleetSpec(instances=12, hung=2, refusing=1, leaking=2, slow=1, no_metrics=1, seed=7, port=0, slow_delay=1.5)


def connect(sim: SimInstance, port: int, timeout: float = 5.0) -> socket.socket:
    sock = socket.create_connection((sim.private_ip, port), timeout=timeout)
    return sock


def read_banner(sim: SimInstance, port: int, wait: float = 5.0) -> bytes:
    with connect(sim, port) as sock:
        sock.settimeout(wait)
        return sock.recv(256)


def assert_silent(sim: SimInstance, port: int, wait: float = 0.5) -> None:
    """TCP accepted, then nothing within ``wait``: the incident as a prober sees it."""
    with connect(sim, port) as sock:
        sock.settimeout(wait)
        with pytest.raises(TimeoutError):
            sock.recv(256)


def assert_refused(sim: SimInstance, port: int) -> None:
    with pytest.raises(ConnectionRefusedError):
        connect(sim, port).close()


def memory_values(
    sb: Sandbox,
    sim: SimInstance,
    dims: list[dict[str, str]] | None = None,
    since: datetime | None = None,
    now: datetime | None = None,
) -> list[tuple[Any, float]]:
    """One GetMetricData read. Pass ``now`` to compare reads: GetMetricData's periods start
    at StartTime, so two reads a second apart bucket the same points differently."""
    now = now or sb.now()
    result = sb.client("cloudwatch").get_metric_data(
        MetricDataQueries=[
            {
                "Id": "m",
                "MetricStat": {
                    "Metric": {
                        "Namespace": "CWAgent",
                        "MetricName": "mem_used_percent",
                        "Dimensions": dims or sb.metric_dimensions(sim.instance_id),
                    },
                    "Period": 60,
                    "Stat": "Maximum",
                },
            }
        ],
        StartTime=since or now - timedelta(minutes=70),
        EndTime=now + timedelta(minutes=1),
        ScanBy="TimestampAscending",
    )["MetricDataResults"][0]
    return list(zip(result["Timestamps"], result["Values"]))


def pick(sb: Sandbox, mode: Mode, **flags: Any) -> SimInstance:
    for sim in sb.instances:
        if sim.mode is mode and sim.managed and all(getattr(sim, k) == v for k, v in flags.items()):
            return sim
    raise AssertionError(f"no managed {mode} instance with {flags}")


@pytest.fixture(scope="class")
def sb() -> Iterator[Sandbox]:
    """One fleet for the read-only class; torn down before the acting tests start theirs."""
    with Sandbox(SPEC) as sandbox:
        yield sandbox


class TestObservedFleet:
    """Read-only observations of one fleet (12 managed, seed 7)."""

    def test_every_private_ip_is_loopback_in_the_sandbox_vpc(self, sb: Sandbox) -> None:
        ec2 = sb.client("ec2")
        vpc = ec2.describe_vpcs(VpcIds=[sb.vpc_id])["Vpcs"][0]
        assert vpc["CidrBlock"] == "127.20.0.0/16"
        reservations = ec2.describe_instances()["Reservations"]
        ips = [i["PrivateIpAddress"] for r in reservations for i in r["Instances"]]
        assert len(ips) == 12 + 2
        for ip in ips:
            address = ipaddress.ip_address(ip)
            assert address in VPC and address.is_loopback
            assert int(str(address).rsplit(".", 1)[1]) not in (0, 1, 2, 3, 255)
        assert {i.private_ip for i in sb.instances} == set(ips)

    def test_healthy_endpoint_sends_the_ssh_banner(self, sb: Sandbox) -> None:
        banner = read_banner(pick(sb, Mode.HEALTHY), sb.port)
        assert banner.startswith(b"SSH-2.0-")
        assert banner == BANNER

    def test_hung_endpoint_accepts_and_never_speaks(self, sb: Sandbox) -> None:
        assert_silent(pick(sb, Mode.HUNG, opt_out=False), sb.port)

    def test_refusing_endpoint_refuses(self, sb: Sandbox) -> None:
        assert_refused(pick(sb, Mode.REFUSING), sb.port)

    def test_slow_endpoint_is_silent_first_then_sends_the_banner(self, sb: Sandbox) -> None:
        with connect(pick(sb, Mode.SLOW), sb.port) as sock:
            sock.settimeout(0.2)
            with pytest.raises(TimeoutError):
                sock.recv(256)
            sock.settimeout(10)
            assert sock.recv(256).startswith(b"SSH-2.0-")

    def test_modes_follow_the_spec(self, sb: Sandbox) -> None:
        managed = [s for s in sb.instances if s.managed]
        assert [s.name for s in managed] == [f"crawler-{n}" for n in range(1, 13)]
        counted = {m: sum(1 for s in managed if s.mode is m and not s.opt_out) for m in Mode}
        assert counted == {Mode.HUNG: 2, Mode.REFUSING: 1, Mode.SLOW: 1, Mode.HEALTHY: 7}
        assert sum(s.leaking for s in managed) == 2
        assert all(s.mode is Mode.HEALTHY for s in managed if s.leaking)
        (opted,) = [s for s in managed if s.opt_out]
        assert opted.mode is Mode.HUNG  # so a test can assert orch leaves it alone
        bystanders = [s for s in sb.instances if not s.managed]
        assert [s.name for s in bystanders] == ["unmanaged-1", "unmanaged-2"]

    def test_tags_select_managed_opt_out_and_bystanders(self, sb: Sandbox) -> None:
        ec2 = sb.client("ec2")

        def ids(filters: list[dict[str, Any]]) -> set[str]:
            pages = ec2.get_paginator("describe_instances").paginate(Filters=filters)
            return {i["InstanceId"] for p in pages for r in p["Reservations"] for i in r["Instances"]}

        managed = ids([{"Name": "tag:orch:managed", "Values": ["true"]}])
        assert managed == {s.instance_id for s in sb.instances if s.managed}
        assert len(managed) == 12
        skipped = ids([{"Name": "tag:orch:skip", "Values": ["true"]}])
        assert skipped == {s.instance_id for s in sb.instances if s.opt_out} and len(skipped) == 1
        everything = ids([{"Name": "vpc-id", "Values": [sb.vpc_id]}])
        assert everything - managed == {s.instance_id for s in sb.instances if not s.managed}
        named = ids([{"Name": "tag:Name", "Values": ["crawler-12"]}])
        assert named == {sb.instance("crawler-12").instance_id}

    def test_asg_members_carry_the_propagated_tags(self, sb: Sandbox) -> None:
        group = sb.client("autoscaling").describe_auto_scaling_groups(AutoScalingGroupNames=["orch-sandbox-asg"])[
            "AutoScalingGroups"
        ][0]
        members = {i["InstanceId"] for i in group["Instances"]}
        assert members == {s.instance_id for s in sb.instances if s.asg_member}
        assert len(members) == 3  # round(12 * 0.25)
        described = sb.client("ec2").describe_instances(InstanceIds=sorted(members))["Reservations"]
        for instance in (i for r in described for i in r["Instances"]):
            tags = {t["Key"]: t["Value"] for t in instance["Tags"]}
            assert tags["orch:managed"] == "true"
            assert tags["aws:autoscaling:groupName"] == "orch-sandbox-asg"
            assert tags["Name"].startswith("crawler-")
            assert ipaddress.ip_address(instance["PrivateIpAddress"]) in VPC

    def test_list_metrics_shows_the_appended_dimensions_once_per_instance(self, sb: Sandbox) -> None:
        pages = sb.client("cloudwatch").get_paginator("list_metrics").paginate(
            Namespace="CWAgent", MetricName="mem_used_percent", Dimensions=[{"Name": "InstanceId"}]
        )
        metrics = [m for p in pages for m in p["Metrics"]]
        by_instance: dict[str, dict[str, str]] = {}
        for metric in metrics:
            dims = {d["Name"]: d["Value"] for d in metric["Dimensions"]}
            assert dims["InstanceId"] not in by_instance, "one entry per metric, not per datapoint"
            by_instance[dims["InstanceId"]] = dims
        silent = {s.instance_id for s in sb.instances if not s.reports_metrics}
        assert len(silent) == 1
        assert set(by_instance) == {s.instance_id for s in sb.instances} - silent
        for sim in sb.instances:
            if sim.instance_id in silent:
                continue
            dims = by_instance[sim.instance_id]
            assert dims["ImageId"] == sim.image_id and dims["InstanceType"] == sim.instance_type
            assert dims.get("AutoScalingGroupName") == sim.asg_name

    def test_memory_series_tell_the_story(self, sb: Sandbox) -> None:
        for sim in sb.instances:
            if not sim.reports_metrics:
                assert memory_values(sb, sim) == []
                continue
            points = memory_values(sb, sim)
            assert len(points) == 60
            values = [v for _, v in points]
            if sim.mode is Mode.HUNG:
                assert all(v >= 98.0 for v in values[-5:]), sim
            elif sim.leaking:
                assert 75.0 <= values[-1] <= 85.0
                assert values[-1] - values[-11] > 7.0  # about 1 %/min over ten minutes
            else:
                assert all(25.0 <= v <= 55.0 for v in values), sim

    def test_dimension_order_does_not_matter(self, sb: Sandbox) -> None:
        sim = pick(sb, Mode.HUNG, opt_out=False)
        reversed_dims = list(reversed(sb.metric_dimensions(sim.instance_id)))
        now = sb.now()  # both reads at one instant: their periods line up
        reversed_read = memory_values(sb, sim, reversed_dims, now=now)
        assert reversed_read == memory_values(sb, sim, now=now)
        assert len(reversed_read) == 60

    def test_console_output_of_a_hung_instance_shows_the_oom_killer(self, sb: Sandbox) -> None:
        ec2 = sb.client("ec2")
        hung = ec2.get_console_output(InstanceId=pick(sb, Mode.HUNG, opt_out=False).instance_id)["Output"]
        assert "invoked oom-killer" in hung and "Out of memory: Killed process" in hung
        assert "Linux version" in hung  # boot noise around it
        healthy = ec2.get_console_output(InstanceId=pick(sb, Mode.HEALTHY).instance_id)["Output"]
        assert "oom-killer" not in healthy and "login:" in healthy

    def test_status_checks_stay_green_for_the_hung(self, sb: Sandbox) -> None:
        statuses = sb.client("ec2").describe_instance_status(IncludeAllInstances=True)["InstanceStatuses"]
        assert len(statuses) == 14
        assert all(s["InstanceStatus"]["Status"] == "ok" and s["SystemStatus"]["Status"] == "ok" for s in statuses)

    def test_a_second_sandbox_is_refused_while_one_runs(self, sb: Sandbox) -> None:
        with pytest.raises(RuntimeError, match="another Sandbox"):
            Sandbox(SPEC).start()
        assert read_banner(pick(sb, Mode.HEALTHY), sb.port).startswith(b"SSH-2.0-")  # first one untouched

    def test_env_points_plain_boto3_at_the_sandbox(self, sb: Sandbox, monkeypatch: pytest.MonkeyPatch) -> None:
        env = sb.env()
        assert env["AWS_ENDPOINT_URL"].startswith("http://127.0.0.1:")
        assert env["AWS_EC2_METADATA_DISABLED"] == "true" and env["AWS_REGION"] == "us-east-1"
        for key, value in env.items():
            monkeypatch.setenv(key, value)
        reservations = boto3.client("ec2").describe_instances()["Reservations"]
        assert sum(len(r["Instances"]) for r in reservations) == 14

    def test_console_output_of_an_unknown_instance_is_moto_s_error(self, sb: Sandbox) -> None:
        with pytest.raises(ClientError, match="InvalidInstanceID"):
            sb.client("ec2").get_console_output(InstanceId="i-00000000000000000")

    def test_observing_took_no_action(self, sb: Sandbox) -> None:
        assert sb.acted_on() == set()
        assert sb.hook_errors == []


def test_reboot_revives_a_hung_instance_and_records_it() -> None:
    with Sandbox(SPEC) as sb:
        hung = pick(sb, Mode.HUNG, opt_out=False)
        before = memory_values(sb, hung)
        sb.client("ec2").reboot_instances(InstanceIds=[hung.instance_id])

        assert read_banner(hung, sb.port).startswith(b"SSH-2.0-")
        assert sb.instance(hung.instance_id).mode is Mode.HEALTHY
        assert [(e.instance_id, e.what) for e in sb.events] == [(hung.instance_id, "reboot")]
        assert sb.acted_on() == {hung.instance_id}
        assert before[-1][1] >= 98.0
        after = memory_values(sb, hung, since=sb.series_end + timedelta(seconds=1))
        assert len(after) == 1 and 30.0 <= after[0][1] < 40.0  # one baseline point: the leak is gone
        console = sb.client("ec2").get_console_output(InstanceId=hung.instance_id)["Output"]
        assert "oom-killer" not in console  # a fresh boot's console
        others = [s for s in sb.instances if s.mode is Mode.HUNG]
        assert hung.instance_id not in {s.instance_id for s in others} and others  # nobody else revived
        assert sb.hook_errors == []


def test_reboot_with_boot_delay_refuses_until_sshd_is_back() -> None:
    with Sandbox(SPEC.model_copy(update={"boot_delay": 30.0})) as sb:
        hung = pick(sb, Mode.HUNG, opt_out=False)
        sb.client("ec2").reboot_instances(InstanceIds=[hung.instance_id])
        assert_refused(hung, sb.port)  # booting; 30 s is far beyond this test's life


def test_stop_refuses_start_revives_terminate_removes() -> None:
    with Sandbox(SPEC) as sb:
        ec2 = sb.client("ec2")
        hung = pick(sb, Mode.HUNG, opt_out=False)
        ec2.stop_instances(InstanceIds=[hung.instance_id])
        assert_refused(hung, sb.port)
        assert sb.instance(hung.instance_id).state == "stopped"
        ec2.start_instances(InstanceIds=[hung.instance_id])
        assert read_banner(hung, sb.port).startswith(b"SSH-2.0-")
        after = memory_values(sb, hung, since=sb.series_end + timedelta(seconds=1))
        assert len(after) == 1 and after[0][1] < 40.0  # the agent is back, at baseline

        healthy = pick(sb, Mode.HEALTHY)
        ec2.terminate_instances(InstanceIds=[healthy.instance_id])
        assert_refused(healthy, sb.port)
        assert sb.instance(healthy.instance_id).state == "terminated"
        assert [(e.instance_id, e.what) for e in sb.events] == [
            (hung.instance_id, EventKind.STOP),
            (hung.instance_id, EventKind.START),
            (healthy.instance_id, EventKind.TERMINATE),
        ]
        ec2.start_instances(InstanceIds=[pick(sb, Mode.HEALTHY).instance_id])  # already running: a no-op
        assert len(sb.events) == 3


def test_unhealthy_asg_member_is_replaced_by_a_fresh_instance() -> None:
    with Sandbox(SPEC) as sb:
        member = next(s for s in sb.instances if s.asg_member)
        sb.client("autoscaling").set_instance_health(InstanceId=member.instance_id, HealthStatus="Unhealthy")
        kinds = {(e.instance_id, e.what) for e in sb.events}
        assert (member.instance_id, EventKind.SET_UNHEALTHY) in kinds
        assert (member.instance_id, EventKind.TERMINATE) in kinds
        (launched,) = [e.instance_id for e in sb.events if e.what == EventKind.LAUNCH]
        fresh = sb.instance(launched)
        assert fresh.managed and fresh.asg_name == "orch-sandbox-asg" and fresh.name == "crawler-13"
        assert ipaddress.ip_address(fresh.private_ip) in VPC
        assert read_banner(fresh, sb.port).startswith(b"SSH-2.0-")
        group = sb.client("autoscaling").describe_auto_scaling_groups(AutoScalingGroupNames=["orch-sandbox-asg"])
        members = {i["InstanceId"] for i in group["AutoScalingGroups"][0]["Instances"]}
        assert launched in members and member.instance_id not in members
        assert sb.hook_errors == []


def test_advance_lets_a_leak_hang_sshd() -> None:
    with Sandbox(SPEC) as sb:
        leaking = [s for s in sb.instances if s.leaking]
        start = sb.now()
        caused = sb.advance(30)
        assert sb.now() - start >= timedelta(minutes=30)
        assert {e.instance_id for e in caused} == {s.instance_id for s in leaking}
        for sim in leaking:
            assert sb.instance(sim.instance_id).mode is Mode.HUNG
            assert_silent(sim, sb.port)
            values = [v for _, v in memory_values(sb, sim)]
            assert values[-1] >= 98.0
            assert "invoked oom-killer" in sb.client("ec2").get_console_output(InstanceId=sim.instance_id)["Output"]
        healthy = pick(sb, Mode.HEALTHY, reports_metrics=True)
        assert len(memory_values(sb, healthy)) >= 60  # still reporting at the simulated now
        assert sb.acted_on() == set()  # time passing is not an action


def test_impair_shows_in_describe_instance_status() -> None:
    with Sandbox(SPEC) as sb:
        victim = pick(sb, Mode.HEALTHY)
        sb.impair(victim.instance_id)
        statuses = sb.client("ec2").describe_instance_status(InstanceIds=[victim.instance_id])["InstanceStatuses"]
        assert statuses[0]["InstanceStatus"]["Status"] == "impaired"
        assert statuses[0]["InstanceStatus"]["Details"][0]["Status"] == "failed"
        assert statuses[0]["SystemStatus"]["Status"] == "ok"
        sb.client("ec2").reboot_instances(InstanceIds=[victim.instance_id])
        statuses = sb.client("ec2").describe_instance_status(InstanceIds=[victim.instance_id])["InstanceStatuses"]
        assert statuses[0]["InstanceStatus"]["Status"] == "ok"


def test_same_seed_same_fleet_other_seed_other_fleet() -> None:
    def snapshot(spec: FleetSpec) -> list[tuple[Any, ...]]:
        with Sandbox(spec) as sb:
            return [
                (s.name, s.private_ip, s.mode, s.leaking, s.opt_out, s.asg_name, s.reports_metrics, s.memory_percent)
                for s in sb.instances
            ]

    first = snapshot(SPEC)
    assert snapshot(SPEC) == first
    assert snapshot(SPEC.model_copy(update={"seed": 8})) != first


def test_stop_leaves_no_threads_no_patches_and_no_listeners() -> None:
    from moto.cloudwatch.models import CloudWatchBackend
    from moto.ec2.models.core import TaggedEC2Resource
    from moto.ec2.models.instances import InstanceBackend

    originals = [
        (InstanceBackend, "reboot_instances", InstanceBackend.__dict__["reboot_instances"]),
        (TaggedEC2Resource, "get_tags", TaggedEC2Resource.__dict__["get_tags"]),
        (CloudWatchBackend, "get_metric_data", CloudWatchBackend.__dict__["get_metric_data"]),
    ]
    sb = Sandbox(SPEC).start()
    sim = pick(sb, Mode.HEALTHY)
    port, url = sb.port, sb.endpoint_url
    sb.stop()
    sb.stop()  # idempotent
    for owner, name, original in originals:
        assert owner.__dict__[name] is original, f"{owner.__name__}.{name} still patched"
    assert not any("_server_entry" in t.name for t in threading.enumerate())  # moto's serving thread
    assert not any(t.name == "orch-sandbox-endpoints" for t in threading.enumerate())
    assert_refused(sim, port)
    with pytest.raises(ConnectionRefusedError):
        host, _, moto_port = url.removeprefix("http://").partition(":")
        socket.create_connection((host, int(moto_port)), timeout=2).close()


def test_spec_rejects_addresses_outside_loopback_and_impossible_counts() -> None:
    from pydantic import ValidationError

    for cidr in ("172.31.0.0/16", "10.0.0.0/16", "192.168.0.0/16", "127.20.0.0/24"):
        with pytest.raises(ValidationError, match="127.0.0.0/8"):
            FleetSpec(vpc_cidr=cidr)
    with pytest.raises(ValidationError, match="exceeds instances"):
        FleetSpec(instances=3, hung=2, refusing=1, opt_out=1)

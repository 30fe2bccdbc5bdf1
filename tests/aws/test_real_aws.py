"""What AWS does and moto does not (issue 11), through the real adapters, executor and sweep.

Each test reproduces AWS's documented behaviour with the fault hook (tests/faults.py) or
a botocore Stubber fed AWS's documented response shapes, and fails on the code before
the fix.
"""

from __future__ import annotations

import base64
from datetime import datetime, timedelta, timezone
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber
from click.testing import CliRunner
from moto.server import ThreadedMotoServer

from orchestrator.act import ec2 as act_ec2
from orchestrator.act import evidence
from orchestrator.act.executor import AwsExecutor
from orchestrator.alerting import news as alerts
from orchestrator.alerting import notify
from orchestrator.aws import Clients
from orchestrator.cli import cli
from orchestrator.config import Settings
from orchestrator.model import (
    START_PENDING,
    Action,
    ActionKind,
    ActionOutcome,
    Blocked,
    BlockRule,
    InstanceHistory,
    OutcomeStatus,
    Plan,
    ProbeOutcome,
    VerdictKind,
)
from orchestrator.observe import console, inventory, metrics, status
from orchestrator.state import fit, lease_scope
from orchestrator.state.dynamodb import DynamoStore, create_table
from orchestrator.state.journal import StoreJournal
from orchestrator.state.store import ActionStatus, StateError, SweepRecord, lease_is_live
from orchestrator.sweep.pipeline import Mode, SweepAborted, SweepDeps, SweepReport, sweep
from tests.aws.conftest import launch
from tests.aws.test_sweep import MUTATIONS, SETTINGS
from tests.builders import NOW, ScriptedProber, actions_at, facts, instance, verdict
from tests.faults import FaultPlan, endpoint_unreachable, error, raw, read_timeout, succeed


@pytest.fixture(autouse=True)
def instant_retries(backoffs: Any) -> Any:
    return backoffs


PROXY_PAGE = b"<html><head><title>502 Bad Gateway</title></head><body><center>nginx</center>"


def run(aws: Clients, store: Any, prober: ScriptedProber, settings: Any = SETTINGS, **kw: Any) -> Any:
    return sweep(settings, SweepDeps(clients=aws, store=store, prober=prober), **kw)


def outcomes(report: Any) -> dict[str, tuple[str, str]]:
    return {a["instance_id"]: (a["outcome"], a["detail"]) for a in report.summary()["actions"]}


# -- item 13: a reply botocore cannot parse ---------------------------------------------


def test_an_unparseable_reply_aborts_the_sweep_with_one_clear_line(aws, subnet, store, plan):
    launch(aws, subnet, 2)
    plan.on("DescribeInstances", fault=raw(PROXY_PAGE))
    with pytest.raises(SweepAborted) as aborted:
        run(aws, store, ScriptedProber(set()))
    assert "cannot parse" in str(aborted.value) and "--region" in str(aborted.value)
    assert not MUTATIONS & set(aws.counter.snapshot())


def test_cli_an_unparseable_reply_exits_3_without_a_traceback(aws, subnet, tmp_path, monkeypatch):
    launch(aws, subnet, 2)
    FaultPlan().on("DescribeInstances", fault=raw(PROXY_PAGE)).install(monkeypatch)
    config = tmp_path / "orch.toml"
    config.write_text(f'state = "{tmp_path / "state.db"}"\n[safety]\nlaunch_grace_minutes = 0\n')
    result = CliRunner().invoke(cli, ["heal", "--yes", "--config", str(config), "--region", "us-east-1"])
    assert result.exit_code == 3, result.output
    (line,) = result.stderr.strip().splitlines()
    assert "botocore cannot parse" in line and "Traceback" not in result.output


def test_an_unparseable_reply_to_a_reboot_is_uncertain_never_a_traceback(aws, subnet, store, plan):
    ids = launch(aws, subnet, 3)
    plan.on("RebootInstances", fault=raw(PROXY_PAGE), reaches_server=True)
    report = run(aws, store, ScriptedProber({ids[0]}))
    status, detail = outcomes(report)[ids[0]]
    assert status == "uncertain" and "not repeated" in detail
    assert plan.attempts("RebootInstances") == 1


# -- issue 10, item 6: the re-read after a lost reply cannot reach EC2 -------------------


def test_an_unreachable_endpoint_on_the_re_read_still_records_uncertain(aws, subnet, store, plan):
    ids = launch(aws, subnet, 4)
    down = ids[1]
    plan.on("RebootInstances", fault=read_timeout(), reaches_server=True)
    plan.on("DescribeInstances", fault=endpoint_unreachable(), when=lambda call: "InstanceId.1" in call.params())
    report = run(aws, store, ScriptedProber({down}))
    status, detail = outcomes(report)[down]
    assert status == "uncertain"
    assert "instance is now unknown (EndpointConnectionError)" in detail and "not repeated" in detail
    (record,) = store.list_actions(down)
    assert record.status is ActionStatus.DONE and record.detail.startswith("uncertain: ")
    assert store.get_histories([down])[down].in_flight_key == record.key


# -- item 3: stale dimension sets must not make every instance "metrics-stale" ----------


def stubbed_cloudwatch() -> tuple[Clients, Stubber]:
    clients = Clients(boto3.Session(region_name="us-east-1"))
    return clients, Stubber(clients.cloudwatch)


def metric(dims: list[tuple[str, str]]) -> dict[str, Any]:
    return {"Namespace": "CWAgent", "MetricName": "mem_used_percent", "Dimensions": [{"Name": n, "Value": v} for n, v in dims]}


OLD_SET = [("InstanceId", "i-0000000000000000a")]
NEW_SET = [("InstanceId", "i-0000000000000000a"), ("ImageId", "ami-1")]


def test_only_recently_active_sets_are_listed_and_the_newest_data_wins():
    """An agent config change two hours ago: both sets are still "recently active"; the old
    one went silent. Reading the old one alone made the instance look metrics-stale."""
    now = datetime(2026, 6, 1, 12, 0, tzinfo=timezone.utc)
    clients, stub = stubbed_cloudwatch()
    stub.add_response(
        "list_metrics",
        {"Metrics": [metric(OLD_SET), metric(NEW_SET)]},
        {"Namespace": "CWAgent", "MetricName": "mem_used_percent", "Dimensions": [{"Name": "InstanceId"}], "RecentlyActive": "PT3H"},
    )
    old_points = [now - timedelta(minutes=m) for m in (130, 125, 121)]
    new_points = [now - timedelta(minutes=m) for m in (3, 2, 1)]
    stub.add_response(
        "get_metric_data",
        {
            "MetricDataResults": [
                {"Id": "m0", "Timestamps": old_points, "Values": [40.0, 41.0, 42.0], "StatusCode": "Complete"},
                {"Id": "m1", "Timestamps": new_points, "Values": [60.0, 61.0, 62.0], "StatusCode": "Complete"},
            ]
        },
    )
    reader = metrics.MemoryReader(clients.cloudwatch, "CWAgent", "mem_used_percent", timedelta(hours=3), 60)
    with stub:
        series = reader.read(["i-0000000000000000a"], now)
    stub.assert_no_pending_responses()
    assert [v for _, v in series["i-0000000000000000a"].points] == [60.0, 61.0, 62.0]
    assert reader.metrics_requested == 2  # both sets read while both are recent


# -- item 5: GetMetricData's StatusCode and Messages --------------------------------------


def one_query_reply(status: str, *, token: str | None = None, messages: list[dict[str, str]] | None = None) -> dict[str, Any]:
    result: dict[str, Any] = {"Id": "m0", "Timestamps": [], "Values": [], "StatusCode": status}
    if messages:
        result["Messages"] = messages
    reply: dict[str, Any] = {"MetricDataResults": [result]}
    if token:
        reply["NextToken"] = token
    return reply


def read_one(stub_replies: list[dict[str, Any]]) -> dict[str, Any]:
    now = datetime(2026, 6, 1, 12, 0, tzinfo=timezone.utc)
    clients, stub = stubbed_cloudwatch()
    for reply in stub_replies:
        stub.add_response("get_metric_data", reply)
    cache = metrics.DimensionCache(by_instance={"i-0000000000000000a": (tuple(OLD_SET),)}, refreshed_at=now)
    reader = metrics.MemoryReader(clients.cloudwatch, "CWAgent", "mem_used_percent", timedelta(hours=1), 60, cache=cache)
    with stub:
        return reader.read(["i-0000000000000000a"], now)


@pytest.mark.parametrize("status", ["InternalError", "Forbidden", "PartialData"])
def test_a_result_that_is_not_complete_is_a_failed_read_not_no_data(status):
    with pytest.raises(metrics.IncompleteMetricData) as failed:
        read_one([one_query_reply(status, messages=[{"Code": "Err", "Value": "try again"}])])
    assert f"{status} for 1 query (i-0000000000000000a (Err: try again))" in str(failed.value)


def test_partial_data_followed_by_its_next_page_is_complete():
    series = read_one([one_query_reply("PartialData", token="t1"), one_query_reply("Complete")])
    assert series["i-0000000000000000a"].points == ()


def test_a_call_level_message_is_a_failed_read():
    reply = one_query_reply("Complete")
    reply["Messages"] = [{"Code": "MaxMetricsExceeded", "Value": "Maximum number of allowed metrics exceeded"}]
    with pytest.raises(metrics.IncompleteMetricData, match="Maximum number of allowed metrics exceeded"):
        read_one([reply])


def test_an_internal_error_in_the_memory_read_aborts_the_sweep_before_acting(aws, subnet, store, plan):
    ids = launch(aws, subnet, 3)
    now = datetime.now(timezone.utc)
    for instance_id in ids:
        aws.cloudwatch.put_metric_data(
            Namespace="CWAgent",
            MetricData=[{"MetricName": "mem_used_percent", "Dimensions": [{"Name": "InstanceId", "Value": instance_id}], "Timestamp": now, "Value": 99.0}],
        )
    results = [{"Id": f"m{n}", "Timestamps": [], "Values": [], "StatusCode": "InternalError"} for n in range(3)]
    plan.on("GetMetricData", fault=succeed({"MetricDataResults": results}))
    with pytest.raises(SweepAborted, match="InternalError for 3 queries"):
        run(aws, store, ScriptedProber({ids[0]}))
    assert not MUTATIONS & set(aws.counter.snapshot())


# -- item 12: status checks of running instances only -------------------------------------


def test_status_checks_list_running_instances_only():
    """EC2's default (IncludeAllInstances false) is running only: a page of stopped and
    terminated instances of the whole region is never asked for."""
    clients = Clients(boto3.Session(region_name="us-east-1"))
    stub = Stubber(clients.ec2)
    stub.add_response(
        "describe_instance_status",
        {
            "InstanceStatuses": [
                {
                    "InstanceId": "i-0000000000000000a",
                    "InstanceState": {"Code": 16, "Name": "running"},
                    "SystemStatus": {"Status": "ok"},
                    "InstanceStatus": {"Status": "ok"},
                }
            ]
        },
        {"MaxResults": 1000},
    )
    with stub:
        checks = status.read_status_checks(clients.ec2, ["i-0000000000000000a"])
    stub.assert_no_pending_responses()
    assert checks["i-0000000000000000a"].all_ok


# -- item 11: which console buffer the evidence came from ---------------------------------


CONSOLE = base64.b64encode(b"[ 9.0] Out of memory: Killed process 25910 (ruby)\n").decode()


def test_console_asks_for_the_latest_output_and_records_the_buffer():
    clients = Clients(boto3.Session(region_name="us-east-1"))
    stub = Stubber(clients.ec2)
    stub.add_response("get_console_output", {"InstanceId": "i-0000000000000000a", "Output": CONSOLE}, {"InstanceId": "i-0000000000000000a", "Latest": True})
    with stub:
        read = console.read_console_output(clients.ec2, "i-0000000000000000a")
    assert read.buffer == console.LATEST and "Out of memory" in read.text and read.error is None


def test_a_xen_instance_falls_back_to_the_posted_buffer_and_says_so():
    """Latest=true is Nitro-only: elsewhere the text is what EC2 posted at the last state
    change (boot text on a box hung since), and the evidence must say which it is."""
    clients = Clients(boto3.Session(region_name="us-east-1"))
    stub = Stubber(clients.ec2)
    stub.add_client_error(
        "get_console_output", "UnsupportedOperation", "The Latest parameter is not supported for this instance type.",
        expected_params={"InstanceId": "i-0000000000000000b", "Latest": True},
    )
    stub.add_response("get_console_output", {"InstanceId": "i-0000000000000000b", "Output": CONSOLE}, {"InstanceId": "i-0000000000000000b"})
    with stub:
        read = console.read_console_output(clients.ec2, "i-0000000000000000b")
    stub.assert_no_pending_responses()
    assert read.buffer == console.LAST_STATE_CHANGE and "Out of memory" in read.text
    inst = instance(2)
    f = facts(inst, ProbeOutcome.BANNER_TIMEOUT)
    action = Action(inst.instance_id, ActionKind.REBOOT, "unreachable")
    bundle = evidence.bundle(action, f, verdict(f, VerdictKind.UNREACHABLE), read, NOW)
    assert bundle["console"]["buffer"] == "last-state-change"
    assert evidence.summary(bundle)["console_buffer"] == "last-state-change"


# -- item 6: size limits at scale ----------------------------------------------------------


BREAKER = "too many unhealthy: 2500 of 10000 unreachable without host-side evidence (limit 20% = 2000); circuit breaker open"


NO_RUNG = "escalation reached replace, which orch does only for Auto Scaling members; a human must look"


def big_report(blocked: int = 2500, acted: int = 3, why: str = BREAKER, rule: BlockRule = BlockRule.BREAKER) -> SweepReport:
    """The sweep whose message and record matter most: the breaker open on a big fleet."""
    insts = [instance(n) for n in range(blocked + acted)]
    actions = tuple(Action(i.instance_id, ActionKind.REBOOT, "SSH banner timeout after 5.0 s (TCP accepted); corroborated by memory 99%") for i in insts[:acted])
    held = tuple(Blocked(i.instance_id, ActionKind.REBOOT, why, rule) for i in insts[acted:])
    report = SweepReport(sweep_id="s" * 12, mode=Mode.HEAL, dry_run=False, started_at=NOW)
    report.facts = [facts(i, ProbeOutcome.BANNER_TIMEOUT) for i in insts]
    report.verdicts = [verdict(f, VerdictKind.UNREACHABLE) for f in report.facts]
    report.plan = Plan(actions=actions, blocked=held, notes=(BREAKER,))
    report.outcomes = [ActionOutcome(a, OutcomeStatus.DONE, "RebootInstances accepted") for a in actions]
    report.evidence = {a.instance_id: {"incident_id": f"s-{a.instance_id}", "console_summary": "oom-killer: ruby"} for a in actions}
    return report


def message(report: SweepReport) -> tuple[str, str]:
    """What the sweep would tell the first time it saw this: everything is news."""
    found = alerts.items(report.plan, report.outcomes, [], frozenset(), {}, notify.action_lines(report), False, False)
    composed = notify.compose(report, alerts.decide(found, alerts.AlertState(), NOW, timedelta(hours=24)))
    assert composed is not None
    return composed


def test_the_breaker_is_one_line_however_many_it_holds():
    subject, body = message(big_report())
    assert "circuit breaker open" in subject and body.count("circuit breaker open") == 1
    assert len(body.encode()) < 10_000


def test_a_message_of_thousands_of_blocks_fits_one_publish_and_keeps_every_action(aws):
    subject, body = message(big_report(why=NO_RUNG, rule=BlockRule.LADDER))
    assert len(body.encode()) > notify.PUBLISH_MAX_BYTES  # 2,500 "a human must look" lines: SNS refuses it
    sns = aws.client("sns")
    topic = sns.create_topic(Name="orch")["TopicArn"]
    assert notify.publish(sns, topic, notify.SnsMessage(subject, body)) is not None  # "Message too long"
    fitted_subject, fitted = notify.fit(subject, body)
    assert len(fitted.encode()) <= notify.BODY_MAX_BYTES and fitted_subject == subject
    lines = fitted.splitlines()
    assert lines[-1] == "sweep ssssssssssss"
    assert sum(" rebooted: " in line for line in lines) == 3  # every action taken
    assert any(line.startswith("... ") and "left out to fit SNS's 256 KB limit" in line for line in lines)
    assert notify.publish(sns, topic, notify.SnsMessage(fitted_subject, fitted)) is None


def test_a_message_that_fits_is_left_alone():
    subject, body = message(big_report(blocked=10, why=NO_RUNG, rule=BlockRule.LADDER))
    assert notify.fit(subject, body) == (subject, body)


def test_the_sweep_record_fits_dynamodb_and_keeps_every_action(aws):
    create_table(aws.client("dynamodb"), "orch-state")
    store = DynamoStore(aws.client("dynamodb"), "orch-state")
    report = big_report()
    summary = report.summary()
    assert fit.size_of(summary) > fit.DYNAMODB_ITEM_MAX_BYTES  # measured 445 KB at 2,500 blocked
    with pytest.raises(StateError, match="Item size has exceeded"):
        store.put_sweep(SweepRecord(report.sweep_id, NOW, "heal", "orch:managed=true", NOW, False, summary))
    fitted = fit.fit_sweep_summary(summary)
    assert fit.size_of(fitted) <= fit.SWEEP_SUMMARY_MAX_BYTES
    assert fitted["actions"] == summary["actions"]  # every action, with its evidence summary
    assert fitted["blocked_total"] == 2500 and fitted["blocked_by_reason"] == {BREAKER: 2500}
    assert fitted["summarised"] is True and len(fitted["blocked"]) == fit.KEPT_BLOCKED
    store.put_sweep(SweepRecord(report.sweep_id, NOW, "heal", "orch:managed=true", NOW, False, fitted))
    (stored,) = store.list_sweeps(1)
    assert stored.summary["blocked_total"] == 2500


class FailingPutSweep:
    """A store whose sweep record cannot be written (everything else works)."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner

    def put_sweep(self, record: Any) -> None:
        raise StateError("PutItem: ValidationException: Item size has exceeded the maximum allowed size")

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


def test_a_failed_sweep_record_releases_the_lease_and_never_hides_the_actions(aws, subnet, store):
    ids = launch(aws, subnet, 4)
    report = run(aws, FailingPutSweep(store), ScriptedProber({ids[0]}))
    assert outcomes(report) == {ids[0]: ("done", "RebootInstances accepted")}
    assert report.partial is True
    assert any("sweep record could not be written" in n and "1 action(s) ran" in n for n in report.notes)
    lease = store.get_lease(lease_scope("-", "us-east-1", None))
    assert not lease_is_live(lease, datetime.now(timezone.utc))  # released, not left to expire
    (record,) = store.list_actions(ids[0])
    assert record.status is ActionStatus.DONE


# -- item 7: one denied instance must not fail its whole reboot batch --------------------


def test_a_batch_denied_for_one_instance_is_split_and_the_others_are_rebooted(aws, subnet, store, plan):
    """IAM authorizes a multi-instance request as a whole: the one instance failing the tag
    condition made RebootInstances for the whole batch fail with UnauthorizedOperation."""
    ids = launch(aws, subnet, 8)  # 3 of 8 down: under the AZ-fault share
    denied, *allowed = ids[:3]
    plan.on("RebootInstances", fault=error("UnauthorizedOperation", "You are not authorized to perform this operation.", 403),
            when=lambda call: denied in call.instance_ids())
    settings = Settings.model_validate({"safety": {"launch_grace_minutes": 0, "max_unhealthy": "60%"}})
    report = run(aws, store, ScriptedProber(set(ids[:3])), settings)
    result = outcomes(report)
    assert {i: result[i][0] for i in ids[:3]} == {denied: "failed", allowed[0]: "done", allowed[1]: "done"}
    assert "lacks the IAM permission ec2:RebootInstances" in result[denied][1] and "this instance alone" in result[denied][1]
    batches = [sorted(r.instance_ids()) for r in plan.log if r.operation == "RebootInstances"]
    assert batches[0] == sorted(ids[:3]) and sorted(batches[1:]) == sorted([[i] for i in ids[:3]])


def test_a_wildcard_selector_is_refused_before_anything_is_listed(aws, subnet, tmp_path):
    """EC2 filters read * and ? as wildcards; the role's condition is literal: `Name=*`
    selected unmanaged instances and planned to reboot one."""
    launch(aws, subnet, 2, tags={"Name": "bystander"})
    result = CliRunner().invoke(cli, ["scan", "--selector", "Name=*", "--state", str(tmp_path / "s.db"), "--region", "us-east-1"])
    assert result.exit_code == 2, result.output
    assert "contains *" in result.output and "wildcards" in result.output and "Traceback" not in result.output
    assert "ec2.DescribeInstances" not in aws.counter.snapshot()


# -- item 2: stop/start is not safe for every instance ------------------------------------


def test_inventory_reads_what_decides_whether_an_instance_may_be_stopped():
    """AWS's DescribeInstances shape for a Spot instance and an instance-store-backed one."""
    clients = Clients(boto3.Session(region_name="us-east-1"))
    stub = Stubber(clients.ec2)
    base = {"ImageId": "ami-1", "InstanceType": "m5d.large", "LaunchTime": NOW, "Placement": {"AvailabilityZone": "us-east-1a"}, "State": {"Code": 16, "Name": "running"}, "Tags": [{"Key": "orch:managed", "Value": "true"}]}
    spot = {**base, "InstanceId": "i-0000000000000000a", "InstanceLifecycle": "spot", "SpotInstanceRequestId": "sir-abc12345",
            "RootDeviceType": "ebs", "RootDeviceName": "/dev/xvda",
            "BlockDeviceMappings": [{"DeviceName": "/dev/xvda", "Ebs": {"VolumeId": "vol-1", "Status": "attached"}}, {"DeviceName": "/dev/sdf", "Ebs": {"VolumeId": "vol-2", "Status": "attached"}}]}
    store = {**base, "InstanceId": "i-0000000000000000b", "RootDeviceType": "instance-store", "RootDeviceName": "/dev/sda1", "BlockDeviceMappings": []}
    stub.add_response("describe_instances", {"Reservations": [{"ReservationId": "r-1", "Instances": [spot, store]}]})
    with stub:
        found = {i.instance_id: i for i in inventory.list_instances(clients.ec2, {"orch:managed": "true"})}
    a, b = found["i-0000000000000000a"], found["i-0000000000000000b"]
    assert (a.instance_lifecycle, a.spot_request_id, a.root_device_type, a.ebs_devices) == ("spot", "sir-abc12345", "ebs", ("/dev/sdf", "/dev/xvda"))
    assert (b.instance_lifecycle, b.root_device_type, b.root_device_name, b.ebs_devices) == (None, "instance-store", "/dev/sda1", ())


def seed_rung(store: Any, instance_id: str, rung: int) -> None:
    now = datetime.now(timezone.utc)
    store.put_histories([InstanceHistory(instance_id, first_failure_at=now - timedelta(minutes=5), failed_probes=9, rung=rung, actions=actions_at(now - timedelta(hours=1)))])


def test_an_instance_type_with_instance_store_skips_stop_start(aws, subnet, store):
    launch(aws, subnet, 4)
    big = aws.ec2.run_instances(ImageId="ami-12c6146b", MinCount=1, MaxCount=1, InstanceType="i3.large", SubnetId=subnet,
                                TagSpecifications=[{"ResourceType": "instance", "Tags": [{"Key": "orch:managed", "Value": "true"}]}])["Instances"][0]["InstanceId"]
    seed_rung(store, big, 1)
    report = run(aws, store, ScriptedProber({big}))
    summary = report.summary()
    assert summary["actions"] == []
    (blocked,) = summary["blocked"]
    assert blocked["instance_id"] == big and "i3.large has instance-store volumes, which a stop erases" in blocked["why"]
    assert report.api_calls["ec2.DescribeInstanceTypes"] == 1 and "ec2.StopInstances" not in report.api_calls


def test_a_plain_box_at_the_second_rung_is_stopped_and_started(aws, subnet, store):
    ids = launch(aws, subnet, 4)
    seed_rung(store, ids[0], 1)
    report = run(aws, store, ScriptedProber({ids[0]}))
    assert outcomes(report) == {ids[0]: ("done", "stopped and started")}
    assert report.api_calls["ec2.DescribeInstanceTypes"] == 1


def test_a_healthy_fleet_asks_nothing_about_stopping(aws, subnet, store):
    launch(aws, subnet, 4)
    report = run(aws, store, ScriptedProber(set()))
    assert not {"ec2.DescribeInstanceTypes", "ec2.DescribeSpotInstanceRequests"} & set(report.api_calls)


# -- item 1: stop/start never leaves an instance stopped ----------------------------------


IID = "i-0000000000000000a"


def described(state: str) -> dict[str, Any]:
    return {"Reservations": [{"ReservationId": "r-1", "Instances": [{"InstanceId": IID, "State": {"Code": 0, "Name": state}}]}]}


def state_change(previous: str, current: str) -> dict[str, Any]:
    return {"InstanceId": IID, "PreviousState": {"Code": 0, "Name": previous}, "CurrentState": {"Code": 0, "Name": current}}


def stubbed_ec2() -> tuple[Any, Stubber]:
    clients = Clients(boto3.Session(region_name="us-east-1"))
    client = clients.mutating_client("ec2")
    return client, Stubber(client)


def test_a_wedged_guest_is_stopped_with_force_after_the_graceful_wait(monkeypatch):
    """StopInstances' Force: no flush of caches, used only once the graceful stop outlasted its wait."""
    monkeypatch.setattr("botocore.waiter.time.sleep", lambda s: None)
    client, stub = stubbed_ec2()
    stub.add_response("stop_instances", {"StoppingInstances": [state_change("running", "stopping")]}, {"InstanceIds": [IID]})
    stub.add_response("describe_instances", described("stopping"), {"InstanceIds": [IID]})
    stub.add_response("describe_instances", described("stopping"), {"InstanceIds": [IID]})
    stub.add_response("stop_instances", {"StoppingInstances": [state_change("stopping", "stopping")]}, {"InstanceIds": [IID], "Force": True})
    stub.add_response("describe_instances", described("stopped"), {"InstanceIds": [IID]})
    stub.add_response("start_instances", {"StartingInstances": [state_change("stopped", "pending")]}, {"InstanceIds": [IID]})
    with stub:
        result = act_ec2.stop_start(client, IID, wait_seconds=2, force_wait_seconds=2, poll_seconds=1)
    stub.assert_no_pending_responses()
    assert result.status is OutcomeStatus.DONE and result.detail == "stopped (StopInstances Force=True after 2 s) and started"


def test_a_stop_that_even_force_cannot_finish_is_start_pending(monkeypatch):
    monkeypatch.setattr("botocore.waiter.time.sleep", lambda s: None)
    client, stub = stubbed_ec2()
    stub.add_response("stop_instances", {"StoppingInstances": [state_change("running", "stopping")]})
    stub.add_response("describe_instances", described("stopping"))
    stub.add_response("stop_instances", {"StoppingInstances": [state_change("stopping", "stopping")]}, {"InstanceIds": [IID], "Force": True})
    stub.add_response("describe_instances", described("stopping"))
    with stub:
        result = act_ec2.stop_start(client, IID, wait_seconds=1, force_wait_seconds=1, poll_seconds=1)
    assert result.status is OutcomeStatus.FAILED and result.detail.startswith(START_PENDING)
    assert "still stopping" in result.detail and "the next sweep" in result.detail


def test_no_capacity_to_start_after_a_good_stop_is_start_pending():
    client, stub = stubbed_ec2()
    stub.add_response("stop_instances", {"StoppingInstances": [state_change("running", "stopping")]})
    stub.add_response("describe_instances", described("stopped"))
    stub.add_client_error("start_instances", "InsufficientInstanceCapacity", "We currently do not have sufficient t3.large capacity in the Availability Zone you requested.")
    with stub:
        result = act_ec2.stop_start(client, IID, wait_seconds=5, poll_seconds=5)
    assert result.status is OutcomeStatus.FAILED and result.detail.startswith(START_PENDING)
    assert "InsufficientInstanceCapacity" in result.detail and "retries the start" in result.detail


def test_an_instance_someone_else_started_while_orch_waited_is_not_forced(monkeypatch):
    client, stub = stubbed_ec2()
    stub.add_response("stop_instances", {"StoppingInstances": [state_change("running", "stopping")]})
    stub.add_response("describe_instances", described("pending"))  # the waiter gives up at once on pending
    with stub:
        result = act_ec2.stop_start(client, IID, wait_seconds=30, poll_seconds=5)
    stub.assert_no_pending_responses()
    assert result.status is OutcomeStatus.SKIPPED and "went pending" in result.detail


def test_finishing_a_start_forces_an_instance_still_stopping(monkeypatch):
    monkeypatch.setattr("botocore.waiter.time.sleep", lambda s: None)
    client, stub = stubbed_ec2()
    stub.add_client_error("start_instances", "IncorrectInstanceState", "The instance is not in a state from which it can be started.")
    stub.add_response("describe_instances", described("stopping"))
    stub.add_response("stop_instances", {"StoppingInstances": [state_change("stopping", "stopping")]}, {"InstanceIds": [IID], "Force": True})
    stub.add_response("describe_instances", described("stopped"))
    stub.add_response("start_instances", {"StartingInstances": [state_change("stopped", "pending")]})
    with stub:
        result = act_ec2.finish_stop_start(client, IID, force_wait_seconds=5, poll_seconds=5)
    stub.assert_no_pending_responses()
    assert result.status is OutcomeStatus.DONE and "Force=True" in result.detail


def test_waits_end_before_the_lambda_deadline(aws):
    executor = AwsExecutor(aws, None, stop_wait_seconds=300, time_left=lambda: 150.0)  # type: ignore[arg-type]
    graceful, forced = executor._stop_waits()
    assert graceful + forced <= 150.0 - 60.0 and graceful == 60.0
    assert AwsExecutor(aws, None, stop_wait_seconds=300)._stop_waits() == (300.0, 120.0)  # type: ignore[arg-type]


def state_of(aws: Clients, instance_id: str) -> str:
    return aws.ec2.describe_instances(InstanceIds=[instance_id])["Reservations"][0]["Instances"][0]["State"]["Name"]


def test_no_capacity_now_the_next_sweep_starts_it(aws, subnet, store, plan):
    ids = launch(aws, subnet, 4)
    target = ids[0]
    seed_rung(store, target, 1)
    plan.on("StartInstances", calls={1}, fault=error("InsufficientInstanceCapacity", "We currently do not have sufficient capacity."))
    first = run(aws, store, ScriptedProber({target}))
    status_, detail = outcomes(first)[target]
    assert status_ == "failed" and detail.startswith(START_PENDING) and state_of(aws, target) == "stopped"

    second = run(aws, store, ScriptedProber(set()))
    assert outcomes(second) == {target: ("done", "started: the stop/start orch began is complete")}
    assert [a.kind for a in second.plan.actions] == [ActionKind.START]
    assert state_of(aws, target) in ("pending", "running")
    (latest, earlier) = store.list_actions(target, limit=2)
    assert (latest.action, latest.status) == (ActionKind.START, ActionStatus.DONE)
    assert (earlier.action, earlier.status) == (ActionKind.STOP_START, ActionStatus.FAILED)

    third = run(aws, store, ScriptedProber(set()))
    assert outcomes(third) == {}  # started once, never again


def test_a_sweep_that_died_mid_wait_is_finished_by_the_next(aws, subnet, store):
    """The intent was written, StopInstances ran, the Lambda died before any outcome."""
    ids = launch(aws, subnet, 4)
    target = ids[1]
    aws.ec2.stop_instances(InstanceIds=[target])
    store.put_histories([InstanceHistory(target, last_verdict=VerdictKind.UNREACHABLE, rung=1)])
    now = datetime.now(timezone.utc) - timedelta(minutes=6)
    StoreJournal(store, "dead-sweep", lambda: now).begin(Action(target, ActionKind.STOP_START, "unreachable"), {})
    report = run(aws, store, ScriptedProber(set()))
    assert outcomes(report)[target][0] == "done" and state_of(aws, target) in ("pending", "running")
    assert "stop-start at" in report.plan.actions[0].reason and "ended before recording an outcome" in report.plan.actions[0].reason


def test_an_instance_a_human_stopped_is_left_stopped(aws, subnet, store):
    ids = launch(aws, subnet, 4)
    aws.ec2.stop_instances(InstanceIds=[ids[2]])
    store.put_histories([InstanceHistory(ids[2], last_verdict=VerdictKind.UNREACHABLE)])  # suspected, never acted on
    report = run(aws, store, ScriptedProber(set()))
    assert outcomes(report) == {} and state_of(aws, ids[2]) == "stopped"


def test_a_dry_run_says_it_would_start_and_starts_nothing(aws, subnet, store, plan):
    ids = launch(aws, subnet, 4)
    seed_rung(store, ids[0], 1)
    plan.on("StartInstances", calls={1}, fault=error("InsufficientInstanceCapacity", "no capacity"))
    run(aws, store, ScriptedProber({ids[0]}))
    dry = run(aws, store, ScriptedProber(set()), dry_run=True)
    assert outcomes(dry) == {ids[0]: ("dry-run", "would start")}
    assert state_of(aws, ids[0]) == "stopped" and plan.attempts("StartInstances") == 1


# -- item 4: a deployed sweep manages its own VPC only ------------------------------------


def test_inventory_is_scoped_to_the_vpc(aws, subnet, store):
    """Tagged instances in another VPC cannot be probed from the Lambda: listed, they would
    time out with status checks ok and look like reboot candidates."""
    here = launch(aws, subnet, 3)
    other_vpc = aws.ec2.create_vpc(CidrBlock="127.21.0.0/16")["Vpc"]["VpcId"]
    other_subnet = aws.ec2.create_subnet(VpcId=other_vpc, CidrBlock="127.21.1.0/24", AvailabilityZone="us-east-1a")["Subnet"]["SubnetId"]
    there = launch(aws, other_subnet, 2)
    vpc = aws.ec2.describe_subnets(SubnetIds=[subnet])["Subnets"][0]["VpcId"]
    scoped = Settings.model_validate({"vpc_id": vpc, "safety": {"launch_grace_minutes": 0, "max_unhealthy": "50%"}})
    report = run(aws, store, ScriptedProber(set(there)), scoped)
    assert sorted(f.instance.instance_id for f in report.facts) == sorted(here)
    assert outcomes(report) == {}
    unscoped = run(aws, store, ScriptedProber(set(there)), dry_run=True)
    assert sorted(f.instance.instance_id for f in unscoped.facts) == sorted(here + there)  # what it did before


def test_cli_a_region_that_does_not_exist_exits_3_with_one_line(tmp_path, monkeypatch):
    """`--region zz-mars-1` (well formed, no such region) against moto's server (as against the
    sandbox): its reply cannot be parsed; this was a traceback and exit 1. (A malformed name,
    `mars-1`, is refused before any call: exit 2, tests/unit/test_hostile_inputs.py.)"""
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://{host}:{port}")
        result = CliRunner().invoke(cli, ["scan", "--region", "zz-mars-1", "--state", str(tmp_path / "s.db")])
    finally:
        server.stop()
    assert result.exit_code == 3, result.output
    (line,) = result.stderr.strip().splitlines()
    assert "cannot parse" in line and "--region" in line and "Traceback" not in result.output

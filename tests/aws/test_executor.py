"""The executor against moto: batching, per-instance errors, gates, idempotency, dry run."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from orchestrator.act.executor import AwsExecutor, DryRunExecutor
from orchestrator.model import Action, ActionKind, ActionOutcome, OutcomeStatus, Plan
from tests.aws.conftest import launch


@dataclass
class MemoryJournal:
    refuse: set[str] = field(default_factory=set)
    begun: list[str] = field(default_factory=list)
    finished: list[ActionOutcome] = field(default_factory=list)

    def begin(self, action: Action, evidence: dict[str, Any]) -> str | None:
        if action.instance_id in self.refuse:
            return "already recorded"
        self.begun.append(action.instance_id)
        return None

    def finish(self, outcome: ActionOutcome) -> None:
        self.finished.append(outcome)


def reboots(ids: list[str]) -> Plan:
    return Plan(actions=tuple(Action(i, ActionKind.REBOOT, "test") for i in ids))


def test_reboots_are_batched_into_one_call(aws, subnet):
    ids = launch(aws, subnet, 3)
    outcomes = AwsExecutor(aws, MemoryJournal()).execute(reboots(ids))
    assert [o.status for o in outcomes] == [OutcomeStatus.DONE] * 3
    assert aws.counter.snapshot()["ec2.RebootInstances"] == 1


def test_one_missing_instance_does_not_spoil_the_batch(aws, subnet):
    ids = launch(aws, subnet, 2)
    gone = "i-0123456789abcdef0"
    outcomes = {o.action.instance_id: o for o in AwsExecutor(aws, MemoryJournal()).execute(reboots(ids + [gone]))}
    assert outcomes[ids[0]].status is OutcomeStatus.DONE and outcomes[ids[1]].status is OutcomeStatus.DONE
    assert outcomes[gone].status is OutcomeStatus.SKIPPED and "no longer exists" in outcomes[gone].detail


def test_gate_refusal_skips_without_a_call(aws, subnet):
    ids = launch(aws, subnet, 2)
    journal = MemoryJournal()
    outcomes = AwsExecutor(aws, journal, gate=lambda action: "lease lost").execute(reboots(ids))
    assert all(o.status is OutcomeStatus.SKIPPED and o.detail == "lease lost" for o in outcomes)
    assert "ec2.RebootInstances" not in aws.counter.snapshot() and journal.begun == []


def test_journal_refusal_means_no_repeat(aws, subnet):
    ids = launch(aws, subnet, 2)
    journal = MemoryJournal(refuse={ids[0]})
    outcomes = {o.action.instance_id: o for o in AwsExecutor(aws, journal).execute(reboots(ids))}
    assert outcomes[ids[0]].status is OutcomeStatus.SKIPPED and outcomes[ids[1]].status is OutcomeStatus.DONE
    assert journal.begun == [ids[1]]


def test_stop_start_ends_running(aws, subnet):
    (instance_id,) = launch(aws, subnet, 1)
    plan = Plan(actions=(Action(instance_id, ActionKind.STOP_START, "test"),))
    (outcome,) = AwsExecutor(aws, MemoryJournal(), stop_wait_seconds=10).execute(plan)
    assert outcome.status is OutcomeStatus.DONE and outcome.detail == "stopped and started"
    state = aws.ec2.describe_instances(InstanceIds=[instance_id])["Reservations"][0]["Instances"][0]["State"]["Name"]
    assert state in ("pending", "running")
    calls = aws.counter.snapshot()
    assert calls["ec2.StopInstances"] == 1 and calls["ec2.StartInstances"] == 1


def test_replace_standalone_is_skipped(aws, subnet):
    (instance_id,) = launch(aws, subnet, 1)
    plan = Plan(actions=(Action(instance_id, ActionKind.REPLACE, "test"),))
    (outcome,) = AwsExecutor(aws, MemoryJournal()).execute(plan)
    assert outcome.status is OutcomeStatus.SKIPPED


def test_dry_run_executor_calls_nothing(aws, subnet):
    ids = launch(aws, subnet, 2)
    before = aws.counter.snapshot()
    outcomes = DryRunExecutor().execute(reboots(ids))
    assert [o.status for o in outcomes] == [OutcomeStatus.DRY_RUN] * 2
    assert aws.counter.snapshot() == before


def test_diagnostic_interrupt_replaces_the_reboot_when_configured():
    """moto lacks SendDiagnosticInterrupt, so the wire is stubbed: one call per instance, no reboot."""
    import boto3
    from botocore.stub import Stubber

    from orchestrator.aws import Clients

    clients = Clients(boto3.Session(region_name="us-east-1"))
    ec2 = clients.mutating_client("ec2")
    stub = Stubber(ec2)
    stub.add_response("send_diagnostic_interrupt", {}, {"InstanceId": "i-0000000000000000a"})
    stub.add_client_error("send_diagnostic_interrupt", "UnsupportedOperation", "not a Nitro instance", expected_params={"InstanceId": "i-0000000000000000b"})
    with stub:
        outcomes = AwsExecutor(clients, MemoryJournal(), diagnostic_interrupt=True).execute(reboots(["i-0000000000000000a", "i-0000000000000000b"]))
    stub.assert_no_pending_responses()
    by_id = {o.action.instance_id: o for o in outcomes}
    assert by_id["i-0000000000000000a"].status is OutcomeStatus.DONE and "kdump" in by_id["i-0000000000000000a"].detail
    assert by_id["i-0000000000000000b"].status is OutcomeStatus.SKIPPED

"""AWS misbehaving, through the real sweep and adapters: faults are injected at the HTTP
layer (tests/faults.py), so botocore's retry policy and orch's tenacity policy really run.

Retries are instant (``no_backoff``): the same retry decisions, no sleeping.

Pagination under moto 5.2: DescribeInstances does page (by reservation, honouring
MaxResults, despite what older notes say), ListMetrics pages at a fixed 500,
DescribeInstanceStatus does not page at all.
"""

from __future__ import annotations

import functools
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from orchestrator.aws import Clients
from orchestrator.cli import cli
from orchestrator.model import Action, ActionKind
from orchestrator.observe import inventory, metrics
from orchestrator.state.dynamodb import DynamoStore, create_table
from orchestrator.state.journal import StoreJournal
from orchestrator.state.sqlite import SqliteStore
from orchestrator.state.store import ActionStatus, StateError
from orchestrator.sweep.pipeline import Mode, SweepAborted, SweepDeps, sweep
from tests.aws.conftest import launch
from tests.aws.test_observe_adapters import put_memory
from tests.aws.test_sweep import MUTATIONS, SETTINGS
from tests.builders import ScriptedProber
from tests.faults import (
    FaultPlan,
    access_denied,
    connection_closed,
    error,
    read_timeout,
    server_error,
    throttle,
)


@pytest.fixture(autouse=True)
def instant_retries(backoffs: Any) -> Any:
    """``backoffs``, ``plan`` and ``store`` come from tests/aws/conftest.py."""
    return backoffs


def run(aws: Clients, store: Any, prober: ScriptedProber, **kw: Any) -> Any:
    return sweep(SETTINGS, SweepDeps(clients=aws, store=store, prober=prober), **kw)


def outcomes(report: Any) -> dict[str, tuple[str, str]]:
    return {a["instance_id"]: (a["outcome"], a["detail"]) for a in report.summary()["actions"]}


def read_attempts(aws: Clients) -> int:
    """Total HTTP attempts botocore makes for a read, as configured (not assumed)."""
    return int(aws.ec2.meta.config.retries["total_max_attempts"])


def assert_nothing_mutated(aws: Clients, plan: FaultPlan, store: Any) -> None:
    assert not MUTATIONS & set(aws.counter.snapshot())
    for operation in ("RebootInstances", "StopInstances", "StartInstances", "SetInstanceHealth"):
        assert plan.attempts(operation) == 0
    assert store.list_actions() == []


# -- pagination ------------------------------------------------------------------------


def test_a_throttled_inventory_page_is_retried_and_the_listing_is_complete(aws, subnet, store, plan, monkeypatch):
    """moto 5.2 does page DescribeInstances, by reservation under MaxResults; a page size of
    5 over 12 single-instance reservations gives 3 pages. Page 2 is throttled once."""
    monkeypatch.setattr(inventory, "PAGE_SIZE", 5)
    ids = [launch(aws, subnet, 1)[0] for _ in range(12)]
    plan.on("DescribeInstances", calls={2}, fault=throttle("RequestLimitExceeded"))
    last = sorted(ids)[-1]
    report = run(aws, store, ScriptedProber({last}))
    assert report.summary()["instances"] == 12
    assert outcomes(report) == {last: ("done", "RebootInstances accepted")}
    pages = [r for r in plan.log if r.operation == "DescribeInstances"]
    assert [(r.number, r.fault) for r in pages] == [(1, None), (2, "400 RequestLimitExceeded"), (3, None), (4, None)]
    tokens = [r.params.get("NextToken") for r in pages]
    assert tokens[0] is None and tokens[1] == tokens[2] and tokens[3] not in (None, tokens[1])  # page 2 retried, not restarted
    assert all(r.params["MaxResults"] == ["5"] for r in pages)
    assert report.api_calls["ec2.DescribeInstances"] == 3  # three pages, one of them sent twice


def test_a_throttled_list_metrics_page_is_retried_and_discovery_is_complete(aws, plan):
    """ListMetrics pages at 500 under moto: 520 instances give two pages; page 2 throttled."""
    now = datetime.now(timezone.utc).replace(second=0, microsecond=0)
    ids = [f"i-{n:017x}" for n in range(520)]
    aws.cloudwatch.put_metric_data(
        Namespace="CWAgent",
        MetricData=[
            {"MetricName": "mem_used_percent", "Dimensions": [{"Name": "InstanceId", "Value": i}], "Timestamp": now, "Value": 50.0}
            for i in ids
        ],
    )
    plan.on("ListMetrics", calls={2}, fault=throttle("Throttling"))
    found = metrics.discover_dimensions(aws.cloudwatch, "CWAgent", "mem_used_percent")
    assert sorted(found) == ids
    pages = [r for r in plan.log if r.operation == "ListMetrics"]
    assert [(r.number, r.fault) for r in pages] == [(1, None), (2, "400 Throttling"), (3, None)]
    assert "NextToken" not in pages[0].params and pages[1].params["NextToken"] == pages[2].params["NextToken"]
    assert aws.counter.snapshot()["cloudwatch.ListMetrics"] == 2


# -- retries exhausted: abort, act on nothing ------------------------------------------


@pytest.mark.parametrize(
    "operation, code",
    [
        ("DescribeInstances", "RequestLimitExceeded"),
        ("DescribeInstanceStatus", "RequestLimitExceeded"),
        ("ListMetrics", "Throttling"),
        ("GetMetricData", "ThrottlingException"),
    ],
)
def test_throttled_on_every_attempt_aborts_before_acting(aws, subnet, store, plan, operation, code):
    ids = launch(aws, subnet, 4)
    now = datetime.now(timezone.utc).replace(second=0, microsecond=0)
    for instance_id in ids:
        put_memory(aws, instance_id, [50.0, 51.0], now)
    plan.on(operation, fault=throttle(code))
    prober = ScriptedProber({ids[0]})
    with pytest.raises(SweepAborted) as aborted:
        run(aws, store, prober)
    message = str(aborted.value)
    assert f"{operation} was throttled ({code})" in message
    assert "sweep less often" in message
    assert plan.attempts(operation) == read_attempts(aws)
    if operation.startswith("Describe"):
        assert prober.calls == []  # inventory and status come first: nothing probed on partial facts
    assert_nothing_mutated(aws, plan, store)
    (record,) = store.list_sweeps()
    assert any(note.startswith("aborted: ") for note in record.summary["notes"])


def test_rate_exceeded_as_a_400_is_not_retried_by_botocore_and_aborts(aws, subnet, store, plan):
    """botocore's standard mode does not know RateExceeded: only its status (429) would
    make it retry. As a 400 the first answer aborts the sweep: safe, just not patient."""
    ids = launch(aws, subnet, 2)
    plan.on("DescribeInstanceStatus", calls={1}, fault=throttle("RateExceeded"))
    with pytest.raises(SweepAborted, match=r"DescribeInstanceStatus was throttled \(RateExceeded\)"):
        run(aws, store, ScriptedProber({ids[0]}))
    assert plan.attempts("DescribeInstanceStatus") == 1
    assert_nothing_mutated(aws, plan, store)


# -- 5xx -------------------------------------------------------------------------------


@pytest.mark.parametrize("status", [500, 503])
def test_a_5xx_on_status_checks_once_is_retried_and_the_sweep_heals(aws, subnet, store, plan, status):
    ids = launch(aws, subnet, 4)
    plan.on("DescribeInstanceStatus", calls={1}, fault=server_error(status))
    report = run(aws, store, ScriptedProber({ids[2]}))
    assert outcomes(report) == {ids[2]: ("done", "RebootInstances accepted")}
    assert plan.attempts("DescribeInstanceStatus") == 2
    assert report.api_calls["ec2.DescribeInstanceStatus"] == 1


def test_a_5xx_on_status_checks_every_time_aborts_before_acting(aws, subnet, store, plan):
    ids = launch(aws, subnet, 4)
    plan.on("DescribeInstanceStatus", fault=server_error(503))
    prober = ScriptedProber({ids[2]})
    with pytest.raises(SweepAborted, match="DescribeInstanceStatus failed"):
        run(aws, store, prober)
    assert plan.attempts("DescribeInstanceStatus") == read_attempts(aws)
    assert prober.calls == []
    assert_nothing_mutated(aws, plan, store)


# -- a reboot whose answer never came --------------------------------------------------


@pytest.mark.parametrize(
    "fault, reaches_server",
    [(read_timeout(), True), (connection_closed(), False)],
    ids=["read-timeout-after-ec2-ran-it", "connection-closed-before-ec2-saw-it"],
)
def test_an_unanswered_reboot_is_uncertain_re_read_and_never_repeated(aws, subnet, store, plan, fault, reaches_server):
    ids = launch(aws, subnet, 4)
    down = ids[1]
    plan.on("RebootInstances", fault=fault, reaches_server=reaches_server)
    prober = ScriptedProber({down})
    report = run(aws, store, prober)
    status, detail = outcomes(report)[down]
    assert status == "uncertain"
    assert "instance is now running" in detail and "not repeated" in detail
    assert plan.attempts("RebootInstances") == 1  # sent once at the HTTP level: no botocore retry
    assert len(plan.reached_server("RebootInstances")) == (1 if reaches_server else 0)
    calls = plan.operations()
    reboot_at = calls.index("RebootInstances")
    assert "DescribeInstances" in calls[reboot_at + 1 :]  # state re-read after the silence
    (record,) = store.list_actions(down)
    assert record.status is ActionStatus.DONE and record.detail.startswith("uncertain: ")
    assert store.get_histories([down])[down].in_flight_key == record.key

    again = run(aws, store, prober).summary()
    assert again["actions"] == []
    assert "awaits verification" in again["blocked"][0]["why"]
    assert plan.attempts("RebootInstances") == 1


def test_a_throttled_reboot_is_retried_by_tenacity_and_runs_once(aws, subnet, store, plan, backoffs):
    ids = launch(aws, subnet, 4)
    plan.on("RebootInstances", calls={1, 2}, fault=throttle("RequestLimitExceeded"))
    report = run(aws, store, ScriptedProber({ids[0]}))
    assert outcomes(report) == {ids[0]: ("done", "RebootInstances accepted")}
    assert plan.attempts("RebootInstances") == 3
    assert [r.number for r in plan.reached_server("RebootInstances")] == [3]  # refused twice, ran once
    assert len(backoffs.tenacity) == 2


# -- per-instance errors in a batch ----------------------------------------------------


def test_one_missing_instance_in_a_batched_reboot_lets_the_others_proceed(aws, subnet, store, plan):
    ids = launch(aws, subnet, 8)  # 3 of 8 down stays under the 50% circuit breaker
    down = sorted(ids[:3])
    gone = down[1]
    plan.on(
        "RebootInstances",
        when=lambda call: gone in call.instance_ids(),
        fault=error("InvalidInstanceID.NotFound", f"The instance ID '{gone}' does not exist"),
    )
    report = run(aws, store, ScriptedProber(set(down)))
    result = outcomes(report)
    assert result[down[0]] == ("done", "RebootInstances accepted")
    assert result[down[2]] == ("done", "RebootInstances accepted")
    assert result[gone][0] == "skipped" and "no longer exists (InvalidInstanceID.NotFound)" in result[gone][1]
    sent = [(r.instance_ids(), r.fault) for r in plan.log if r.operation == "RebootInstances"]
    assert sent == [
        (down, "400 InvalidInstanceID.NotFound"),  # the batch
        ([down[0]], None),
        ([gone], "400 InvalidInstanceID.NotFound"),
        ([down[2]], None),
    ]
    assert {r.status for r in store.list_actions()} == {ActionStatus.DONE, ActionStatus.SKIPPED}


def test_a_batch_refused_once_for_one_id_is_split_and_every_instance_rebooted(aws, subnet, store, plan):
    """The fault on the first batched call only: the split calls all go through."""
    ids = launch(aws, subnet, 8)  # 3 of 8 down stays under the 50% circuit breaker
    down = sorted(ids[:3])
    plan.on("RebootInstances", calls={1}, fault=error("InvalidInstanceID.NotFound", f"The instance ID '{down[0]}' does not exist"))
    report = run(aws, store, ScriptedProber(set(down)))
    assert outcomes(report) == {i: ("done", "RebootInstances accepted") for i in down}
    assert plan.attempts("RebootInstances") == 4
    assert [r.instance_ids() for r in plan.reached_server("RebootInstances")] == [[i] for i in down]


def test_incorrect_instance_state_is_skipped_with_a_reason(aws, subnet, store, plan):
    ids = launch(aws, subnet, 6)
    down = sorted(ids[:2])
    stuck = down[0]
    plan.on(
        "RebootInstances",
        when=lambda call: stuck in call.instance_ids(),
        fault=error("IncorrectInstanceState", f"The instance '{stuck}' is not in a state from which it can be rebooted."),
    )
    report = run(aws, store, ScriptedProber(set(down)))
    status, detail = outcomes(report)[stuck]
    assert status == "skipped"
    assert detail.startswith("instance not in a state that allows it (IncorrectInstanceState: ")
    assert outcomes(report)[down[1]] == ("done", "RebootInstances accepted")
    (record,) = store.list_actions(stuck)
    assert record.status is ActionStatus.SKIPPED and "IncorrectInstanceState" in record.detail


# -- access denied ---------------------------------------------------------------------


def test_access_denied_on_the_inventory_aborts_naming_the_permission(aws, subnet, store, plan):
    """AccessDenied here; EC2's own UnauthorizedOperation goes through the CLI test below."""
    ids = launch(aws, subnet, 3)
    plan.on("DescribeInstances", fault=access_denied("AccessDenied"))
    prober = ScriptedProber({ids[0]})
    with pytest.raises(SweepAborted) as aborted:
        run(aws, store, prober)
    assert "the caller lacks the IAM permission ec2:DescribeInstances" in str(aborted.value)
    assert plan.attempts("DescribeInstances") == 1  # not retried
    assert prober.calls == []
    assert_nothing_mutated(aws, plan, store)


def test_access_denied_on_the_reboot_fails_the_action_naming_the_permission(aws, subnet, store, plan):
    ids = launch(aws, subnet, 4)
    plan.on("RebootInstances", fault=access_denied("UnauthorizedOperation"))
    report = run(aws, store, ScriptedProber({ids[3]}))
    status, detail = outcomes(report)[ids[3]]
    assert status == "failed"
    assert "lacks the IAM permission ec2:RebootInstances" in detail
    assert plan.attempts("RebootInstances") == 1
    (record,) = store.list_actions(ids[3])
    assert record.status is ActionStatus.FAILED


def write_config(tmp_path: Path) -> Path:
    config = tmp_path / "orch.toml"
    config.write_text('[safety]\nlaunch_grace_minutes = 0\nmax_unhealthy = "50%"\n')
    return config


def heal_cli(tmp_path: Path) -> Any:
    args = ["heal", "--yes", "--config", str(write_config(tmp_path)), "--state", str(tmp_path / "cli.db"), "--region", "us-east-1"]
    return CliRunner().invoke(cli, args, catch_exceptions=False)


def test_cli_access_denied_exits_3_with_one_line(aws, subnet, tmp_path, monkeypatch):
    launch(aws, subnet, 2)
    plan = FaultPlan().on("DescribeInstances", fault=access_denied("UnauthorizedOperation")).install(monkeypatch)
    result = heal_cli(tmp_path)
    assert result.exit_code == 3
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "ec2:DescribeInstances" in lines[0] and "sweep aborted before acting" in lines[0]
    assert "Traceback" not in result.output
    assert plan.attempts("DescribeInstances") == 1 and plan.attempts("RebootInstances") == 0


# -- the state store unavailable: no action --------------------------------------------


class BrokenStore:
    """A store that fails on the chosen methods, as a locked or unreachable one would."""

    def __init__(self, inner: Any, broken: set[str]) -> None:
        self._inner = inner
        self._broken = broken

    def __getattr__(self, name: str) -> Any:
        if name in self._broken:

            def fail(*args: Any, **kwargs: Any) -> Any:
                raise StateError(f"{name}: database is locked")

            return fail
        return getattr(self._inner, name)


@pytest.mark.parametrize("broken", ["put_action_intent", "get_histories"])
def test_a_store_that_cannot_record_means_no_action(aws, subnet, store, plan, broken):
    ids = launch(aws, subnet, 4)
    with pytest.raises(StateError, match="database is locked"):
        run(aws, BrokenStore(store, {broken}), ScriptedProber({ids[0]}))
    assert plan.attempts("RebootInstances") == 0
    assert "ec2.RebootInstances" not in aws.counter.snapshot()
    assert store.list_actions() == []


def test_cli_store_unavailable_exits_5_and_reboots_nothing(aws, subnet, tmp_path, monkeypatch):
    ids = launch(aws, subnet, 4)
    plan = FaultPlan().install(monkeypatch)
    monkeypatch.setattr(
        "orchestrator.cli.common.open_store", lambda spec, factory=None: BrokenStore(SqliteStore(spec), {"put_action_intent"})
    )
    monkeypatch.setattr("orchestrator.cli.sweep_cmds.SweepDeps", functools.partial(SweepDeps, prober=ScriptedProber({ids[0]})))
    result = heal_cli(tmp_path)
    assert result.exit_code == 5
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "state store" in lines[0] and "nothing was acted on" in lines[0]
    assert "Traceback" not in result.output
    assert plan.attempts("DescribeInstances") >= 1 and plan.attempts("RebootInstances") == 0


# -- CloudWatch and DynamoDB throttling -------------------------------------------------


def test_a_throttled_get_metric_data_is_retried_and_memory_read(aws, subnet, store, plan):
    ids = launch(aws, subnet, 3)
    now = datetime.now(timezone.utc).replace(second=0, microsecond=0)
    put_memory(aws, ids[0], [60.0, 61.0, 62.0], now)
    plan.on("GetMetricData", calls={1}, fault=throttle("Throttling"))
    plan.on("ListMetrics", calls={1}, fault=throttle("ThrottlingException"))
    report = run(aws, store, ScriptedProber({ids[0]}), mode=Mode.SCAN)  # a suspect: its memory is read on any sweep
    memory = {f.instance.instance_id: f.memory for f in report.facts}
    assert [v for _, v in memory[ids[0]].points] == [60.0, 61.0, 62.0]
    assert plan.attempts("GetMetricData") == 2 and plan.attempts("ListMetrics") == 2
    assert report.api_calls["cloudwatch.GetMetricData"] == 1


@pytest.fixture
def dynamo(aws: Clients) -> DynamoStore:
    create_table(aws.client("dynamodb"), "orch-state")
    return DynamoStore(aws.client("dynamodb"), "orch-state", sleep=lambda _: None)


def is_intent(params: dict[str, Any]) -> bool:
    """A PutItem of an action intent (the conditional put that is orch's idempotency check)."""
    return str(params.get("Item", {}).get("pk", {}).get("S", "")).startswith("ACTION#")


class FirstIntentWrite:
    """Matches the first conditional put of an action intent only (not its retries)."""

    def __init__(self) -> None:
        self.number: int | None = None

    def __call__(self, call: Any) -> bool:
        if self.number is None and is_intent(call.params()):
            self.number = call.number
        return call.number == self.number


def test_a_throttled_state_table_is_retried_and_the_sweep_records(aws, subnet, dynamo, plan):
    ids = launch(aws, subnet, 4)
    first_intent = FirstIntentWrite()
    plan.on("PutItem", when=first_intent, fault=throttle("ProvisionedThroughputExceededException"))
    plan.on("BatchGetItem", calls={1}, fault=throttle("ThrottlingException"))
    report = run(aws, dynamo, ScriptedProber({ids[1]}))
    assert outcomes(report) == {ids[1]: ("done", "RebootInstances accepted")}
    (record,) = dynamo.list_actions(ids[1])
    assert record.status is ActionStatus.DONE
    assert [r.fault for r in plan.log if r.operation == "BatchGetItem"][:2] == ["400 ThrottlingException", None]
    assert first_intent.number is not None
    retried = [r for r in plan.log if r.operation == "PutItem" and r.number in (first_intent.number, first_intent.number + 1)]
    assert [(r.fault, is_intent(r.params)) for r in retried] == [("400 ProvisionedThroughputExceededException", True), (None, True)]


def test_a_state_table_throttled_every_time_means_no_action(aws, subnet, dynamo, plan):
    ids = launch(aws, subnet, 4)
    plan.on("PutItem", when=lambda call: is_intent(call.params()), fault=throttle("ProvisionedThroughputExceededException"))
    with pytest.raises(StateError, match=r"dynamodb://orch-state: PutItem failed: ProvisionedThroughputExceededException"):
        run(aws, dynamo, ScriptedProber({ids[1]}))
    assert plan.attempts("RebootInstances") == 0
    assert len([r for r in plan.log if r.operation == "PutItem" and r.fault]) == read_attempts(aws)


def test_a_lost_reply_to_our_own_intent_write_still_acts_once(aws, subnet, dynamo, plan):
    """DynamoDB stored the intent, the reply was lost, botocore resent the conditional put,
    which then failed on our own item. The journal recognises its sweep's intent and acts,
    once; it neither skips the heal nor leaves the intent dangling."""
    ids = launch(aws, subnet, 4)
    first_intent = FirstIntentWrite()
    plan.on("PutItem", when=first_intent, fault=read_timeout(), reaches_server=True)
    report = run(aws, dynamo, ScriptedProber({ids[1]}))
    assert outcomes(report) == {ids[1]: ("done", "RebootInstances accepted")}
    intent_puts = [r for r in plan.log if r.operation == "PutItem" and is_intent(r.params)]
    assert [(r.fault, r.reached_server) for r in intent_puts] == [("ReadTimeoutError", True), (None, True)]
    assert plan.attempts("RebootInstances") == 1
    (record,) = dynamo.list_actions(ids[1])
    assert record.status is ActionStatus.DONE and record.sweep_id == report.sweep_id
    assert dynamo.get_histories([ids[1]])[ids[1]].in_flight_key == record.key


def test_an_intent_of_another_sweep_is_still_not_repeated(aws, subnet, dynamo):
    """The other side of the rule above: the same key written by another sweep refuses."""
    ids = launch(aws, subnet, 4)
    first = run(aws, dynamo, ScriptedProber({ids[1]}))
    (record,) = dynamo.list_actions(ids[1])
    redelivered = StoreJournal(dynamo, "another-sweep", lambda: record.created_at)
    why = redelivered.begin(Action(ids[1], ActionKind.REBOOT, "test"), {})
    assert why is not None and f"by sweep {first.sweep_id} (done)" in why

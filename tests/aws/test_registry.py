"""Two stores, two healers no more: a manual orch beside a deployed healer (moto, through the CLI and the Lambda)."""

from __future__ import annotations

import functools
import json
from typing import Any

import pytest
from click.testing import CliRunner

from orchestrator.cli import cli
from orchestrator.state.dynamodb import DynamoStore, create_table
from orchestrator.sweep.pipeline import SweepDeps
from tests.aws.conftest import REGION, launch
from tests.aws.test_lambda_heal import SCHEDULED_EVENT, environ, invoke
from tests.builders import ScriptedProber
from tests.faults import FaultPlan, error

TABLE = "orch-prod-state"


def register(aws: Any, stack: str, state: str, vpc_id: str | None = None, selector: dict[str, str] | None = None) -> None:
    value = {"stack": stack, "region": REGION, "account": "123456789012", "vpc_id": vpc_id or "", "selector": selector or {"orch:managed": "true"},
             "state": state, "mode": "heal"}
    aws.client("ssm").put_parameter(Name=f"/orch/healers/{stack}", Value=json.dumps(value), Type="String")


@pytest.fixture
def deployed(aws: Any, subnet: str, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    ids = launch(aws, subnet, 4)
    create_table(aws.client("dynamodb"), TABLE)
    register(aws, "orch-prod", f"dynamodb://{TABLE}")
    monkeypatch.setattr("orchestrator.cli.sweep_cmds.SweepDeps", functools.partial(SweepDeps, prober=ScriptedProber({ids[0]})))
    monkeypatch.setenv("ORCH_SAFETY_LAUNCH_GRACE_MINUTES", "0")
    monkeypatch.setenv("ORCH_SAFETY_MAX_UNHEALTHY", "50%")
    return ids


def reboots(aws: Any) -> int:
    return aws.counter.snapshot().get("ec2.RebootInstances", 0)


def test_a_manual_heal_uses_the_deployed_healers_store_and_lease(aws, deployed, tmp_path):
    result = CliRunner().invoke(cli, ["heal", "--yes", "-o", "json"], env={"XDG_STATE_HOME": str(tmp_path)}, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "using the store of the deployed healer stack orch-prod" in result.stderr
    assert [a["instance_id"] for a in json.loads(result.stdout)["actions"]] == [deployed[0]]
    recorded = DynamoStore(aws.client("dynamodb"), TABLE).list_actions(deployed[0])
    assert [r.action.value for r in recorded] == ["reboot"]  # in the deployed store, where its Lambda looks
    assert not (tmp_path / "orch").exists()  # no local store was made beside it


def test_a_manual_heal_with_another_store_refuses_to_act_beside_it(aws, deployed, tmp_path):
    before = reboots(aws)
    result = CliRunner().invoke(cli, ["heal", "--yes", "--state", str(tmp_path / "mine.db")])
    assert result.exit_code == 4, result.output
    assert "stack orch-prod" in result.stderr and f"--state dynamodb://{TABLE}" in result.stderr and "not acting" in result.stderr
    assert reboots(aws) == before


def test_reading_beside_it_with_another_store_is_a_note_not_a_refusal(aws, deployed, tmp_path):
    result = CliRunner().invoke(cli, ["status", "--state", str(tmp_path / "mine.db")])
    assert result.exit_code == 0, result.output
    assert "through another store" in result.stderr


def test_a_stack_beside_another_stacks_healer_does_not_act(aws, deployed, tmp_path, capsys):
    """The Lambda of stack B finds stack A's healer over the same instances: it refuses, it does not heal twice."""
    other = "orch-b-state"
    create_table(aws.client("dynamodb"), other)
    before = reboots(aws)
    result = invoke(aws, SCHEDULED_EVENT, ScriptedProber({deployed[0]}), environ(ORCH_STATE=f"dynamodb://{other}", ORCH_STACK="orch-b"))
    assert result["skipped"].startswith("another deployed healer") and result["actions"] == []
    assert reboots(aws) == before


def test_its_own_registration_does_not_stop_a_stack(aws, deployed, tmp_path):
    result = invoke(aws, SCHEDULED_EVENT, ScriptedProber({deployed[0]}), environ(ORCH_STATE=f"dynamodb://{TABLE}", ORCH_STACK="orch-prod"))
    assert "skipped" not in result and [a["instance_id"] for a in result["actions"]] == [deployed[0]]


def test_a_registry_that_cannot_be_read_stops_a_manual_heal_without_a_named_store(aws, deployed, tmp_path, monkeypatch):
    registry_only = lambda call: str(call.params().get("Path", "")).startswith("/orch/healers")  # noqa: E731 - not the fleet's lease
    FaultPlan().on("GetParametersByPath", fault=error("AccessDeniedException", "not allowed"), when=registry_only).install(monkeypatch)
    before = reboots(aws)
    result = CliRunner().invoke(cli, ["heal", "--yes"], env={"XDG_STATE_HOME": str(tmp_path)})
    assert result.exit_code == 3 and "could not be read" in result.stderr and "--state" in result.stderr, result.output
    assert reboots(aws) == before
    named = CliRunner().invoke(cli, ["heal", "--yes", "--state", str(tmp_path / "mine.db")])
    assert named.exit_code == 0, named.output  # a store named by the user: its choice, orch acts

"""`orch status|history|scan --regions ... --accounts ... --role-arn ...` over moto: two regions, two accounts.

Moto keeps one backend per account: credentials from sts:AssumeRole into account B
reach B's resources (moto's multi-account docs), so a row naming B with B's instance
count proves the role was assumed and the rows were not mixed up.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from typing import Any, Iterator

import boto3
import pytest
from click.testing import CliRunner
from moto import mock_aws

from orchestrator.aws import Clients
from orchestrator.cli import cli
from orchestrator.estate import accounts as estate
from orchestrator.model import ActionKind
from orchestrator.state.dynamodb import DynamoStore, create_table
from orchestrator.state.store import ActionRecord, ActionStatus
from tests.faults import FaultPlan, access_denied

OWN = "123456789012"  # moto's default account
OTHER = "222222222222"
REGIONS = ("us-east-1", "eu-west-1")
ROLE = "arn:aws:iam::{account}:role/orch-operator"
T0 = datetime(2026, 12, 1, 12, 0, tzinfo=timezone.utc)


def clients_in(account: str, region: str) -> Clients:
    if account == OWN:
        return Clients(boto3.Session(region_name=region))
    creds = boto3.client("sts", region_name=region).assume_role(RoleArn=ROLE.format(account=account), RoleSessionName="setup")["Credentials"]
    return Clients(boto3.Session(creds["AccessKeyId"], creds["SecretAccessKey"], creds["SessionToken"], region_name=region))


def build_fleet(account: str, region: str, size: int, octet: int) -> tuple[str, list[str]]:
    """A loopback VPC with ``size`` managed instances, a state table and the healer's registration."""
    aws = clients_in(account, region)
    vpc = aws.ec2.create_vpc(CidrBlock=f"127.{octet}.0.0/16")["Vpc"]["VpcId"]
    subnet = aws.ec2.create_subnet(VpcId=vpc, CidrBlock=f"127.{octet}.1.0/24", AvailabilityZone=f"{region}a")["Subnet"]["SubnetId"]
    ids = [i["InstanceId"] for i in aws.ec2.run_instances(
        ImageId="ami-12c6146b", MinCount=size, MaxCount=size, InstanceType="t3.micro", SubnetId=subnet,
        TagSpecifications=[{"ResourceType": "instance", "Tags": [{"Key": "orch:managed", "Value": "true"}]}],
    )["Instances"]]
    table = f"orch-{region}-state"
    create_table(aws.client("dynamodb"), table, wait_delay_s=0)
    registration = {"stack": f"orch-{region}", "region": region, "account": account, "vpc_id": vpc, "selector": {"orch:managed": "true"},
                    "state": f"dynamodb://{table}", "mode": "heal"}
    aws.client("ssm").put_parameter(Name=f"/orch/healers/orch-{region}", Value=json.dumps(registration), Type="String")
    return vpc, ids


def record_reboot(account: str, region: str, instance_id: str, minutes: int, reason: str = "unreachable") -> None:
    aws = clients_in(account, region)
    store = DynamoStore(aws.client("dynamodb"), f"orch-{region}-state")
    at = T0 + timedelta(minutes=minutes)
    store.put_action_intent(ActionRecord(f"{instance_id}#reboot#{minutes}", "sweep-1", instance_id, ActionKind.REBOOT, reason, ActionStatus.INTENT, at, at))
    store.update_action(f"{instance_id}#reboot#{minutes}", ActionStatus.DONE, at)


@pytest.fixture
def estate_fleet(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[tuple[str, str], tuple[str, list[str]]]]:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("MOTO_EC2_LOAD_DEFAULT_AMIS", "false")  # four account-regions, none describes an image
    with mock_aws():
        fleets = {}
        for n, (account, region, size) in enumerate([(OWN, "us-east-1", 2), (OWN, "eu-west-1", 3), (OTHER, "us-east-1", 4), (OTHER, "eu-west-1", 1)]):
            fleets[(account, region)] = build_fleet(account, region, size, 20 + n)
        yield fleets


def run(*args: str, env: dict[str, str] | None = None) -> Any:
    return CliRunner().invoke(cli, list(args), env=env, catch_exceptions=False)


# Nothing listens on the fleets' loopback addresses: each probe is refused at once, and the
# prober's retries spread over the default 20 s window would only make the test wait.
NO_RETRY_WAIT = {"ORCH_PROBE_RETRY_WINDOW": "0"}


def test_status_names_account_region_and_vpc_per_row_in_a_fixed_order(estate_fleet) -> None:
    result = run("status", "--regions", ",".join(REGIONS), "--accounts", f"{OWN},{OTHER}", "--role-arn", ROLE, "-o", "json")
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
    assert [(r["account"], r["region"], r["vpc_id"], r["instances"]) for r in rows] == [
        (account, region, estate_fleet[(account, region)][0], len(estate_fleet[(account, region)][1]))
        for account in (OWN, OTHER) for region in REGIONS
    ]
    assert {r["state"] for r in rows} == {f"dynamodb://orch-{region}-state" for region in REGIONS}
    assert all(r["error"] is None and r["lease"] == "free" for r in rows)


def test_history_merges_every_regions_actions_newest_first(estate_fleet) -> None:
    record_reboot(OWN, "eu-west-1", estate_fleet[(OWN, "eu-west-1")][1][0], minutes=1)
    record_reboot(OTHER, "us-east-1", estate_fleet[(OTHER, "us-east-1")][1][2], minutes=3)
    record_reboot(OTHER, "eu-west-1", estate_fleet[(OTHER, "eu-west-1")][1][0], minutes=2)
    result = run("history", "--regions", ",".join(REGIONS), "--accounts", f"{OWN},{OTHER}", "--role-arn", ROLE, "--parallel", "1", "-o", "json")
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
    assert [(r["account"], r["region"], r["instance_id"]) for r in rows] == [
        (OTHER, "us-east-1", estate_fleet[(OTHER, "us-east-1")][1][2]),
        (OTHER, "eu-west-1", estate_fleet[(OTHER, "eu-west-1")][1][0]),
        (OWN, "eu-west-1", estate_fleet[(OWN, "eu-west-1")][1][0]),
    ]
    assert rows[0]["vpc_id"] == estate_fleet[(OTHER, "us-east-1")][0]


def test_one_region_denied_is_a_row_saying_so_and_exit_3(estate_fleet, monkeypatch) -> None:
    plan = FaultPlan().on("GetParametersByPath", fault=access_denied(), when=lambda call: "eu-west-1" in call.request.url)
    plan.install(monkeypatch)
    result = CliRunner().invoke(cli, ["status", "--regions", ",".join(REGIONS), "-o", "json"])
    assert result.exit_code == 3, result.output
    assert "Traceback" not in result.output
    rows = json.loads(result.stdout)
    assert [(r["account"], r["region"]) for r in rows] == [(OWN, "us-east-1"), (OWN, "eu-west-1")]
    assert rows[0]["error"] is None and rows[0]["instances"] == 2
    assert "access denied" in rows[1]["error"] and "ssm:GetParametersByPath" in rows[1]["error"]
    assert "could not be read" in result.stderr


def test_the_table_shows_the_failed_region_too(estate_fleet, monkeypatch) -> None:
    plan = FaultPlan().on("GetParametersByPath", fault=access_denied(), when=lambda call: "eu-west-1" in call.request.url)
    plan.install(monkeypatch)
    result = CliRunner().invoke(cli, ["status", "--regions", ",".join(REGIONS), "--no-color"], env={"COLUMNS": "200"})
    assert result.exit_code == 3
    lines = [line for line in result.stdout.splitlines() if "eu-west-1" in line]
    assert lines and "error" in lines[0]


def test_scan_across_regions_counts_each_vpcs_verdicts(estate_fleet) -> None:
    result = run("scan", "--regions", ",".join(REGIONS), "--accounts", f"{OWN},{OTHER}", "--role-arn", ROLE, "-o", "json", env=NO_RETRY_WAIT)
    rows = json.loads(result.stdout)
    assert [(r["account"], r["region"], r["vpc_id"], r["instances"]) for r in rows] == [
        (account, region, estate_fleet[(account, region)][0], len(estate_fleet[(account, region)][1]))
        for account in (OWN, OTHER) for region in REGIONS
    ]
    # Nothing listens on these loopback addresses: every box is unreachable by SSH, and the exit says so.
    assert all(r["healthy"] + sum(r["not_healthy"].values()) == r["instances"] for r in rows)
    assert result.exit_code == (1 if any(r["not_healthy"] for r in rows) else 0)
    # The scan recorded nothing in the healers' tables.
    assert DynamoStore(clients_in(OTHER, "us-east-1").client("dynamodb"), "orch-us-east-1-state").list_sweeps(1) == []


def test_accounts_without_a_role_template_is_a_usage_error(estate_fleet) -> None:
    result = CliRunner().invoke(cli, ["status", "--regions", "us-east-1", "--accounts", OTHER])
    assert result.exit_code == 2 and "--role-arn" in result.stderr
    result = CliRunner().invoke(cli, ["status", "--regions", "us-east-1", "--accounts", "12345"])
    assert result.exit_code == 2 and "12-digit" in result.stderr


def test_fan_out_keeps_the_order_asked_and_turns_failures_into_outcomes() -> None:
    where = estate.places(["r-1", "r-2", "r-3"], [OWN, OTHER])
    assert [(p.account, p.region) for p in where][:3] == [(OWN, "r-1"), (OWN, "r-2"), (OWN, "r-3")]

    def factory(place: estate.Place) -> Any:
        if place.region == "r-2":
            from orchestrator.aws import AwsError

            raise AwsError(f"endpoint for {place.region} did not answer")
        return FakeClients(place.account)

    outcomes = estate.fan_out(where, lambda place, clients: f"{place.account}/{place.region}", factory, parallel=3)
    assert [(o.place.region, o.value, o.error) for o in outcomes] == [
        ("r-1", f"{OWN}/r-1", None), ("r-2", None, "endpoint for r-2 did not answer"), ("r-3", f"{OWN}/r-3", None),
        ("r-1", f"{OTHER}/r-1", None), ("r-2", None, "endpoint for r-2 did not answer"), ("r-3", f"{OTHER}/r-3", None),
    ]


class FakeClients:
    def __init__(self, account: str) -> None:
        self.account = account

    def client(self, service: str) -> Any:
        assert service == "sts"
        return type("Sts", (), {"get_caller_identity": lambda _self: {"Account": self.account}})()


def test_a_configured_vpc_filters_only_its_own_region(estate_fleet, tmp_path) -> None:
    """`orch init` writes its region's VPC; --regions must still find the other regions' healers."""
    home_vpc = estate_fleet[(OWN, "us-east-1")][0]
    config = tmp_path / "orch.toml"
    config.write_text(f'region = "us-east-1"\nvpc_id = "{home_vpc}"\n')
    result = run("status", "--config", str(config), "--regions", ",".join(REGIONS), "-o", "json")
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
    assert [(r["region"], r["vpc_id"]) for r in rows] == [("us-east-1", home_vpc), ("eu-west-1", estate_fleet[(OWN, "eu-west-1")][0])]
    # In its own region the VPC still filters: another healer there, in another VPC, is not shown.
    aws = clients_in(OWN, "us-east-1")
    other = {"stack": "orch-other", "region": "us-east-1", "account": OWN, "vpc_id": "vpc-0ther", "selector": {"orch:managed": "true"},
             "state": "dynamodb://orch-us-east-1-state", "mode": "heal"}
    aws.client("ssm").put_parameter(Name="/orch/healers/orch-other", Value=json.dumps(other), Type="String")
    rows = json.loads(run("status", "--config", str(config), "--regions", "us-east-1", "-o", "json").stdout)
    assert [r["vpc_id"] for r in rows] == [home_vpc]

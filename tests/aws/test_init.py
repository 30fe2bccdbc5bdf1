"""`orch init` against moto: each way to name a fleet, the VPC rule, the errors, and what it never does."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from orchestrator.cli import cli
from orchestrator.config import Settings
from orchestrator.onboard import discover
from tests.aws.conftest import REGION, launch
from tests.faults import FaultPlan


def orch(config: Path, *args: str) -> Result:
    return CliRunner().invoke(cli, ["init", "--region", REGION, "--config", str(config), *args], catch_exceptions=False)


def tags_of(aws, instance_id: str) -> dict[str, str]:
    reply = aws.ec2.describe_instances(InstanceIds=[instance_id])
    return {t["Key"]: t["Value"] for t in reply["Reservations"][0]["Instances"][0].get("Tags", [])}


def resources(record) -> list[str]:
    """CreateTags' ``ResourceId.N`` parameters."""
    return [v[0] for k, v in sorted(record.params.items()) if k.startswith("ResourceId.")]


@pytest.fixture
def calls(monkeypatch) -> FaultPlan:
    return FaultPlan().install(monkeypatch)


def test_by_existing_tag_with_instance_ids_filter_and_state_rule(aws, subnet, tmp_path, calls):
    web = launch(aws, subnet, 3, tags={"app": "web"})
    other = launch(aws, subnet, 1, tags={"app": "db"})
    aws.ec2.terminate_instances(InstanceIds=[web[2]])
    result = orch(tmp_path / "c.toml", "--tag", "app=web", "--yes", "-o", "json")
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert sorted(document["tagged"]) == sorted(web[:2])
    assert [e["instance_id"] for e in document["excluded"]] == [web[2]]
    assert [u["instance_id"] for u in document["unmanaged"]] == other
    assert tags_of(aws, other[0]) == {"app": "db"}  # never tagged by accident
    [create] = [r for r in calls.log if r.operation == "CreateTags"]
    assert sorted(resources(create)) == sorted(web[:2])


def test_by_auto_scaling_group_tags_members_and_propagates_to_replacements(aws, subnet, tmp_path):
    aws.ec2.create_launch_template(LaunchTemplateName="crawler-lt", LaunchTemplateData={"ImageId": "ami-12c6146b", "InstanceType": "t3.micro"})
    aws.autoscaling.create_auto_scaling_group(
        AutoScalingGroupName="crawlers", LaunchTemplate={"LaunchTemplateName": "crawler-lt"}, MinSize=2, MaxSize=2, VPCZoneIdentifier=subnet
    )
    members = [i["InstanceId"] for i in aws.autoscaling.describe_auto_scaling_groups()["AutoScalingGroups"][0]["Instances"]]
    document = json.loads(orch(tmp_path / "c.toml", "--asg", "crawlers", "--yes", "-o", "json").stdout)
    assert sorted(document["tagged"]) == sorted(members) and document["groups_to_tag"] == ["crawlers"]
    group_tags = aws.autoscaling.describe_auto_scaling_groups()["AutoScalingGroups"][0]["Tags"]
    assert [(t["Key"], t["Value"], t["PropagateAtLaunch"]) for t in group_tags] == [("orch:managed", "true", True)]
    again = json.loads(orch(tmp_path / "c.toml", "--asg", "crawlers", "--yes", "-o", "json").stdout)
    assert again["groups_to_tag"] == [] and again["to_tag"] == []


def test_a_group_that_does_not_exist_is_one_line(aws, subnet, tmp_path):
    result = orch(tmp_path / "c.toml", "--asg", "nope", "--yes")
    assert result.exit_code == 2 and "no Auto Scaling group named nope" in result.output
    assert not (tmp_path / "c.toml").exists()


def test_explicit_ids_and_an_id_that_does_not_exist(aws, subnet, tmp_path):
    ids = launch(aws, subnet, 2, tags={})
    assert orch(tmp_path / "c.toml", "--instance-ids", ids[0], "--yes").exit_code == 0
    assert tags_of(aws, ids[0]) == {"orch:managed": "true"} and tags_of(aws, ids[1]) == {}
    missing = orch(tmp_path / "c.toml", "--instance-ids", f"{ids[1]},i-0123456789abcdef0", "--yes")
    assert missing.exit_code == 2 and "no instance i-0123456789abcdef0" in missing.output
    assert tags_of(aws, ids[1]) == {}  # nothing tagged on partial facts


def test_matches_in_two_vpcs_off_a_terminal_need_vpc_id(aws, subnet, tmp_path, calls):
    vpc_b = aws.ec2.create_vpc(CidrBlock="127.30.0.0/16")["Vpc"]["VpcId"]
    subnet_b = aws.ec2.create_subnet(VpcId=vpc_b, CidrBlock="127.30.1.0/24")["Subnet"]["SubnetId"]
    a = launch(aws, subnet, 1, tags={"app": "web"})
    b = launch(aws, subnet_b, 1, tags={"app": "web"})
    refused = orch(tmp_path / "c.toml", "--tag", "app=web", "--yes")
    assert refused.exit_code == 2 and "pass --vpc-id" in refused.output and "2 VPCs" in refused.output
    assert not [r for r in calls.log if r.operation == "CreateTags"]
    chosen = json.loads(orch(tmp_path / "c.toml", "--tag", "app=web", "--vpc-id", vpc_b, "--yes", "-o", "json").stdout)
    assert chosen["tagged"] == b and [e["instance_id"] for e in chosen["excluded"]] == a
    assert f'vpc_id = "{vpc_b}"' in (tmp_path / "c.toml").read_text()


def test_nothing_matched_exits_1_and_writes_nothing(aws, subnet, tmp_path):
    launch(aws, subnet, 1, tags={"Name": "db-1"})
    result = orch(tmp_path / "c.toml", "--name-pattern", "web-*", "--yes")
    assert result.exit_code == 1 and "no running or stopped instance matches Name matching web-*" in result.output
    assert not (tmp_path / "c.toml").exists()


def test_no_way_given_off_a_terminal_is_a_usage_error(aws, tmp_path):
    result = orch(tmp_path / "c.toml")
    assert result.exit_code == 2 and "--name-pattern" in result.output
    both = orch(tmp_path / "c.toml", "--tag", "a=b", "--name-pattern", "x*")
    assert both.exit_code == 2 and "not several" in both.output


def test_the_existing_configs_other_settings_are_kept(aws, subnet, tmp_path):
    config = tmp_path / "c.toml"
    # Nothing listens on port 2200: a retry window of 0 spares the scan below the
    # prober's 20 s of spacing between refused attempts.
    config.write_text('[probe]\nport = 2200\nretry_window = 0\n')
    launch(aws, subnet, 1, tags={"Name": "web-1"})
    assert orch(config, "--name-pattern", "web-*", "--yes").exit_code == 0
    text = config.read_text()
    assert "[probe]\nport = 2200\nretry_window = 0" in text and 'region = "us-east-1"' in text
    # and a later command reads it: the selector and the probe port come from the file
    status = CliRunner().invoke(cli, ["--config", str(config), "scan", "-o", "json", "--state", str(tmp_path / "s.db")])
    assert json.loads(status.stdout)["instances"] == 1


def test_create_tags_is_batched(aws, subnet, monkeypatch):
    monkeypatch.setattr(discover, "TAG_BATCH", 2)
    ids = launch(aws, subnet, 5, tags={})
    calls = FaultPlan()
    calls.attach(aws.mutating_client("ec2"))
    assert discover.tag_instances(aws.mutating_client("ec2"), ids, {"orch:managed": "true"}) == 3
    assert [len(resources(r)) for r in calls.log if r.operation == "CreateTags"] == [2, 2, 1]


def test_every_call_init_makes_is_declared(aws, subnet, tmp_path, calls):
    from orchestrator.iam import permissions

    aws.ec2.create_launch_template(LaunchTemplateName="crawler-lt", LaunchTemplateData={"ImageId": "ami-12c6146b"})
    aws.autoscaling.create_auto_scaling_group(
        AutoScalingGroupName="crawlers", LaunchTemplate={"LaunchTemplateName": "crawler-lt"}, MinSize=1, MaxSize=1, VPCZoneIdentifier=subnet
    )
    calls.log.clear()
    assert orch(tmp_path / "c.toml", "--asg", "crawlers", "--yes").exit_code == 0
    made = {f"{r.service.replace('-', '')}:{r.operation}" for r in calls.log}
    assert {"ec2:CreateTags", "autoscaling:CreateOrUpdateTags", "ec2:DescribeInstances"} <= made
    assert made <= permissions.INIT, made - permissions.INIT
    # onboarding is a person's job: the stack's role never gets its mutations
    assert not {"ec2:CreateTags", "autoscaling:CreateOrUpdateTags"} & permissions.for_settings(Settings())
    # the role writes parameters only for the fleet's lease, never the agent's configuration
    from orchestrator.iam import policy as iam_policy

    made_policy = iam_policy.policy_for(["heal"], Settings(), region="us-east-1").document
    writes = [st for st in made_policy["Statement"] if "ssm:PutParameter" in st["Action"]]
    assert writes and all(r.endswith(":parameter/orch/lease/*") for st in writes for r in iam_policy._as_list(st["Resource"]))

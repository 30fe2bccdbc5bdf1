"""`orch deploy --stack-set`: moto for what it runs, botocore Stubber with AWS's documented shapes for what it does not.

Moto 5.2.5 creates stack sets and stack instances (self-managed: a real stack per
account and region, from the template; service-managed: for the accounts of the OUs
in its Organizations backend), lists them and their operations. It ignores
OperationPreferences, AutoDeployment and ManagedExecution, finishes every operation
at once as SUCCEEDED, and takes CreateStackInstances' ParameterOverrides as the whole
parameter list instead of overrides on the stack set's own. So the operation wait
(RUNNING/QUEUED, then FAILED with per-instance reasons) and the exact request shapes
are tested with a Stubber.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber
from click.testing import CliRunner

from orchestrator.cli import cli
from orchestrator.deploy import stack as deploy
from orchestrator.deploy import stackset, stackset_aws
from tests.aws.test_deploy import code_zip, endpoint, moto_endpoint  # noqa: F401  (fixtures)

pytestmark = pytest.mark.filterwarnings("ignore:.*not supported by moto's CloudFormation")
HOME = "us-east-1"
REGIONS = ("us-east-1", "eu-west-1")
A, B = "111111111111", "222222222222"


@pytest.fixture(autouse=True)
def overrides_as_aws_documents(monkeypatch: pytest.MonkeyPatch) -> None:
    """Two moto quirks put right. ParameterOverrides: moto takes them as the instance's whole parameter list; AWS applies them over the stack set's.

    Patched to AWS's documented behaviour (CreateStackInstances: "the stack set
    parameters ... override") so the stacks moto builds get every parameter.
    """
    from moto.cloudformation.models import StackSet

    original = StackSet.create_stack_instances

    def merged(self: Any, accounts: Any, regions: Any, deployment_targets: Any, parameters: list[dict[str, Any]]) -> str:
        given = {p["ParameterKey"]: p["ParameterValue"] for p in parameters or []}
        whole = [{"ParameterKey": k, "ParameterValue": v} for k, v in {**self.parameters, **given}.items()]
        operation = original(self, accounts, regions, deployment_targets, whole)
        for instance in self.instances.stack_instances:  # DescribeStackInstance gives the overrides, as AWS does
            if instance.account_id in (accounts or []) and instance.region_name in regions:
                instance.parameters = list(parameters or [])
        return operation

    monkeypatch.setattr(StackSet, "create_stack_instances", merged)

    # Moto names a self-managed instance's stack "StackSet:NAME", and the colon reaches
    # names derived from it (an SNS topic's) that refuse it; AWS names it StackSet-NAME-ID.
    from moto.cloudformation.models import CloudFormationBackend

    create_stack = CloudFormationBackend.create_stack

    def named_as_aws_does(self: Any, name: str, *args: Any, **kwargs: Any) -> Any:
        return create_stack(self, name.replace("StackSet:", "StackSet-"), *args, **kwargs)

    monkeypatch.setattr(CloudFormationBackend, "create_stack", named_as_aws_does)


@pytest.fixture
def buckets(endpoint: str) -> None:  # noqa: F811
    for region in REGIONS:
        s3 = boto3.client("s3", region_name=region)
        name = f"orch-artifacts-{region}"
        if region == "us-east-1":
            s3.create_bucket(Bucket=name)
        else:
            s3.create_bucket(Bucket=name, CreateBucketConfiguration={"LocationConstraint": region})


def instance_args() -> list[str]:
    args = ["--parameter", "VpcCidr=127.20.0.0/16"]
    for n, (account, region) in enumerate((a, r) for a in (A, B) for r in REGIONS):
        args += ["--instance-parameter", f"{account}:{region}:VpcId=vpc-{n:08x}", "--instance-parameter", f"{account}:{region}:SubnetIds=subnet-{n:08x}"]
    return args


def orch(*args: str) -> Any:
    return CliRunner().invoke(cli, [*args, "--region", HOME], catch_exceptions=False)


def stack_set_args(code_zip: Path, *extra: str) -> list[str]:  # noqa: F811
    return ["deploy", "--stack-set", "orch-estate", "--regions", ",".join(REGIONS), "--accounts", f"{A},{B}",
            "--bucket", "orch-artifacts-{region}", "--zip", str(code_zip), *instance_args(), *extra]


def test_dry_run_shows_every_instance_and_its_offset_and_creates_nothing(buckets, code_zip) -> None:  # noqa: F811
    result = orch(*stack_set_args(code_zip, "--dry-run", "-o", "json"))
    assert result.exit_code == 0, result.output
    planned = json.loads(result.stdout)
    assert planned["dry_run"] is True and planned["action"] == "create" and planned["permission_model"] == "SELF_MANAGED"
    groups = planned["create_stack_instances"]
    assert sorted((g["region"], tuple(g["targets"])) for g in groups) == sorted((r, (a,)) for a in (A, B) for r in REGIONS)
    for g in groups:
        overrides = g["parameter_overrides"]
        (account,) = g["targets"]
        assert overrides["ScheduleOffsetMinutes"] == str(stackset.schedule_offset(account, g["region"], overrides["VpcId"], 5))
    assert planned["code_buckets"] == {r: f"orch-artifacts-{r}" for r in REGIONS}
    assert planned["operation_preferences"]["RegionConcurrencyType"] == "PARALLEL"
    cfn = boto3.client("cloudformation", region_name=HOME)
    assert cfn.list_stack_sets()["Summaries"] == []
    for region in REGIONS:
        assert boto3.client("s3", region_name=region).list_objects_v2(Bucket=f"orch-artifacts-{region}").get("KeyCount") == 0


def test_deploy_creates_the_stack_set_and_an_instance_per_account_and_region(buckets, code_zip) -> None:  # noqa: F811
    result = orch(*stack_set_args(code_zip, "-o", "json"))
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert sorted((i["Account"], i["Region"]) for i in document["stack_instances"]) == sorted((a, r) for a in (A, B) for r in REGIONS)
    assert all(op["status"] == "SUCCEEDED" for op in document["operations"])
    for region in REGIONS:  # the code went to each region's bucket
        keys = [o["Key"] for o in boto3.client("s3", region_name=region).list_objects_v2(Bucket=f"orch-artifacts-{region}")["Contents"]]
        assert len(keys) == 1 and keys[0].startswith(deploy.CODE_PREFIX)
    cfn = boto3.client("cloudformation", region_name=HOME)
    summary = cfn.describe_stack_set(StackSetName="orch-estate")["StackSet"]
    assert summary["Status"] == "ACTIVE"
    # Each account's stack runs its sweep at its own minute (moto builds the stacks: read one in account B).
    creds = boto3.client("sts", region_name=HOME).assume_role(RoleArn=f"arn:aws:iam::{B}:role/x", RoleSessionName="test")["Credentials"]
    in_b = boto3.Session(creds["AccessKeyId"], creds["SecretAccessKey"], creds["SessionToken"], region_name="eu-west-1")
    (stack,) = in_b.client("cloudformation").describe_stacks()["Stacks"]
    parameters = {p["ParameterKey"]: p["ParameterValue"] for p in stack["Parameters"]}
    offset = stackset.schedule_offset(B, "eu-west-1", "vpc-00000003", 5)
    assert (parameters["VpcId"], parameters["ScheduleOffsetMinutes"], parameters["CodeBucket"]) == ("vpc-00000003", str(offset), "orch-artifacts-eu-west-1")
    (rule,) = in_b.client("events").list_rules()["Rules"]
    assert rule["ScheduleExpression"] == (f"cron({offset}/5 * * * ? *)" if offset else "rate(5 minutes)")
    # A redeploy with one more region creates only the missing pairs.
    more = orch(*stack_set_args(code_zip, "--dry-run", "-o", "json"))
    assert {(x["account"], x["region"]) for x in json.loads(more.stdout)["already_deployed"]} == {(a, r) for a in (A, B) for r in REGIONS}
    assert json.loads(more.stdout)["create_stack_instances"] == []


def test_the_table_shows_each_stack_instances_status(buckets, code_zip) -> None:  # noqa: F811
    result = CliRunner().invoke(cli, [*stack_set_args(code_zip), "--region", HOME, "--no-color"], env={"COLUMNS": "120"})
    assert result.exit_code == 0, result.output
    rows = [line for line in result.stdout.splitlines() if A in line or B in line]
    assert sum("CURRENT" in line for line in rows) == 4


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--ou", "ou-abcd-12345678"], "exactly one of --accounts"),
        (["--execution-role-name", "x", "--instance-parameter", "nope"], "ACCOUNT:REGION:KEY=VALUE"),
        (["--parameter", "ScheduleOffsetMinutes=3"], "chosen by orch"),
    ],
)
def test_bad_requests_are_one_line_and_change_nothing(buckets, code_zip, extra, message) -> None:  # noqa: F811
    result = CliRunner().invoke(cli, [*stack_set_args(code_zip, *extra), "--region", HOME])
    assert result.exit_code == 2, result.output
    assert message in result.stderr and "Traceback" not in result.output
    assert boto3.client("cloudformation", region_name=HOME).list_stack_sets()["Summaries"] == []


def test_one_bucket_for_many_regions_is_refused(buckets, code_zip) -> None:  # noqa: F811
    args = stack_set_args(code_zip)
    args[args.index("orch-artifacts-{region}")] = "orch-artifacts"
    result = CliRunner().invoke(cli, [*args, "--region", HOME])
    assert result.exit_code == 2 and "{region}" in result.stderr


def test_a_missing_vpc_for_one_instance_is_named(buckets, code_zip) -> None:  # noqa: F811
    args = stack_set_args(code_zip)
    i = args.index(f"{B}:eu-west-1:VpcId=vpc-00000003")
    del args[i - 1:i + 1]
    result = CliRunner().invoke(cli, [*args, "--region", HOME])
    assert result.exit_code == 2 and f"{B} eu-west-1 lacks parameter(s) VpcId" in result.stderr


# -- what moto does not do: Stubber with AWS's documented shapes ------------------------------


def request(**kw: Any) -> stackset.Request:
    base: dict[str, Any] = {"name": "orch-estate", "body": "{}", "parameters": {"VpcCidr": "127.20.0.0/16", "VpcId": "vpc-1", "SubnetIds": "s-1"},
                            "regions": REGIONS, "accounts": (A,)}
    return stackset.Request(**{**base, **kw})


DECLARED = {"VpcId": False, "VpcCidr": False, "SubnetIds": False, "ScheduleMinutes": True, "ScheduleOffsetMinutes": True}


def test_service_managed_sends_organizations_targets_and_auto_deployment() -> None:
    cfn = boto3.client("cloudformation", region_name=HOME, aws_access_key_id="x", aws_secret_access_key="x")
    planned = stackset.plan(request(accounts=(), ous=("ou-abcd-12345678",)), DECLARED, None, {})
    stub = Stubber(cfn)
    create = dict(planned.stack_set_call)
    assert create["PermissionModel"] == "SERVICE_MANAGED" and create["AutoDeployment"] == {"Enabled": True, "RetainStacksOnAccountRemoval": False}
    assert create["ManagedExecution"] == {"Active": True}
    stub.add_response("create_stack_set", {"StackSetId": "orch-estate:1"}, create)
    for group in planned.groups:
        call = group.as_api(True, planned.preferences, "orch-estate")
        assert call["DeploymentTargets"] == {"OrganizationalUnitIds": ["ou-abcd-12345678"]} and "Accounts" not in call
        stub.add_response("create_stack_instances", {"OperationId": f"op-{group.region}"}, call)
    for group in planned.groups:
        stub.add_response("describe_stack_set_operation", {"StackSetOperation": {"OperationId": f"op-{group.region}", "Action": "CREATE", "Status": "QUEUED"}})
        stub.add_response("describe_stack_set_operation", {"StackSetOperation": {"OperationId": f"op-{group.region}", "Action": "CREATE", "Status": "SUCCEEDED"}})
    stub.add_response("list_stack_instances", {"Summaries": [
        {"StackSetId": "orch-estate:1", "Region": r, "Account": "333333333333", "Status": "CURRENT", "OrganizationalUnitId": "ou-abcd-12345678",
         "StackInstanceStatus": {"DetailedStatus": "SUCCEEDED"}} for r in REGIONS]})
    said: list[str] = []
    with stub:
        outcome = stackset_aws.run(cfn, planned, said.append, poll_seconds=0, sleep=lambda s: None)
    stub.assert_no_pending_responses()
    assert [s for _, _, s in outcome.operations] == ["SUCCEEDED", "SUCCEEDED"]
    assert any("QUEUED" in line for line in said) and any("SUCCEEDED" in line for line in said)
    assert [i["Region"] for i in outcome.instances] == ["eu-west-1", "us-east-1"]


def test_a_failed_operation_names_the_failed_account_and_region() -> None:
    cfn = boto3.client("cloudformation", region_name=HOME, aws_access_key_id="x", aws_secret_access_key="x")
    planned = stackset.plan(request(regions=("us-east-1",)), DECLARED, {"PermissionModel": "SELF_MANAGED", "Status": "ACTIVE"}, {})
    assert planned.stack_set_action == "update"
    assert planned.stack_set_call["OperationPreferences"]["FailureTolerancePercentage"] == 10
    stub = Stubber(cfn)
    stub.add_response("update_stack_set", {"OperationId": "op-update"})
    stub.add_response("describe_stack_set_operation", {"StackSetOperation": {"OperationId": "op-update", "Action": "UPDATE", "Status": "RUNNING"}})
    stub.add_response("describe_stack_set_operation", {"StackSetOperation": {"OperationId": "op-update", "Action": "UPDATE", "Status": "SUCCEEDED"}})
    stub.add_response("create_stack_instances", {"OperationId": "op-create"})
    stub.add_response("describe_stack_set_operation", {"StackSetOperation": {"OperationId": "op-create", "Action": "CREATE", "Status": "FAILED"}})
    stub.add_response("list_stack_set_operation_results", {"Summaries": [
        {"Account": A, "Region": "us-east-1", "Status": "FAILED", "StatusReason": "ResourceLogicalId:Function, ResourceStatusReason:subnet not found"}]})
    with stub, pytest.raises(deploy.DeployError, match=f"ended FAILED: {A} us-east-1: .*subnet not found"):
        stackset_aws.run(cfn, planned, lambda line: None, poll_seconds=0, sleep=lambda s: None)


def test_an_operation_still_running_at_the_deadline_says_how_to_follow_it() -> None:
    cfn = boto3.client("cloudformation", region_name=HOME, aws_access_key_id="x", aws_secret_access_key="x")
    stub = Stubber(cfn)
    stub.add_response("describe_stack_set_operation", {"StackSetOperation": {"OperationId": "op-1", "Status": "RUNNING"}})
    with stub, pytest.raises(deploy.DeployError, match="still RUNNING .*describe-stack-set-operation"):
        stackset_aws.wait_for_operation(cfn, "orch-estate", "op-1", lambda line: None, poll_seconds=0, timeout_seconds=0, sleep=lambda s: None)


def test_schedule_offsets_are_deterministic_in_range_and_spread() -> None:
    offsets = [stackset.schedule_offset(A, "us-east-1", f"vpc-{n}", 5) for n in range(200)]
    assert offsets == [stackset.schedule_offset(A, "us-east-1", f"vpc-{n}", 5) for n in range(200)]
    assert set(offsets) == {0, 1, 2, 3, 4}
    assert min(offsets.count(k) for k in range(5)) > 20  # spread, not piled on one minute
    assert stackset.schedule_offset(A, "us-east-1", "vpc-1", 7) == 0  # 7 does not divide an hour: a plain rate
    assert stackset.schedule_offset(A, "us-east-1", "vpc-1", 1) == 0


def test_sequential_regions_give_the_region_order() -> None:
    prefs = stackset.Preferences(region_concurrency="SEQUENTIAL")
    assert prefs.as_api(["eu-west-1", "us-east-1"])["RegionOrder"] == ["eu-west-1", "us-east-1"]
    assert "RegionOrder" not in stackset.Preferences().as_api(["us-east-1"])

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
from botocore.stub import ANY, Stubber
from click.testing import CliRunner

from orchestrator.cli import cli
from orchestrator.deploy import stackset, stackset_aws
from orchestrator.deploy.code import CODE_PREFIX
from orchestrator.deploy.errors import DeployError, DeployUsageError
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
        assert len(keys) == 1 and keys[0].startswith(CODE_PREFIX)
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
    with stub, pytest.raises(DeployError, match=f"ended FAILED: {A} us-east-1: .*subnet not found"):
        stackset_aws.run(cfn, planned, lambda line: None, poll_seconds=0, sleep=lambda s: None)


def test_an_operation_still_running_at_the_deadline_says_how_to_follow_it() -> None:
    cfn = boto3.client("cloudformation", region_name=HOME, aws_access_key_id="x", aws_secret_access_key="x")
    stub = Stubber(cfn)
    stub.add_response("describe_stack_set_operation", {"StackSetOperation": {"OperationId": "op-1", "Status": "RUNNING"}})
    with stub, pytest.raises(DeployError, match="still RUNNING .*describe-stack-set-operation"):
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


# -- issue 20, cases 14-18 and 22: AWS's documented behaviour, moto does not check it ----------

PER_INSTANCE = {(A, "us-east-1"): {"VpcId": "vpc-a1", "SubnetIds": "subnet-a1"}, (A, "eu-west-1"): {"VpcId": "vpc-a2", "SubnetIds": "subnet-a2"},
                (B, "us-east-1"): {"VpcId": "vpc-b1", "SubnetIds": "subnet-b1"}, (B, "eu-west-1"): {"VpcId": "vpc-b2", "SubnetIds": "subnet-b2"}}
TEMPLATE_KEYS = {**DECLARED, "Mode": True, "SelectorValue": True, "NotifyWebhooks": True, "CodeBucket": False, "CodeKey": False, "Architecture": True}


def code(**more: str) -> dict[str, str]:
    return {"CodeKey": "orch/lambda/new.zip", "Architecture": "x86_64", "VpcCidr": "127.20.0.0/16", **more}


def only_overridable(call: dict[str, Any], stack_set_keys: set[str]) -> None:
    """AWS: "You can only override the parameter values that are specified in the stack set"."""
    overridden = {p["ParameterKey"] for p in call["ParameterOverrides"]}
    assert overridden <= stack_set_keys, f"overrides {sorted(overridden - stack_set_keys)} have no stack-set value"


def test_case_14_every_overridden_parameter_has_a_stack_set_value() -> None:
    instance = {**PER_INSTANCE, ("*", "us-east-1"): {"CodeBucket": "b-us-east-1"}, ("*", "eu-west-1"): {"CodeBucket": "b-eu-west-1"}}
    planned = stackset.plan(request(parameters=code(), accounts=(A, B), instance_parameters=instance), TEMPLATE_KEYS, None, {})
    stack_set_keys = {p["ParameterKey"] for p in planned.stack_set_call["Parameters"]}
    assert {"VpcId", "SubnetIds", "CodeBucket", "ScheduleOffsetMinutes"} <= stack_set_keys
    values = {p["ParameterKey"]: p["ParameterValue"] for p in planned.stack_set_call["Parameters"]}
    assert values["VpcId"] in {v["VpcId"] for v in PER_INSTANCE.values()}  # a value the template's type accepts
    assert values["CodeBucket"] in {"b-us-east-1", "b-eu-west-1"} and values["ScheduleOffsetMinutes"] == "0"
    cfn = boto3.client("cloudformation", region_name=HOME, aws_access_key_id="x", aws_secret_access_key="x")
    stub = Stubber(cfn)
    stub.add_response("create_stack_set", {"StackSetId": "orch-estate:1"}, dict(planned.stack_set_call))
    for group in planned.groups:
        call = group.as_api(False, planned.preferences, "orch-estate")
        only_overridable(call, stack_set_keys)
        stub.add_response("create_stack_instances", {"OperationId": f"op-{group.targets[0]}-{group.region}"}, call)
    for group in planned.groups:
        stub.add_response("describe_stack_set_operation", {"StackSetOperation": {"Status": "SUCCEEDED"}})
    stub.add_response("list_stack_instances", {"Summaries": []})
    with stub:
        stackset_aws.run(cfn, planned, lambda line: None, poll_seconds=0, sleep=lambda s: None)
    stub.assert_no_pending_responses()


PREVIOUS = {"PermissionModel": "SELF_MANAGED", "Status": "ACTIVE", "StackSetName": "orch-estate",
            "Parameters": [{"ParameterKey": k, "ParameterValue": v} for k, v in {
                "Mode": "heal", "SelectorValue": "web", "NotifyWebhooks": "[secret]", "VpcId": "vpc-a1", "SubnetIds": "subnet-a1",
                "VpcCidr": "127.20.0.0/16", "CodeBucket": "b", "CodeKey": "orch/lambda/old.zip", "ScheduleOffsetMinutes": "0"}.items()]}
CURRENT = {key: {**value, "ScheduleOffsetMinutes": str(stackset.schedule_offset(key[0], key[1], value["VpcId"], 5))} for key, value in PER_INSTANCE.items()}


def test_case_15_a_code_only_redeploy_keeps_every_parameter_it_does_not_pass() -> None:
    planned = stackset.plan(request(parameters={"CodeKey": "orch/lambda/new.zip", "Architecture": "x86_64"}, accounts=(A, B)),
                            TEMPLATE_KEYS, PREVIOUS, CURRENT)
    sent = {p["ParameterKey"]: p for p in planned.stack_set_call["Parameters"]}
    for kept in ("Mode", "SelectorValue", "NotifyWebhooks", "VpcId", "SubnetIds", "VpcCidr", "CodeBucket", "ScheduleOffsetMinutes"):
        assert sent[kept] == {"ParameterKey": kept, "UsePreviousValue": True}, kept
    assert sent["CodeKey"]["ParameterValue"] == "orch/lambda/new.zip"
    assert planned.groups == () and planned.updates == ()  # nothing else changes: the instances keep their overrides
    assert sorted(planned.already) == sorted(PER_INSTANCE)
    cfn = boto3.client("cloudformation", region_name=HOME, aws_access_key_id="x", aws_secret_access_key="x")
    stub = Stubber(cfn)  # the documented shape of a Parameter with UsePreviousValue passes botocore's validation
    stub.add_response("update_stack_set", {"OperationId": "op-1"}, dict(planned.stack_set_call))
    stub.add_response("describe_stack_set_operation", {"StackSetOperation": {"Status": "SUCCEEDED"}})
    stub.add_response("list_stack_instances", {"Summaries": []})
    with stub:
        stackset_aws.run(cfn, planned, lambda line: None, poll_seconds=0, sleep=lambda s: None)


def test_case_15_a_code_only_redeploy_through_the_cli_keeps_mode_and_selector(buckets, code_zip) -> None:  # noqa: F811
    assert orch(*stack_set_args(code_zip, "-p", "Mode=heal", "-p", "SelectorValue=web")).exit_code == 0
    again = orch("deploy", "--stack-set", "orch-estate", "--regions", ",".join(REGIONS), "--accounts", f"{A},{B}",
                 "--bucket", "orch-artifacts-{region}", "--zip", str(code_zip), "-o", "json")
    assert again.exit_code == 0, again.output
    kept = json.loads(again.stdout)["stack_set_parameters"]
    assert kept["Mode"] == kept["SelectorValue"] == kept["VpcCidr"] == "(previous value)"
    summary = boto3.client("cloudformation", region_name=HOME).describe_stack_set(StackSetName="orch-estate")["StackSet"]
    values = {p["ParameterKey"]: p["ParameterValue"] for p in summary["Parameters"]}
    assert values["Mode"] == "heal" and values["SelectorValue"] == "web"


def test_case_17_a_changed_parameter_of_an_existing_instance_goes_through_update_stack_instances() -> None:
    moved = {(B, "eu-west-1"): {"SubnetIds": "subnet-new"}}
    planned = stackset.plan(request(parameters={"CodeKey": "k"}, accounts=(A, B), instance_parameters=moved), TEMPLATE_KEYS, PREVIOUS, CURRENT)
    (update,) = planned.updates
    assert (update.region, update.targets) == ("eu-west-1", (B,))
    overrides = dict(update.overrides)  # the whole override list: AWS resets a key left out to the stack set's value
    assert overrides == {**CURRENT[(B, "eu-west-1")], "SubnetIds": "subnet-new"}
    assert (B, "eu-west-1") not in planned.already and len(planned.already) == 3
    cfn = boto3.client("cloudformation", region_name=HOME, aws_access_key_id="x", aws_secret_access_key="x")
    stub = Stubber(cfn)
    stub.add_response("update_stack_set", {"OperationId": "op-set"})
    stub.add_response("describe_stack_set_operation", {"StackSetOperation": {"OperationId": "op-set", "Status": "SUCCEEDED"}})
    call = update.as_api(False, planned.preferences, "orch-estate")
    stub.add_response("update_stack_instances", {"OperationId": "op-inst"}, call)  # only after the stack set update finished
    stub.add_response("describe_stack_set_operation", {"StackSetOperation": {"OperationId": "op-inst", "Status": "SUCCEEDED"}})
    stub.add_response("list_stack_instances", {"Summaries": []})
    with stub:
        outcome = stackset_aws.run(cfn, planned, lambda line: None, poll_seconds=0, sleep=lambda s: None)
    assert [o for _, o, _ in outcome.operations] == ["op-set", "op-inst"]


def test_case_17_existing_overrides_are_read_with_describe_stack_instance() -> None:
    cfn = boto3.client("cloudformation", region_name=HOME, aws_access_key_id="x", aws_secret_access_key="x")
    stub = Stubber(cfn)
    stub.add_response("list_stack_instances", {"Summaries": [{"Account": A, "Region": "us-east-1", "Status": "CURRENT"}]})
    stub.add_response("describe_stack_instance", {"StackInstance": {"Account": A, "Region": "us-east-1", "ParameterOverrides": [
        {"ParameterKey": "VpcId", "ParameterValue": "vpc-a1"}]}}, {"StackSetName": "orch-estate", "StackInstanceAccount": A, "StackInstanceRegion": "us-east-1"})
    with stub:
        found = stackset_aws.existing_instances(cfn, request(regions=("us-east-1",)), PREVIOUS)
    assert found == {(A, "us-east-1"): {"VpcId": "vpc-a1"}}


def test_case_17_the_cli_updates_an_instance_whose_subnets_changed(buckets, code_zip) -> None:  # noqa: F811
    assert orch(*stack_set_args(code_zip)).exit_code == 0
    again = orch(*stack_set_args(code_zip, "--instance-parameter", f"{B}:eu-west-1:SubnetIds=subnet-0000abcd", "-o", "json"))
    assert again.exit_code == 0, again.output
    document = json.loads(again.stdout)
    (update,) = document["update_stack_instances"]
    assert update["targets"] == [B] and update["region"] == "eu-west-1" and update["parameter_overrides"]["SubnetIds"] == "subnet-0000abcd"
    found = boto3.client("cloudformation", region_name=HOME).describe_stack_instance(
        StackSetName="orch-estate", StackInstanceAccount=B, StackInstanceRegion="eu-west-1")["StackInstance"]
    assert {p["ParameterKey"]: p["ParameterValue"] for p in found["ParameterOverrides"]}["SubnetIds"] == "subnet-0000abcd"


def test_case_18_per_account_values_in_an_ou_use_intersection_and_no_auto_deployment() -> None:
    ou = "ou-abcd-12345678"
    per_account = {(A, "*"): {"VpcId": "vpc-a", "SubnetIds": "subnet-a"}, (B, "*"): {"VpcId": "vpc-b", "SubnetIds": "subnet-b"}}
    planned = stackset.plan(request(accounts=(), ous=(ou,), regions=("us-east-1",), parameters=code(), instance_parameters=per_account,
                                    call_as="DELEGATED_ADMIN"), TEMPLATE_KEYS, None, {})
    by_account = {g.targets: g.as_api(True, planned.preferences, "orch-estate", planned.call_as) for g in planned.groups}
    assert set(by_account) == {(A,), (B,)}  # one VpcId per account, not one for the whole OU
    assert by_account[(A,)]["DeploymentTargets"] == {"OrganizationalUnitIds": [ou], "Accounts": [A], "AccountFilterType": "INTERSECTION"}
    assert {p["ParameterKey"]: p["ParameterValue"] for p in by_account[(B,)]["ParameterOverrides"]}["VpcId"] == "vpc-b"
    assert planned.stack_set_call["AutoDeployment"] == {"Enabled": False}  # a joining account would get another's VPC
    assert planned.stack_set_call["CallAs"] == "DELEGATED_ADMIN" and all(c["CallAs"] == "DELEGATED_ADMIN" for c in by_account.values())
    assert any("join later" in note for note in planned.notes)
    cfn = boto3.client("cloudformation", region_name=HOME, aws_access_key_id="x", aws_secret_access_key="x")
    stub = Stubber(cfn)  # botocore validates DeploymentTargets' and CallAs' shapes
    stub.add_response("create_stack_set", {"StackSetId": "s"}, dict(planned.stack_set_call))
    for call in by_account.values():
        stub.add_response("create_stack_instances", {"OperationId": f"op-{call['DeploymentTargets']['Accounts'][0]}"}, call)
    for _ in by_account:
        stub.add_response("describe_stack_set_operation", {"StackSetOperation": {"Status": "SUCCEEDED"}},
                          {"StackSetName": "orch-estate", "OperationId": ANY,
                           "CallAs": "DELEGATED_ADMIN"})
    stub.add_response("list_stack_instances", {"Summaries": []}, {"StackSetName": "orch-estate", "CallAs": "DELEGATED_ADMIN"})
    with stub:
        stackset_aws.run(cfn, planned, lambda line: None, poll_seconds=0, sleep=lambda s: None)
    stub.assert_no_pending_responses()


def test_case_18_one_value_for_the_whole_ou_keeps_auto_deployment() -> None:
    planned = stackset.plan(request(accounts=(), ous=("ou-abcd-12345678",), regions=("us-east-1",), parameters=code(VpcId="vpc-shared", SubnetIds="s")),
                            TEMPLATE_KEYS, None, {})
    (group,) = planned.groups
    assert group.as_api(True, planned.preferences, "x")["DeploymentTargets"] == {"OrganizationalUnitIds": ["ou-abcd-12345678"]}
    assert planned.stack_set_call["AutoDeployment"]["Enabled"] is True and planned.notes == ()


def test_case_18_an_ou_without_values_for_every_account_is_refused() -> None:
    with pytest.raises(DeployUsageError, match="lacks parameter"):
        stackset.plan(request(accounts=(), ous=("ou-abcd-12345678",), parameters=code()), TEMPLATE_KEYS, None, {})
    with pytest.raises(DeployUsageError, match="DELEGATED_ADMIN is for --ou"):
        stackset.plan(request(call_as="DELEGATED_ADMIN"), TEMPLATE_KEYS, None, {})


def test_case_22_an_update_passes_the_custom_administration_and_execution_roles_again() -> None:
    custom = {**PREVIOUS, "AdministrationRoleARN": "arn:aws:iam::999999999999:role/orch-admin", "ExecutionRoleName": "orch-exec"}
    planned = stackset.plan(request(parameters={"CodeKey": "k"}, accounts=(A, B)), TEMPLATE_KEYS, custom, CURRENT)
    assert planned.stack_set_call["AdministrationRoleARN"] == "arn:aws:iam::999999999999:role/orch-admin"
    assert planned.stack_set_call["ExecutionRoleName"] == "orch-exec"
    given = stackset.plan(request(parameters={"CodeKey": "k"}, accounts=(A, B), administration_role_arn="arn:aws:iam::999999999999:role/new"),
                          TEMPLATE_KEYS, custom, CURRENT)
    assert given.stack_set_call["AdministrationRoleARN"].endswith("role/new")


def test_case_16_the_target_accounts_may_read_the_code_and_nothing_else(buckets, code_zip) -> None:  # noqa: F811
    s3 = boto3.client("s3", region_name="eu-west-1")
    theirs = {"Sid": "TeamRule", "Effect": "Deny", "Principal": "*", "Action": "s3:DeleteBucket", "Resource": "arn:aws:s3:::orch-artifacts-eu-west-1"}
    s3.put_bucket_policy(Bucket="orch-artifacts-eu-west-1", Policy=json.dumps({"Version": "2012-10-17", "Statement": [theirs]}))
    dry = orch(*stack_set_args(code_zip, "--dry-run", "-o", "json"))
    assert json.loads(dry.stdout)["code_bucket_policy"]["orch-artifacts-us-east-1"]["Action"] == "s3:GetObject"
    with pytest.raises(Exception, match="NoSuchBucketPolicy"):
        boto3.client("s3", region_name=HOME).get_bucket_policy(Bucket="orch-artifacts-us-east-1")
    assert orch(*stack_set_args(code_zip)).exit_code == 0
    for region in REGIONS:
        policy = json.loads(boto3.client("s3", region_name=region).get_bucket_policy(Bucket=f"orch-artifacts-{region}")["Policy"])
        (grant,) = [s for s in policy["Statement"] if s.get("Sid") == "OrchStackSetCodeRead"]
        assert grant["Effect"] == "Allow" and grant["Action"] == "s3:GetObject"
        assert grant["Resource"] == f"arn:aws:s3:::orch-artifacts-{region}/{CODE_PREFIX}*"
        assert sorted(grant["Principal"]["AWS"]) == [f"arn:aws:iam::{A}:root", f"arn:aws:iam::{B}:root"]
    policy = json.loads(s3.get_bucket_policy(Bucket="orch-artifacts-eu-west-1")["Policy"])
    assert theirs in policy["Statement"]  # the bucket's other statements are kept


def test_case_16_accounts_granted_before_keep_reading_and_an_organization_is_one_condition() -> None:
    from orchestrator.deploy import code as deploy_code

    first = deploy_code.merged_policy(None, deploy_code.read_statement("b", [A]))
    second = deploy_code.merged_policy(first, deploy_code.read_statement("b", [B]))
    (grant,) = second["Statement"]
    assert grant["Principal"]["AWS"] == [f"arn:aws:iam::{A}:root", f"arn:aws:iam::{B}:root"]
    org = deploy_code.read_statement("b", org_id="o-abc123")
    assert org["Principal"] == "*" and org["Condition"] == {"StringEquals": {"aws:PrincipalOrgID": "o-abc123"}}


def test_case_18_values_per_ou_go_to_that_ous_own_call() -> None:
    east, west = "ou-abcd-11111111", "ou-abcd-22222222"
    per_ou = {(east, "*"): {"VpcId": "vpc-east", "SubnetIds": "s-e"}, (west, "*"): {"VpcId": "vpc-west", "SubnetIds": "s-w"}}
    planned = stackset.plan(request(accounts=(), ous=(east, west), regions=("us-east-1",), parameters=code(), instance_parameters=per_ou),
                            TEMPLATE_KEYS, None, {})
    calls = {g.targets: g.as_api(True, planned.preferences, "x") for g in planned.groups}
    assert calls[(east,)]["DeploymentTargets"] == {"OrganizationalUnitIds": [east]}
    assert {p["ParameterKey"]: p["ParameterValue"] for p in calls[(west,)]["ParameterOverrides"]}["VpcId"] == "vpc-west"
    assert planned.stack_set_call["AutoDeployment"] == {"Enabled": False}  # a joining account would not get its OU's VpcId
    with pytest.raises(DeployUsageError, match="which --ou does not deploy to"):
        stackset.plan(request(accounts=(), ous=(east,), parameters=code(), instance_parameters=per_ou), TEMPLATE_KEYS, None, {})

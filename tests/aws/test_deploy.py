"""`orch deploy` / `orch destroy` against a moto server on 127.0.0.1, reached via AWS_ENDPOINT_URL.

This is what docs/deploy.md tells a person to do against embedded AWS. Moto runs the
change set and creates what it supports: the table, bucket, topic, log group, security
group, role with its policies, function, schedule rule and permission. It has no
CloudFormation support for AWS::CloudWatch::Alarm, AWS::S3::BucketPolicy and
AWS::Lambda::EventInvokeConfig (it skips them with a warning; the template test checks
their properties instead), it ignores the table's TimeToLiveSpecification, it never fills in stack outputs after a
change set runs, and
it reports an unchanged update as "No updates are to be performed." at CreateChangeSet
(real CloudFormation creates a FAILED change set instead; both are handled, the latter
is tested with a stubbed client below).
"""

from __future__ import annotations

import json
import logging
import urllib.request
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterator

import boto3
import pytest
from botocore.stub import Stubber
from click.testing import CliRunner
from moto.server import ThreadedMotoServer

from orchestrator.aws import Clients
from orchestrator.cli import cli
from orchestrator.deploy import package
from orchestrator.deploy import stack as deploy
from orchestrator.deploy.code import CODE_PREFIX, Uploaded
from orchestrator.deploy.errors import DeployError
from orchestrator.deploy.stack_watch import wait_for_stack
from tests.unit.test_package import fake_installer

REGION = "us-east-1"
BUCKET = "orch-artifacts"
pytestmark = pytest.mark.filterwarnings("ignore:.*not supported by moto's CloudFormation")


@pytest.fixture(scope="module")
def moto_endpoint() -> Iterator[str]:
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one line per request otherwise
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


@pytest.fixture
def endpoint(moto_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """A clean moto for each test, reached the way a user would: AWS_ENDPOINT_URL."""
    urllib.request.urlopen(urllib.request.Request(f"{moto_endpoint}/moto-api/reset", method="POST")).read()
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_endpoint)
    return moto_endpoint


@pytest.fixture
def session(endpoint: str) -> boto3.Session:
    return boto3.Session(region_name=REGION)


@pytest.fixture
def network(session: boto3.Session) -> dict[str, str]:
    """The fleet's VPC in loopback space, and the artifact bucket the operator made."""
    ec2 = session.client("ec2")
    vpc = ec2.create_vpc(CidrBlock="127.20.0.0/16")["Vpc"]["VpcId"]
    subnets = [
        ec2.create_subnet(VpcId=vpc, CidrBlock=f"127.20.{i}.0/24", AvailabilityZone=f"{REGION}{az}")["Subnet"]["SubnetId"]
        for i, az in ((1, "a"), (2, "b"))
    ]
    session.client("s3").create_bucket(Bucket=BUCKET)
    return {"VpcId": vpc, "VpcCidr": "127.20.0.0/16", "SubnetIds": ",".join(subnets)}


@pytest.fixture(scope="module")
def code_zip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real `orch package` zip with a stand-in for pip (no wheels needed here)."""
    return package.build(tmp_path_factory.mktemp("zip") / "orch-lambda.zip", installer=fake_installer).path


def orch(*args: str) -> Any:
    return CliRunner().invoke(cli, [*args, "--region", REGION], catch_exceptions=False)


def deploy_args(network: dict[str, str], code_zip: Path, *extra: str) -> list[str]:
    params = [x for k, v in network.items() for x in ("--parameter", f"{k}={v}")]
    return ["deploy", "--stack-name", "orch", "--bucket", BUCKET, "--zip", str(code_zip), *params, *extra]


def stack_resources(session: boto3.Session) -> dict[str, str]:
    summaries = session.client("cloudformation").list_stack_resources(StackName="orch")["StackResourceSummaries"]
    return {s["LogicalResourceId"]: s["PhysicalResourceId"] for s in summaries if s.get("LogicalResourceId")}


def test_deploy_creates_the_stack_and_its_resources(session, network, code_zip):
    result = orch(*deploy_args(network, code_zip))
    assert result.exit_code == 0, result.output
    assert "change set for orch (CREATE)" in result.output
    for logical in ("StateTable", "EvidenceBucket", "Topic", "Function", "Role", "ScheduleRule", "SecurityGroup", "LogGroup"):
        assert logical in result.output
    assert "stack orch: CREATE_COMPLETE" in result.output
    stack = session.client("cloudformation").describe_stacks(StackName="orch")["Stacks"][0]
    assert stack["StackStatus"] == "CREATE_COMPLETE"
    assert {p["ParameterKey"]: p["ParameterValue"] for p in stack["Parameters"]}["CodeKey"].startswith(CODE_PREFIX)

    made = stack_resources(session)
    table = session.client("dynamodb").describe_table(TableName=made["StateTable"])["Table"]
    assert table["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST"
    assert {i["IndexName"] for i in table["GlobalSecondaryIndexes"]} == {"by-instance", "by-time"}
    session.client("s3").head_bucket(Bucket=made["EvidenceBucket"])
    assert made["Topic"] in [t["TopicArn"] for t in session.client("sns").list_topics()["Topics"]]
    function = session.client("lambda").get_function(FunctionName=made["Function"])
    config = function["Configuration"]
    assert (config["Runtime"], config["Handler"]) == ("python3.12", "lambdas.heal.handler")
    env = config["Environment"]["Variables"]
    assert env["ORCH_DRY_RUN"] == "true"  # a fresh deploy observes before it touches anything
    assert env["ORCH_STATE"] == f"dynamodb://{made['StateTable']}" and env["ORCH_SELECTOR"] == "orch:managed=true"
    assert config["VpcConfig"]["SecurityGroupIds"] == [made["SecurityGroup"]]
    rule = session.client("events").describe_rule(Name=made["ScheduleRule"])
    assert rule["ScheduleExpression"] == "rate(5 minutes)"
    role_policies = session.client("iam").list_role_policies(RoleName=made["Role"])["PolicyNames"]
    assert sorted(role_policies) == ["act-on-selected-instances", "lambda-platform", "observe-and-record"]
    # Moto's gaps, asserted so a moto upgrade that closes them is noticed.
    assert session.client("cloudwatch").describe_alarms()["MetricAlarms"] == []
    ttl = session.client("dynamodb").describe_time_to_live(TableName=made["StateTable"])["TimeToLiveDescription"]
    assert ttl["TimeToLiveStatus"] == "DISABLED"  # moto ignores TimeToLiveSpecification in a template
    assert "Outputs" not in stack


def test_redeploying_the_same_zip_uploads_it_under_the_same_key(session, network, code_zip):
    """Content-hash keys: unchanged code leaves the function's Code property unchanged."""
    assert orch(*deploy_args(network, code_zip)).exit_code == 0
    assert orch(*deploy_args(network, code_zip)).exit_code == 0
    keys = [o["Key"] for o in session.client("s3").list_objects_v2(Bucket=BUCKET)["Contents"]]
    assert len(keys) == 1 and keys[0].startswith(CODE_PREFIX)


def test_no_changes_is_said_and_exits_0(session, network, code_zip, monkeypatch):
    """Moto cannot tell an unchanged update (it compares typed parameter values with strings):
    CloudFormation's own answer is replayed in the stubbed test below; this checks the CLI."""
    assert orch(*deploy_args(network, code_zip)).exit_code == 0

    def unchanged(clients, prepared, uploaded, **_):
        return deploy.ChangeSet(prepared.stack_name, "id", "", prepared.kind, no_changes=True)

    monkeypatch.setattr(deploy, "create_change_set", unchanged)
    again = orch(*deploy_args(network, code_zip))
    assert again.exit_code == 0 and "no changes: stack orch is already up to date" in again.output
    assert "CREATE_COMPLETE" not in again.output


def test_an_update_changes_only_what_was_given_and_keeps_the_rest(session, network, code_zip):
    """Parameters not given keep their previous values (UsePreviousValue), not the defaults.

    SubnetIds is passed again only because moto crashes on UsePreviousValue for a List
    parameter (it splits the already-split list); CloudFormation does not need it.
    """
    assert orch(*deploy_args(network, code_zip, "-p", "MaxActionsPerSweep=5")).exit_code == 0
    updated = orch(
        "deploy", "--stack-name", "orch", "--bucket", BUCKET, "--zip", str(code_zip),
        "-p", "Mode=heal", "-p", f"SubnetIds={network['SubnetIds']}",
    )
    assert updated.exit_code == 0, updated.output
    assert "change set for orch (UPDATE)" in updated.output and "UPDATE_COMPLETE" in updated.output
    params = {p["ParameterKey"]: p["ParameterValue"] for p in session.client("cloudformation").describe_stacks(StackName="orch")["Stacks"][0]["Parameters"]}
    assert params["Mode"] == "heal" and params["VpcCidr"] == "127.20.0.0/16" and params["MaxActionsPerSweep"] == "5"
    function = stack_resources(session)["Function"]
    env = session.client("lambda").get_function(FunctionName=function)["Configuration"]["Environment"]["Variables"]
    assert env["ORCH_DRY_RUN"] == "false" and str(env["ORCH_SAFETY_MAX_ACTIONS_PER_SWEEP"]) == "5"  # moto keeps the int


def live_stacks(session: boto3.Session) -> list[str]:
    cfn = session.client("cloudformation")
    return [s["StackName"] for s in cfn.list_stacks()["StackSummaries"] if s["StackStatus"] != "DELETE_COMPLETE"]


def test_dry_run_uploads_nothing_and_creates_no_change_set(session, network, code_zip):
    """A dry run makes no change anywhere: no 21 MB upload, no change set (a CREATE change
    set even creates a stack in REVIEW_IN_PROGRESS)."""
    result = orch(*deploy_args(network, code_zip, "--dry-run"))
    assert result.exit_code == 0, result.output
    assert "dry run for orch (CREATE): nothing uploaded, no change set created" in result.output
    assert f"s3://{BUCKET}/{CODE_PREFIX}" in result.output and ": uploaded" in result.output
    assert "parameter VpcCidr" in result.output and "127.20.0.0/16" in result.output
    assert session.client("s3").list_objects_v2(Bucket=BUCKET).get("KeyCount") == 0
    assert live_stacks(session) == []
    assert session.client("lambda").list_functions()["Functions"] == []


def test_dry_run_of_an_update_names_the_parameters_that_change(session, network, code_zip):
    assert orch(*deploy_args(network, code_zip)).exit_code == 0
    before = session.client("cloudformation").describe_stacks(StackName="orch")["Stacks"][0]
    change_sets = session.client("cloudformation").list_change_sets(StackName="orch")["Summaries"]
    result = CliRunner().invoke(
        cli,
        ["deploy", "--stack-name", "orch", "--bucket", BUCKET, "--zip", str(code_zip), "-p", "Mode=heal", "--dry-run", "--region", REGION, "-o", "json"],
    )
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert document["dry_run"] is True and document["executed"] is False and document["change_set_type"] == "UPDATE"
    assert document["parameters"] == {"Mode": {"from": "dry-run", "to": "heal"}}
    assert document["template_changed"] is False and document["code"]["already_uploaded"] is True
    after = session.client("cloudformation").describe_stacks(StackName="orch")["Stacks"][0]
    assert after["Parameters"] == before["Parameters"] and after["StackStatus"] == before["StackStatus"]
    assert session.client("cloudformation").list_change_sets(StackName="orch")["Summaries"] == change_sets


def test_dry_run_without_a_zip_builds_and_uploads_nothing(session, network, monkeypatch):
    def no_build(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("a dry run must not build the zip")

    monkeypatch.setattr(package, "build", no_build)
    result = orch(*[a for a in deploy_args(network, Path("unused.zip"), "--dry-run") if a not in ("--zip", "unused.zip")])
    assert result.exit_code == 0, result.output
    assert "built by orch package and uploaded" in result.output
    assert session.client("s3").list_objects_v2(Bucket=BUCKET).get("KeyCount") == 0 and live_stacks(session) == []


def test_json_output_for_scripts(session, network, code_zip):
    result = CliRunner().invoke(cli, [*deploy_args(network, code_zip), "--region", REGION, "-o", "json"])
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert document["change_set_type"] == "CREATE" and document["executed"] is True
    assert {"action": "Add", "logical_id": "Function", "resource_type": "AWS::Lambda::Function", "replacement": ""} in document["changes"]


def test_selector_option_sets_the_selector_parameters(session, network, code_zip):
    result = orch(*deploy_args(network, code_zip), "--selector", "team=web")
    assert result.exit_code == 0, result.output
    env = session.client("lambda").get_function(FunctionName=stack_resources(session)["Function"])["Configuration"]["Environment"]["Variables"]
    assert env["ORCH_SELECTOR"] == "team=web"


BAD_REQUESTS = [
    (("-p", "Colour=blue"), "unknown parameter(s) Colour: the template takes"),
    (("-p", "CodeKey=x.zip"), "CodeKey are set by orch deploy"),
    (("-p", "Mode"), "--parameter 'Mode' is not KEY=VALUE"),
    (("-p", "Mode=heal", "-p", "Mode=dry-run"), "--parameter Mode given twice"),
    (("--selector", "a=1,b=2"), "one tag"),
    (("--state", "dynamodb://t"), "--state does not apply to deploy"),
    (("--template", "/nonexistent/t.yaml"), "template /nonexistent/t.yaml does not exist"),
]


def test_bad_requests_fail_in_one_line_before_anything_is_uploaded(session, network, code_zip):
    for extra, message in BAD_REQUESTS:
        result = orch(*deploy_args(network, code_zip, *extra))
        assert result.exit_code == 2 and message in result.output, (extra, result.output)
        assert len(result.output.strip().splitlines()) == 1 and "Traceback" not in result.output
    assert session.client("s3").list_objects_v2(Bucket=BUCKET).get("KeyCount", 0) == 0
    assert session.client("cloudformation").list_stacks()["StackSummaries"] == []


def test_missing_required_parameters_are_named(session, network, code_zip):
    result = orch("deploy", "--stack-name", "orch", "--bucket", BUCKET, "--zip", str(code_zip), "-p", f"VpcId={network['VpcId']}")
    assert result.exit_code == 2
    assert "missing required parameter(s): --parameter SubnetIds=... --parameter VpcCidr=..." in result.output


def test_a_missing_bucket_is_explained(session, network, code_zip):
    result = orch("deploy", "--stack-name", "orch", "--bucket", "no-such-bucket", "--zip", str(code_zip),
                  *[x for k, v in network.items() for x in ("-p", f"{k}={v}")])
    assert result.exit_code == 2 and "bucket no-such-bucket does not exist" in result.output


def test_a_zip_built_for_another_python_is_refused(session, network, tmp_path):
    other = package.build(tmp_path / "py311.zip", package.Target("x86_64", "3.11"), installer=fake_installer).path
    result = orch(*deploy_args(network, other))
    assert result.exit_code == 2 and "built for Python 3.11 but the function runs python3.12" in result.output


def test_deploy_without_zip_packages_first(session, network, monkeypatch, tmp_path):
    monkeypatch.setattr(package, "pip_install", fake_installer)
    params = [x for k, v in network.items() for x in ("-p", f"{k}={v}")]
    result = orch("deploy", "--stack-name", "orch", "--bucket", BUCKET, "--arch", "arm64", *params)
    assert result.exit_code == 0, result.output
    assert "for Lambda python3.12 arm64" in result.output
    stack = session.client("cloudformation").describe_stacks(StackName="orch")["Stacks"][0]
    params = {p["ParameterKey"]: p["ParameterValue"] for p in stack["Parameters"]}
    assert params["Architecture"] == "arm64"  # read from the zip; moto ignores Architectures itself
    uploaded = tmp_path / "uploaded.zip"
    uploaded.write_bytes(session.client("s3").get_object(Bucket=BUCKET, Key=params["CodeKey"])["Body"].read())
    assert package.read_manifest(uploaded)["arch"] == "arm64"


def test_destroy_deletes_the_stack_and_keeps_the_records(session, network, code_zip):
    assert orch(*deploy_args(network, code_zip)).exit_code == 0
    made = stack_resources(session)
    result = orch("destroy", "--stack-name", "orch", "--yes")
    assert result.exit_code == 0, result.output
    assert "DELETE_IN_PROGRESS" in result.output and "stack orch: DELETE_COMPLETE" in result.output
    assert f"kept AWS::DynamoDB::Table {made['StateTable']}" in result.output
    assert f"kept AWS::S3::Bucket {made['EvidenceBucket']}" in result.output
    assert session.client("lambda").list_functions()["Functions"] == []
    session.client("dynamodb").describe_table(TableName=made["StateTable"])  # still there
    session.client("s3").head_bucket(Bucket=made["EvidenceBucket"])
    assert "nothing to destroy" in orch("destroy", "--stack-name", "orch", "--yes").output


def test_destroy_asks_on_a_terminal(session, network, code_zip, monkeypatch):
    assert orch(*deploy_args(network, code_zip)).exit_code == 0
    monkeypatch.setattr("orchestrator.cli.deploy_cmds.can_ask", lambda: True)
    result = CliRunner().invoke(cli, ["destroy", "--stack-name", "orch", "--region", REGION], input="n\n")
    assert "delete stack orch (CREATE_COMPLETE)?" in result.output and result.exit_code == 1
    assert session.client("cloudformation").describe_stacks(StackName="orch")["Stacks"][0]["StackStatus"] == "CREATE_COMPLETE"


def test_a_failed_stack_exits_3_with_the_reason(session, network, code_zip, monkeypatch):
    def fails(*args, **kwargs):
        raise DeployError("stack orch ended ROLLBACK_COMPLETE: Function: Error occurred while GetObject")

    monkeypatch.setattr(deploy, "execute", fails)
    result = orch(*deploy_args(network, code_zip))
    assert result.exit_code == 3 and "Function: Error occurred while GetObject" in result.output
    assert "Traceback" not in result.output


def test_destroy_without_yes_and_without_a_terminal_refuses(session, network, code_zip):
    assert orch(*deploy_args(network, code_zip)).exit_code == 0
    result = orch("destroy", "--stack-name", "orch")
    assert result.exit_code == 2 and "refusing to delete stack orch without --yes" in result.output
    assert session.client("cloudformation").describe_stacks(StackName="orch")["Stacks"][0]["StackStatus"] == "CREATE_COMPLETE"


# -- what moto cannot show: real CloudFormation's replies, stubbed --------------------------


def _stubbed(monkeypatch: pytest.MonkeyPatch) -> tuple[Clients, Stubber]:
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    clients = Clients(boto3.Session(region_name=REGION))
    return clients, Stubber(clients.client("cloudformation"))


def _prepared(kind: str = "UPDATE") -> deploy.Prepared:
    return deploy.Prepared("orch", "{}", kind, None, {"Mode": True}, {})


UPLOADED = Uploaded(BUCKET, "orch/lambda/abc.zip", 10, "3.12", "x86_64")
STACK_ID = "arn:aws:cloudformation:us-east-1:123456789012:stack/orch/1"
CS_ID = "arn:aws:cloudformation:us-east-1:123456789012:changeSet/orch-1/1"


def test_a_failed_no_change_change_set_is_reported_as_no_change(monkeypatch):
    clients, stub = _stubbed(monkeypatch)
    stub.add_response("create_change_set", {"Id": CS_ID, "StackId": STACK_ID})
    failed = {
        "ChangeSetId": CS_ID, "StackName": "orch", "Status": "FAILED", "ExecutionStatus": "UNAVAILABLE",
        "StatusReason": "The submitted information didn't contain changes. Submit different information to create a change set.",
    }
    stub.add_response("describe_change_set", failed)  # the waiter's poll
    stub.add_response("describe_change_set", failed)  # the reason
    stub.add_response("delete_change_set", {}, {"ChangeSetName": CS_ID})
    with stub:
        change_set = deploy.create_change_set(clients, _prepared(), UPLOADED, wait_delay=0)
    assert change_set.no_changes and change_set.changes == []
    stub.assert_no_pending_responses()


def test_a_failed_stack_reports_the_resource_that_failed(monkeypatch):
    clients, stub = _stubbed(monkeypatch)
    since = datetime(2026, 1, 1, tzinfo=timezone.utc)
    events = {
        "StackEvents": [
            {"StackId": STACK_ID, "EventId": "2", "StackName": "orch", "LogicalResourceId": "orch", "ResourceType": "AWS::CloudFormation::Stack",
             "Timestamp": since.replace(minute=2), "ResourceStatus": "ROLLBACK_COMPLETE"},
            {"StackId": STACK_ID, "EventId": "1", "StackName": "orch", "LogicalResourceId": "Function", "ResourceType": "AWS::Lambda::Function",
             "Timestamp": since.replace(minute=1), "ResourceStatus": "CREATE_FAILED", "ResourceStatusReason": "Error occurred while GetObject. S3 Error Code: NoSuchKey"},
        ]
    }
    stack = {"Stacks": [{"StackName": "orch", "StackId": STACK_ID, "StackStatus": "ROLLBACK_COMPLETE", "CreationTime": since}]}
    stub.add_response("describe_stack_events", {"StackEvents": []})  # before executing
    stub.add_response("execute_change_set", {}, {"ChangeSetName": CS_ID})
    stub.add_response("describe_stack_events", events)
    stub.add_response("describe_stacks", stack)
    stub.add_response("describe_stack_events", events)
    shown: list[str] = []
    change_set = deploy.ChangeSet("orch", STACK_ID, CS_ID, "CREATE")
    with stub, pytest.raises(DeployError, match="ended ROLLBACK_COMPLETE: Function: Error occurred while GetObject"):
        deploy.execute(clients, change_set, shown.append, poll_seconds=0)
    assert [line.split()[1] for line in shown] == ["CREATE_FAILED", "ROLLBACK_COMPLETE"]  # oldest first


def test_waiting_prints_each_event_once_while_the_stack_works(monkeypatch):
    clients, stub = _stubbed(monkeypatch)
    since = datetime(2026, 1, 1, tzinfo=timezone.utc)

    def event(n: int, status: str) -> dict[str, Any]:
        return {"StackId": STACK_ID, "EventId": str(n), "StackName": "orch", "LogicalResourceId": f"R{n}",
                "ResourceType": "AWS::SNS::Topic", "Timestamp": since.replace(minute=n), "ResourceStatus": status}

    def stack(status: str) -> dict[str, Any]:
        return {"Stacks": [{"StackName": "orch", "StackId": STACK_ID, "StackStatus": status, "CreationTime": since}]}

    stub.add_response("describe_stack_events", {"StackEvents": [event(1, "CREATE_IN_PROGRESS")]})
    stub.add_response("describe_stacks", stack("CREATE_IN_PROGRESS"))
    stub.add_response("describe_stack_events", {"StackEvents": [event(2, "CREATE_COMPLETE"), event(1, "CREATE_IN_PROGRESS")]})
    stub.add_response("describe_stacks", stack("CREATE_COMPLETE"))
    shown: list[str] = []
    slept: list[float] = []
    with stub:
        status = wait_for_stack(clients.client("cloudformation"), STACK_ID, shown.append, 7.0, 60.0, slept.append, {"0"})
    assert status == "CREATE_COMPLETE" and slept == [7.0]
    assert [line.split()[2] for line in shown] == ["R1", "R2"]


# -- the deployed function's own configuration, run in-process --------------------------------


def test_the_deployed_functions_environment_heals_and_orch_reads_its_records(session, network, code_zip):
    """Deploy with Mode=heal, then run the handler with exactly the environment moto's Lambda
    holds for the function: the template's settings load, the stack's table takes the lease and
    the records, and `orch history` / `orch pause` work on it through --state."""
    from lambdas import heal
    from tests.aws.test_lambda_heal import SCHEDULED_EVENT, Context
    from tests.builders import ScriptedProber

    extra = ("-p", "Mode=heal", "-p", "LaunchGraceMinutes=0", "-p", "MaxUnhealthy=50%")
    assert orch(*deploy_args(network, code_zip, *extra)).exit_code == 0
    made = stack_resources(session)
    config = session.client("lambda").get_function(FunctionName=made["Function"])["Configuration"]
    environ = {k: str(v) for k, v in config["Environment"]["Variables"].items()}  # moto keeps numbers as numbers
    subnet = network["SubnetIds"].split(",")[0]
    reply = session.client("ec2").run_instances(
        ImageId="ami-12c6146b", MinCount=4, MaxCount=4, InstanceType="t3.micro", SubnetId=subnet,
        TagSpecifications=[{"ResourceType": "instance", "Tags": [{"Key": "orch:managed", "Value": "true"}]}],
    )
    ids = [i["InstanceId"] for i in reply["Instances"]]

    summary = heal.handler(SCHEDULED_EVENT, Context(), heal.Hooks(prober=ScriptedProber({ids[0]}), environ=environ))
    assert [(a["instance_id"], a["action"], a["outcome"]) for a in summary["actions"]] == [(ids[0], "reboot", "done")]

    state = environ["ORCH_STATE"]
    assert state == f"dynamodb://{made['StateTable']}"
    history = orch("history", "--state", state, "-o", "json")
    assert history.exit_code == 0, history.output
    assert [(r["instance_id"], r["action"], r["status"]) for r in json.loads(history.output)] == [(ids[0], "reboot", "done")]

    assert orch("pause", "--state", state, "--reason", "change freeze").exit_code == 0
    paused = heal.handler(SCHEDULED_EVENT, Context(), heal.Hooks(prober=ScriptedProber({ids[1]}), environ=environ))
    assert paused["actions"] == [] and "change freeze" in paused["blocked"][0]["why"]
    assert orch("resume", "--state", state).exit_code == 0
    resumed = heal.handler(SCHEDULED_EVENT, Context(), heal.Hooks(prober=ScriptedProber({ids[1]}), environ=environ))
    assert [(a["instance_id"], a["outcome"]) for a in resumed["actions"]] == [(ids[1], "done")]

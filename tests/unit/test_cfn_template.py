"""The CloudFormation template against the code it deploys: lint, IAM, table, function, alarms."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, Iterator

import pytest
from cfnlint.api import lint_file
from cfnlint.decode import cfn_yaml

from lambdas import heal
from orchestrator import deploy, permissions
from orchestrator.config import load_settings
from orchestrator.state import dynamodb

CFN_DIR = Path(__file__).resolve().parents[2] / "cfn"
TEMPLATE = CFN_DIR / "orchestrator.yaml"

# Not orch's own calls: what the Lambda service needs to run a function in a VPC (the
# actions of AWSLambdaVPCAccessExecutionRole) and to write the function's log group.
PLATFORM_ACTIONS = frozenset(
    {
        "ec2:CreateNetworkInterface",
        "ec2:DescribeNetworkInterfaces",
        "ec2:DescribeSubnets",
        "ec2:DeleteNetworkInterface",
        "ec2:AssignPrivateIpAddresses",
        "ec2:UnassignPrivateIpAddresses",
        "logs:CreateLogStream",
        "logs:PutLogEvents",
    }
)
# orch's calls that AWS authorizes on no narrower resource than "*".
STAR_ONLY_ACTIONS = frozenset(
    {
        "ec2:DescribeInstances",
        "ec2:DescribeInstanceStatus",
        "cloudwatch:GetMetricData",
        "cloudwatch:ListMetrics",
        "autoscaling:DescribeAutoScalingInstances",
        "ssm:DescribeInstanceInformation",
    }
)
SAMPLE = {
    "AWS::Partition": "aws",
    "AWS::Region": "us-east-1",
    "AWS::AccountId": "123456789012",
    "AWS::StackName": "orch",
    "SelectorKey": "team:fleet",
    "SelectorValue": "web",
    "SsmDocument": "AWS-RunShellScript",
}


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    return cfn_yaml.load(str(TEMPLATE))


def resources(template: dict[str, Any], rtype: str) -> dict[str, dict[str, Any]]:
    return {name: r for name, r in template["Resources"].items() if r["Type"] == rtype}


def one(template: dict[str, Any], rtype: str) -> dict[str, Any]:
    (found,) = resources(template, rtype).values()
    return found


def sub(text: str, values: dict[str, str] = SAMPLE) -> str:
    """Resolve ${Name} in an Fn::Sub string with sample values; fail on any unknown name."""
    return re.sub(r"\$\{([^}]+)\}", lambda m: values[m.group(1)], text)


def policy_statements(template: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """Every statement of the role's inline policies, JSON-string documents resolved."""
    role = one(template, "AWS::IAM::Role")
    for policy in role["Properties"]["Policies"]:
        document = policy["PolicyDocument"]
        if "Fn::Sub" in document:
            document = json.loads(sub(document["Fn::Sub"]))
        assert document["Version"] == "2012-10-17"
        for statement in document["Statement"]:
            yield policy["PolicyName"], statement


def actions_of(statement: dict[str, Any]) -> list[str]:
    action = statement["Action"]
    return [action] if isinstance(action, str) else list(action)


@pytest.mark.parametrize("path", sorted(CFN_DIR.glob("*.yaml")), ids=lambda p: p.name)
def test_cfn_lint_passes(path: Path) -> None:
    matches = lint_file(path)
    assert not matches, "\n".join(str(m) for m in matches)


def test_cfn_lint_would_catch_a_mistake(tmp_path: Path) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text(TEMPLATE.read_text().replace("Runtime: python3.12", "Runtime: python9.99"))
    assert any(m.rule.id == "E3030" for m in lint_file(broken))


def test_role_grants_exactly_what_the_adapters_declare(template) -> None:
    granted = {a for _, s in policy_statements(template) if s["Effect"] == "Allow" for a in actions_of(s)}
    assert granted & PLATFORM_ACTIONS == PLATFORM_ACTIONS
    orch = granted - PLATFORM_ACTIONS
    assert sorted(permissions.ALL - orch) == [], "missing from the role"
    assert sorted(orch - permissions.ALL) == [], "granted but never called"
    assert not any("*" in a for a in granted), "no wildcard actions"


SSM_DOCUMENT_ARN = "arn:aws:ssm:us-east-1::document/AWS-RunShellScript"


def test_every_mutating_action_is_conditioned_on_the_selector_tag(template) -> None:
    """One documented exception: ssm:SendCommand also needs its document, which has no tag,
    so a separate statement grants it on that one named document and nothing else."""
    tag_condition = {"StringEquals": {f"aws:ResourceTag/{SAMPLE['SelectorKey']}": SAMPLE["SelectorValue"]}}
    seen = set()
    for _, statement in policy_statements(template):
        mutating = set(actions_of(statement)) & permissions.MUTATE
        if not mutating:
            continue
        if statement["Resource"] == SSM_DOCUMENT_ARN:
            assert mutating == {"ssm:SendCommand"} and "Condition" not in statement
            continue
        assert statement.get("Condition") == tag_condition, statement
        assert statement["Resource"].endswith(":instance/*") or ":autoScalingGroup:" in statement["Resource"]
        seen |= mutating
    assert seen == permissions.MUTATE
    by_action = {a: s for _, s in policy_statements(template) for a in actions_of(s) if s["Resource"] != SSM_DOCUMENT_ARN}
    assert by_action["ec2:GetConsoleOutput"].get("Condition") == tag_condition  # a read, but of one instance
    assert by_action["ec2:RebootInstances"]["Resource"] == "arn:aws:ec2:us-east-1:123456789012:instance/*"
    # SetInstanceHealth is authorized against the Auto Scaling group, not the instance.
    assert ":autoScalingGroup:" in by_action["autoscaling:SetInstanceHealth"]["Resource"]


def test_only_star_only_actions_are_granted_on_star(template) -> None:
    for name, statement in policy_statements(template):
        resource = statement["Resource"]
        if resource == "*" or resource == ["*"]:
            assert set(actions_of(statement)) <= STAR_ONLY_ACTIONS | PLATFORM_ACTIONS, (name, statement)


def test_table_topic_and_bucket_are_granted_by_arn(template) -> None:
    by_action = {a: s for _, s in policy_statements(template) for a in actions_of(s)}
    table_resources = by_action["dynamodb:Query"]["Resource"]
    assert {"Fn::GetAtt": ["StateTable", "Arn"]} in table_resources
    assert {"Fn::Sub": "${StateTable.Arn}/index/*"} in table_resources
    for action in dynamodb.PERMISSIONS:
        assert by_action[action]["Resource"] == table_resources
    assert by_action["sns:Publish"]["Resource"] == {"Ref": "Topic"}
    assert by_action["s3:PutObject"]["Resource"] == {"Fn::Sub": "${EvidenceBucket.Arn}/*"}


class _RecordingDynamo:
    """Stands in for a DynamoDB client to capture what create_table asks for."""

    def __init__(self) -> None:
        self.created: dict[str, Any] = {}
        self.ttl: dict[str, Any] = {}

    def create_table(self, **kwargs: Any) -> None:
        self.created = kwargs

    def get_waiter(self, name: str) -> Any:
        return type("Waiter", (), {"wait": lambda self, **kw: None})()

    def describe_time_to_live(self, **kwargs: Any) -> dict[str, Any]:
        return {"TimeToLiveDescription": {"TimeToLiveStatus": "DISABLED"}}

    def update_time_to_live(self, **kwargs: Any) -> None:
        self.ttl = kwargs["TimeToLiveSpecification"]


def _index_shapes(indexes: list[dict[str, Any]]) -> dict[str, Any]:
    return {i["IndexName"]: (i["KeySchema"], i["Projection"]) for i in indexes}


def test_table_matches_what_the_dynamodb_store_creates(template) -> None:
    recorder = _RecordingDynamo()
    dynamodb.create_table(recorder, "t")
    made = recorder.created
    props = one(template, "AWS::DynamoDB::Table")["Properties"]
    assert props["BillingMode"] == made["BillingMode"] == "PAY_PER_REQUEST"
    assert sorted(props["AttributeDefinitions"], key=str) == sorted(made["AttributeDefinitions"], key=str)
    assert props["KeySchema"] == made["KeySchema"]
    assert _index_shapes(props["GlobalSecondaryIndexes"]) == _index_shapes(made["GlobalSecondaryIndexes"])
    assert set(_index_shapes(props["GlobalSecondaryIndexes"])) == {dynamodb.INDEX_BY_INSTANCE, dynamodb.INDEX_BY_TIME}
    assert props["TimeToLiveSpecification"] == {"AttributeName": dynamodb.TTL_ATTRIBUTE, "Enabled": True} == {
        "AttributeName": recorder.ttl["AttributeName"],
        "Enabled": recorder.ttl["Enabled"],
    }
    assert props["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
    assert props["SSESpecification"] == {"SSEEnabled": True}


def test_function_runs_one_sweep_at_a_time_without_async_retries(template) -> None:
    function = one(template, "AWS::Lambda::Function")["Properties"]
    assert function["ReservedConcurrentExecutions"] == 1
    assert function["Runtime"] == "python3.12"
    assert function["Handler"] == "lambdas.heal.handler" and callable(heal.handler)
    assert function["VpcConfig"]["SubnetIds"] == {"Ref": "SubnetIds"}
    assert {"Ref": "TimeoutSeconds"} == function["Timeout"] and template["Parameters"]["TimeoutSeconds"]["MaxValue"] <= 900
    invoke_config = one(template, "AWS::Lambda::EventInvokeConfig")["Properties"]
    assert invoke_config["FunctionName"] == {"Ref": "Function"}
    assert invoke_config["MaximumRetryAttempts"] == 0


def test_mode_defaults_to_dry_run(template) -> None:
    mode = template["Parameters"]["Mode"]
    assert mode["Default"] == "dry-run" and mode["AllowedValues"] == ["dry-run", "heal"]
    assert template["Conditions"]["Heal"] == {"Fn::Equals": [{"Ref": "Mode"}, "heal"]}
    env = one(template, "AWS::Lambda::Function")["Properties"]["Environment"]["Variables"]
    assert env["ORCH_DRY_RUN"] == {"Fn::If": ["Heal", "false", "true"]}


def _resolve(value: Any, parameters: dict[str, str], heal_mode: bool) -> str:
    if isinstance(value, str):
        return value
    if "Ref" in value:
        return parameters[value["Ref"]]
    if "Fn::Sub" in value:
        return sub(value["Fn::Sub"], {**SAMPLE, **parameters})
    if "Fn::If" in value:
        condition, when_true, when_false = value["Fn::If"]
        assert condition == "Heal"
        return when_true if heal_mode else when_false
    raise AssertionError(f"unexpected intrinsic {value}")


@pytest.mark.parametrize("mode", ["dry-run", "heal"])
def test_the_environment_the_template_sets_is_valid_orch_configuration(template, mode) -> None:
    parameters = {name: str(p.get("Default", "")) for name, p in template["Parameters"].items()}
    parameters.update(
        Mode=mode, StateTable="orch-StateTable-1", Topic="arn:aws:sns:us-east-1:123456789012:orch-Topic",
        EvidenceBucket="orch-evidencebucket-1", SelectorKey="team:fleet", SelectorValue="web", MaxUnhealthy="5",
    )
    env = one(template, "AWS::Lambda::Function")["Properties"]["Environment"]["Variables"]
    resolved = {name: _resolve(value, parameters, mode == "heal") for name, value in env.items()}
    settings = load_settings(environ=resolved)
    assert settings.dry_run is (mode == "dry-run")
    assert settings.state == "dynamodb://orch-StateTable-1"
    assert settings.selector == {"team:fleet": "web"}
    assert settings.notify.topic_arn == parameters["Topic"] and settings.evidence.bucket == "orch-evidencebucket-1"
    assert settings.safety.max_unhealthy == "5" and settings.probe.port == 22
    assert settings.memory.ssm_document == "AWS-RunShellScript"


def test_breaker_alarm_watches_the_metric_the_handler_publishes(template) -> None:
    alarm = resources(template, "AWS::CloudWatch::Alarm")["BreakerAlarm"]["Properties"]
    assert (alarm["Namespace"], alarm["MetricName"]) == (heal.METRIC_NAMESPACE, "BreakerTripped")
    (dimension,) = alarm["Dimensions"]
    assert dimension["Name"] == "Selector"
    selector_env = one(template, "AWS::Lambda::Function")["Properties"]["Environment"]["Variables"]["ORCH_SELECTOR"]
    assert dimension["Value"] == selector_env  # the same "key=value" text the handler derives
    assert heal.selector_dimension({"team:fleet": "web"}) == sub(dimension["Value"]["Fn::Sub"])
    errors = resources(template, "AWS::CloudWatch::Alarm")["ErrorsAlarm"]["Properties"]
    assert (errors["Namespace"], errors["MetricName"]) == ("AWS/Lambda", "Errors")
    assert errors["Dimensions"] == [{"Name": "FunctionName", "Value": {"Ref": "Function"}}]
    for props in (alarm, errors):
        assert props["AlarmActions"] == [{"Ref": "Topic"}]


def test_security_group_allows_only_ssh_in_the_vpc_and_https_out(template) -> None:
    group = one(template, "AWS::EC2::SecurityGroup")["Properties"]
    assert "SecurityGroupIngress" not in group
    rules = {(r["IpProtocol"], json.dumps(r["FromPort"]), json.dumps(r["ToPort"]), json.dumps(r["CidrIp"])) for r in group["SecurityGroupEgress"]}
    assert rules == {
        ("tcp", '{"Ref": "ProbePort"}', '{"Ref": "ProbePort"}', '{"Ref": "VpcCidr"}'),
        ("tcp", "443", "443", '"0.0.0.0/0"'),
    }


def test_evidence_bucket_is_private_encrypted_tls_only_and_expires(template) -> None:
    bucket = template["Resources"]["EvidenceBucket"]["Properties"]
    assert bucket["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]["ServerSideEncryptionByDefault"]["SSEAlgorithm"]
    assert all(bucket["PublicAccessBlockConfiguration"].values()) and len(bucket["PublicAccessBlockConfiguration"]) == 4
    (rule,) = bucket["LifecycleConfiguration"]["Rules"]
    assert rule["Status"] == "Enabled" and rule["ExpirationInDays"] == {"Ref": "EvidenceRetentionDays"}
    policy = one(template, "AWS::S3::BucketPolicy")["Properties"]
    assert policy["Bucket"] == {"Ref": "EvidenceBucket"}
    (deny,) = policy["PolicyDocument"]["Statement"]
    assert deny["Effect"] == "Deny" and deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}


def test_schedule_invokes_the_function_with_permission(template) -> None:
    rule = one(template, "AWS::Events::Rule")["Properties"]
    assert rule["ScheduleExpression"] == {"Ref": "Schedule"} and template["Parameters"]["Schedule"]["Default"] == "rate(5 minutes)"
    assert rule["Targets"][0]["Arn"] == {"Fn::GetAtt": ["Function", "Arn"]}
    permission = one(template, "AWS::Lambda::Permission")["Properties"]
    assert permission["Principal"] == "events.amazonaws.com"
    assert permission["SourceArn"] == {"Fn::GetAtt": ["ScheduleRule", "Arn"]}


def test_notification_email_is_optional(template) -> None:
    assert template["Parameters"]["NotificationEmail"]["Default"] == ""
    subscription = one(template, "AWS::SNS::Topic")["Properties"]["Subscription"]
    assert subscription["Fn::If"][0] == "HasEmail" and subscription["Fn::If"][2] == {"Ref": "AWS::NoValue"}


def test_log_group_has_retention_and_is_the_functions(template) -> None:
    group = one(template, "AWS::Logs::LogGroup")["Properties"]
    assert group["RetentionInDays"] == {"Ref": "LogRetentionDays"}
    logging = one(template, "AWS::Lambda::Function")["Properties"]["LoggingConfig"]
    assert logging["LogGroup"] == {"Ref": "LogGroup"}


def test_retained_resources_match_what_destroy_reports(template) -> None:
    retained = {r["Type"] for r in template["Resources"].values() if r.get("DeletionPolicy") == "Retain"}
    assert retained == deploy.RETAINED_TYPES


def test_the_state_store_output_is_what_orch_state_takes(template) -> None:
    assert template["Outputs"]["StateStore"]["Value"] == {"Fn::Sub": "dynamodb://${StateTable}"}


def test_deploy_sets_exactly_the_code_parameters_the_template_declares(template) -> None:
    no_default = {name for name, p in template["Parameters"].items() if "Default" not in p}
    assert deploy.MANAGED_PARAMETERS <= set(template["Parameters"])
    assert no_default - deploy.MANAGED_PARAMETERS == {"VpcId", "VpcCidr", "SubnetIds"}

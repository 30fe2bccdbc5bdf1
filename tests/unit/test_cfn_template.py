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
from orchestrator.config import load_settings
from orchestrator.deploy import stack as deploy
from orchestrator.deploy.template import MANAGED_PARAMETERS
from orchestrator.iam import permissions
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
        "ec2:DescribeSpotInstanceRequests",
        "ec2:DescribeInstanceTypes",
        "cloudwatch:GetMetricData",
        "cloudwatch:ListMetrics",
        "autoscaling:DescribeAutoScalingInstances",
        "ssm:DescribeInstanceInformation",
        "ssm:GetCommandInvocation",  # orch guard reads each box's answer; the action takes no resource type
    }
)
# The stack's optional features, each as the parameters that turn it on.
FEATURES = {
    "none": {},
    "run-command": {"MemoryProactive": "ssm", "SsmCommands": "systemctl restart crawler"},
    "chronic-restart": {"SsmCommands": "systemctl restart crawler"},  # chronic.action = auto restarts
    "diagnostic-interrupt": {"DiagnosticInterrupt": "true"},
    "both": {"MemoryProactive": "ssm", "SsmCommands": "systemctl restart crawler", "DiagnosticInterrupt": "true"},
}
ALL_ON = FEATURES["both"]
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


def parameters_with(template: dict[str, Any], **given: str) -> dict[str, str]:
    """Every parameter's value: its default unless given."""
    values = {name: str(p.get("Default", "")) for name, p in template["Parameters"].items()}
    values.update(given)
    return values


def condition_true(template: dict[str, Any], name: str, parameters: dict[str, str]) -> bool:
    """Evaluate one of the template's Conditions (Equals / Not over Refs and literals)."""

    def value(node: Any) -> Any:
        if isinstance(node, dict) and "Ref" in node:
            return parameters[node["Ref"]]
        if isinstance(node, dict) and "Fn::Equals" in node:
            left, right = node["Fn::Equals"]
            return str(value(left)) == str(value(right))
        if isinstance(node, dict) and "Fn::Not" in node:
            (inner,) = node["Fn::Not"]
            return not value(inner)
        if isinstance(node, dict) and "Fn::Or" in node:
            return any(value(inner) for inner in node["Fn::Or"])
        if isinstance(node, dict) and "Condition" in node:
            return condition_true(template, node["Condition"], parameters)
        if isinstance(node, dict):
            raise AssertionError(f"unexpected condition function {node}")
        return node

    return bool(value(template["Conditions"][name]))


def role_policies(template: dict[str, Any], **given: str) -> Iterator[dict[str, Any]]:
    """The role's inline policies and the AWS::IAM::Policy resources attached to it whose
    condition holds for these parameters."""
    yield from one(template, "AWS::IAM::Role")["Properties"]["Policies"]
    parameters = parameters_with(template, **given)
    for resource in resources(template, "AWS::IAM::Policy").values():
        assert resource["Properties"]["Roles"] == [{"Ref": "Role"}]
        if "Condition" not in resource or condition_true(template, resource["Condition"], parameters):
            yield resource["Properties"]


def policy_statements(template: dict[str, Any], **given: str) -> Iterator[tuple[str, dict[str, Any]]]:
    """Every statement of the role's policies for these parameters, JSON-string documents resolved."""
    for policy in role_policies(template, **given):
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


@pytest.mark.parametrize("feature", sorted(FEATURES))
def test_role_grants_exactly_what_the_enabled_features_call(template, feature) -> None:
    """granted == used, per combination of the stack's feature parameters: the settings
    are those the function's environment produces, so parameter -> setting -> grant is
    one chain."""
    given = FEATURES[feature]
    granted = {a for _, s in policy_statements(template, **given) if s["Effect"] == "Allow" for a in actions_of(s)}
    assert granted & PLATFORM_ACTIONS == PLATFORM_ACTIONS
    orch = granted - PLATFORM_ACTIONS
    needed = permissions.for_settings(function_settings(template, **given))
    assert sorted(needed - orch) == [], "missing from the role"
    assert sorted(orch - needed) == [], "granted but never called"
    assert not any("*" in a for a in granted), "no wildcard actions"
    assert not orch & permissions.CLI_ONLY, "only `orch resume` deletes from the table"


def test_features_off_grant_neither_a_shell_nor_a_panic(template) -> None:
    granted = {a for _, s in policy_statements(template) for a in actions_of(s)}
    assert not granted & (permissions.RUN_COMMAND | permissions.DIAGNOSTIC_INTERRUPT)


SSM_DOCUMENT_ARNS = [
    "arn:aws:ssm:us-east-1::document/AWS-RunShellScript",  # AWS-owned: no account
    "arn:aws:ssm:us-east-1:123456789012:document/AWS-RunShellScript",  # the account's own
]


def test_send_command_names_its_one_document_aws_owned_or_the_accounts(template) -> None:
    """A custom SsmDocument lives under the account's ARN: the empty account field alone denied it."""
    statements = [s for _, s in policy_statements(template, **ALL_ON) if s.get("Sid") == "RunCommandDocument"]
    (statement,) = statements
    assert statement["Resource"] == SSM_DOCUMENT_ARNS and "Condition" not in statement
    custom = json.loads(sub(template_policy_text(template, "run-command"), {**SAMPLE, "SsmDocument": "team-restart"}))
    (resources,) = [s["Resource"] for s in custom["Statement"] if s["Sid"] == "RunCommandDocument"]
    assert "arn:aws:ssm:us-east-1:123456789012:document/team-restart" in resources


def template_policy_text(template: dict[str, Any], name: str) -> str:
    for policy in role_policies(template, **ALL_ON):
        if policy.get("PolicyName") == name:
            return str(policy["PolicyDocument"]["Fn::Sub"])
    raise AssertionError(f"no policy {name}")


def test_every_mutating_action_is_conditioned_on_the_selector_tag(template) -> None:
    """One documented exception: ssm:SendCommand also needs its document, which has no tag,
    so a separate statement grants it on that one named document and nothing else."""
    tag_condition = {"StringEquals": {f"aws:ResourceTag/{SAMPLE['SelectorKey']}": SAMPLE["SelectorValue"]}}
    mutate = permissions.MUTATE | permissions.DIAGNOSTIC_INTERRUPT | {"ssm:SendCommand"}
    seen = set()
    for _, statement in policy_statements(template, **ALL_ON):
        mutating = set(actions_of(statement)) & mutate
        if not mutating:
            continue
        if statement["Resource"] == SSM_DOCUMENT_ARNS:
            assert mutating == {"ssm:SendCommand"} and "Condition" not in statement
            continue
        assert statement.get("Condition") == tag_condition, statement
        assert statement["Resource"].endswith(":instance/*") or ":autoScalingGroup:" in statement["Resource"]
        seen |= mutating
    assert seen == mutate
    by_action = {
        a: s for _, s in policy_statements(template, **ALL_ON) for a in actions_of(s) if s["Resource"] != SSM_DOCUMENT_ARNS
    }
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
    for action in dynamodb.PERMISSIONS - dynamodb.CLI_ONLY_PERMISSIONS:
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


def test_reserved_concurrency_is_optional_and_off_by_default(template) -> None:
    """New accounts often have a concurrency quota of 10, and Lambda refuses any reservation
    leaving fewer than 100 unreserved: a fixed reservation made stack creation fail."""
    function = one(template, "AWS::Lambda::Function")["Properties"]
    assert function["ReservedConcurrentExecutions"] == {
        "Fn::If": ["HasReservedConcurrency", {"Ref": "ReservedConcurrency"}, {"Ref": "AWS::NoValue"}]
    }
    assert not condition_true(template, "HasReservedConcurrency", parameters_with(template))
    assert condition_true(template, "HasReservedConcurrency", parameters_with(template, ReservedConcurrency="1"))


def test_function_runs_without_async_retries(template) -> None:
    function = one(template, "AWS::Lambda::Function")["Properties"]
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


def _resolve(template: dict[str, Any], value: Any, parameters: dict[str, str]) -> str:
    if isinstance(value, str):
        return value
    if "Ref" in value:
        return {**SAMPLE, **parameters}[value["Ref"]]
    if "Fn::Sub" in value:
        return sub(value["Fn::Sub"], {**SAMPLE, **parameters})
    if "Fn::If" in value:
        condition, when_true, when_false = value["Fn::If"]
        return _resolve(template, when_true if condition_true(template, condition, parameters) else when_false, parameters)
    raise AssertionError(f"unexpected intrinsic {value}")


RESOURCE_NAMES = {
    "StateTable": "orch-StateTable-1",
    "Topic": "arn:aws:sns:us-east-1:123456789012:orch-Topic",
    "EvidenceBucket": "orch-evidencebucket-1",
    "VpcId": "vpc-0abc",
}


def function_environment(template: dict[str, Any], **given: str) -> dict[str, str]:
    parameters = parameters_with(template, SelectorKey="team:fleet", SelectorValue="web", **RESOURCE_NAMES, **given)
    env = one(template, "AWS::Lambda::Function")["Properties"]["Environment"]["Variables"]
    return {name: _resolve(template, value, parameters) for name, value in env.items()}


def function_settings(template: dict[str, Any], **given: str) -> Any:
    return load_settings(environ=function_environment(template, **given))


@pytest.mark.parametrize("mode", ["dry-run", "heal"])
def test_the_environment_the_template_sets_is_valid_orch_configuration(template, mode) -> None:
    parameters = parameters_with(template, Mode=mode, MaxUnhealthy="5", **RESOURCE_NAMES)
    settings = function_settings(template, Mode=mode, MaxUnhealthy="5")
    assert settings.dry_run is (mode == "dry-run")
    assert settings.state == "dynamodb://orch-StateTable-1"
    assert settings.selector == {"team:fleet": "web"}
    assert settings.notify.topic_arn == parameters["Topic"] and settings.evidence.bucket == "orch-evidencebucket-1"
    assert settings.safety.max_unhealthy == "5" and settings.probe.port == 22
    assert settings.memory.ssm_document == "AWS-RunShellScript"
    assert settings.vpc_id == "vpc-0abc"  # a deployed sweep manages its own VPC only
    assert settings.sweep_interval_minutes == 5.0
    assert settings.memory.proactive == "off" and settings.evidence.diagnostic_interrupt is False
    assert settings.memory.ssm_commands == ()


def test_feature_parameters_reach_the_settings_that_use_them(template) -> None:
    settings = function_settings(template, **ALL_ON, SsmDocument="team-restart", ScheduleMinutes="15")
    assert settings.memory.proactive == "ssm" and settings.memory.ssm_commands == ("systemctl restart crawler",)
    assert settings.memory.ssm_document == "team-restart" and settings.evidence.diagnostic_interrupt is True
    assert settings.sweep_interval_minutes == 15.0


@pytest.mark.parametrize(("minutes", "expression"), [("5", "rate(5 minutes)"), ("1", "rate(1 minute)"), ("60", "rate(60 minutes)")])
def test_the_schedule_is_the_interval_the_function_is_told(template, minutes, expression) -> None:
    rule = one(template, "AWS::Events::Rule")["Properties"]
    parameters = parameters_with(template, ScheduleMinutes=minutes)
    assert _resolve(template, rule["ScheduleExpression"], parameters) == expression
    assert function_settings(template, ScheduleMinutes=minutes).sweep_interval_minutes == float(minutes)


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


def test_the_fleet_ingress_rule_is_offered_and_the_lambda_group_is_an_output(template) -> None:
    """Nothing else opens the fleet's security groups to the probes (docs/deploy.md)."""
    ingress = template["Resources"]["FleetIngress"]
    assert ingress["Type"] == "AWS::EC2::SecurityGroupIngress" and ingress["Condition"] == "HasFleetGroup"
    rule = ingress["Properties"]
    assert rule["GroupId"] == {"Ref": "FleetSecurityGroupId"} and rule["SourceSecurityGroupId"] == {"Ref": "SecurityGroup"}
    assert (rule["IpProtocol"], rule["FromPort"], rule["ToPort"]) == ("tcp", {"Ref": "ProbePort"}, {"Ref": "ProbePort"})
    assert not condition_true(template, "HasFleetGroup", parameters_with(template))
    assert condition_true(template, "HasFleetGroup", parameters_with(template, FleetSecurityGroupId="sg-0123456789abcdef0"))
    assert template["Outputs"]["LambdaSecurityGroupId"]["Value"] == {"Ref": "SecurityGroup"}


def test_the_selector_value_parameter_refuses_wildcards(template) -> None:
    pattern = re.compile(template["Parameters"]["SelectorValue"]["AllowedPattern"])
    assert pattern.fullmatch("web") and pattern.fullmatch("")
    assert not pattern.fullmatch("*") and not pattern.fullmatch("web?")


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
    assert template["Parameters"]["ScheduleMinutes"]["Default"] == 5
    assert rule["Targets"][0]["Arn"] == {"Fn::GetAtt": ["Function", "Arn"]}
    permission = one(template, "AWS::Lambda::Permission")["Properties"]
    assert permission["Principal"] == "events.amazonaws.com"
    assert permission["SourceArn"] == {"Fn::GetAtt": ["ScheduleRule", "Arn"]}


def test_webhooks_are_a_secret_parameter_that_reaches_the_settings(template) -> None:
    parameter = template["Parameters"]["NotifyWebhooks"]
    assert parameter["NoEcho"] is True and parameter["Default"] == ""
    assert function_settings(template).notify.webhooks == ()
    given = '[{"url": "https://events.example/v2/enqueue", "format": "pagerduty", "routing_key": "K"}]'
    (target,) = function_settings(template, NotifyWebhooks=given).notify.webhooks
    assert target.format == "pagerduty" and target.routing_key is not None and target.routing_key.get_secret_value() == "K"


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
    assert MANAGED_PARAMETERS <= set(template["Parameters"])
    assert no_default - MANAGED_PARAMETERS == {"VpcId", "VpcCidr", "SubnetIds"}


def test_the_stack_registers_its_healer_for_manual_runs_to_find(template):
    """orchestrator/estate/registry.py reads this parameter: a manual `orch heal` uses this store and lease."""
    from orchestrator.estate import registry

    registration = one(template, "AWS::SSM::Parameter")["Properties"]
    assert sub(registration["Name"]["Fn::Sub"]) == "/orch/healers/orch"
    text = registration["Value"]["Fn::Sub"]
    values = {**parameters_with(template, **RESOURCE_NAMES), **SAMPLE, "StateTable": "orch-StateTable-1"}
    healer = registry.parse("/orch/healers/orch", sub(text, values))
    assert healer == registry.Healer("orch", "us-east-1", "123456789012", "vpc-0abc", {"team:fleet": "web"}, "dynamodb://orch-StateTable-1", "dry-run")
    assert function_settings(template).stack == "orch"  # the function knows which registration is its own


def test_the_guard_association_is_opt_in_and_runs_the_script_orch_generates(template) -> None:
    from orchestrator.guard.association import LIMITS, high_for, template_commands

    params = template["Parameters"]
    assert params["GuardAssociation"]["Default"] == "false"  # opt in: a root script on every selected box
    guard = template["Resources"]["HostGuard"]
    assert guard["Type"] == "AWS::SSM::Association" and guard["Condition"] == "UseGuard"
    assert template["Conditions"]["UseGuard"] == {"Fn::Equals": [{"Ref": "GuardAssociation"}, "true"]}
    props = guard["Properties"]
    assert props["Name"] == "AWS-RunShellScript"
    assert props["Targets"] == [{"Key": {"Fn::Sub": "tag:${SelectorKey}"}, "Values": [{"Ref": "SelectorValue"}]}]
    assert props["Parameters"]["commands"] == template_commands(), "regenerate with: python -m orchestrator.guard.association"
    assert params["GuardLimitPercent"]["AllowedValues"] == list(LIMITS)
    assert {k: v["High"] for k, v in template["Mappings"]["GuardHigh"].items()} == {v: high_for(v) for v in LIMITS}
    # The process goes into a shell line inside single quotes: the pattern admits no quote, space or $.
    import re

    pattern = re.compile(params["GuardProcess"]["AllowedPattern"])
    assert pattern.match("ruby") and pattern.match("") and not any(pattern.match(x) for x in ("ru'by", "a b", "$(x)", "x" * 16))


def test_the_guard_association_widens_no_role(template) -> None:
    """It runs as the instances' SSM agent: the function's role is the same with it on or off."""
    off = {a for _, s in policy_statements(template) for a in actions_of(s)}
    on = {a for _, s in policy_statements(template, GuardAssociation="true", GuardProcess="ruby") for a in actions_of(s)}
    assert on == off

"""The fault injector itself: per protocol, the injected code reaches the caller through
botocore's real parser and retry policy, and attempts are counted per operation."""

from __future__ import annotations

import io
from typing import Any, Iterator

import boto3
import botocore.model
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError, ReadTimeoutError
from botocore.parsers import RpcV2CBORParser
from moto import mock_aws

from orchestrator.aws import Clients
from tests.aws.conftest import REGION, launch
from tests.faults import (
    THROTTLING_CODES,
    FaultPlan,
    access_denied,
    encode_cbor,
    error,
    no_backoff,
    read_timeout,
    server_error,
    succeed,
    throttle,
)

READS = Config(retries={"mode": "standard", "max_attempts": 2})  # 3 attempts in all
ONE_SHOT = Config(retries={"mode": "standard", "total_max_attempts": 1})
LOOPBACK_DISCARD = "http://127.0.0.1:9"  # where an unanswered request would go: refused on loopback


@pytest.fixture(autouse=True)
def backoffs(monkeypatch: pytest.MonkeyPatch) -> Any:
    return no_backoff(monkeypatch)


@pytest.fixture(scope="module")
def moto() -> Iterator[None]:
    """One moto for the module: these tests make their own clients and instances, and
    resetting moto's backends per test costs more than all the tests together."""
    with mock_aws():
        yield


def client(service: str, config: Config = READS, **kwargs: Any) -> Any:
    return boto3.client(service, region_name=REGION, config=config, **kwargs)


def total_attempts(made: Any) -> int:
    return int(made.meta.config.retries["total_max_attempts"])


# -- ec2 protocol ----------------------------------------------------------------------


@pytest.mark.parametrize("code", ["RequestLimitExceeded", "Throttling", "ThrottlingException"])
def test_ec2_throttle_once_is_retried_by_botocore(moto, code, backoffs):
    plan = FaultPlan().on("DescribeRegions", calls={1}, fault=throttle(code))
    ec2 = plan.attach(client("ec2"))
    reply = ec2.describe_regions()
    assert reply["Regions"] and reply["ResponseMetadata"]["RetryAttempts"] == 1
    assert plan.attempts("DescribeRegions") == 2
    assert [(r.number, r.fault) for r in plan.log] == [(1, f"400 {code}"), (2, None)]
    assert backoffs.botocore and backoffs.botocore[0] <= 1.0  # the throttling base scale was used, not slept


@pytest.mark.parametrize("code", THROTTLING_CODES)
def test_ec2_throttle_every_attempt_surfaces_the_code(moto, code):
    plan = FaultPlan().on("DescribeInstances", fault=throttle(code, status=429 if code == "RateExceeded" else 400))
    ec2 = plan.attach(client("ec2"))
    with pytest.raises(ClientError) as caught:
        ec2.describe_instances()
    assert caught.value.response["Error"]["Code"] == code
    assert caught.value.response["Error"]["Message"] == "Rate exceeded."
    assert plan.attempts("DescribeInstances") == total_attempts(ec2) == 3


def test_rate_exceeded_is_not_a_botocore_throttling_code(moto):
    """botocore's standard mode lists no ``RateExceeded``: with a 400 it is not retried at
    all (a 429, as above, is retried for its status). orch's reads see it at once."""
    plan = FaultPlan().on("DescribeInstances", calls={1}, fault=throttle("RateExceeded"))
    ec2 = plan.attach(client("ec2"))
    with pytest.raises(ClientError, match="RateExceeded"):
        ec2.describe_instances()
    assert plan.attempts("DescribeInstances") == 1


def test_ec2_arbitrary_codes_are_not_retried(moto):
    plan = FaultPlan().on("RebootInstances", fault=error("IncorrectInstanceState", "The instance 'i-1' is not in a state from which it can be rebooted."))
    ec2 = plan.attach(client("ec2"))
    with pytest.raises(ClientError) as caught:
        ec2.reboot_instances(InstanceIds=["i-0123456789abcdef0"])
    assert caught.value.response["Error"]["Code"] == "IncorrectInstanceState"
    assert "not in a state" in caught.value.response["Error"]["Message"]
    assert plan.attempts("RebootInstances") == 1


@pytest.mark.parametrize("code", ["UnauthorizedOperation", "AccessDenied"])
def test_ec2_access_denied_surfaces_with_403(moto, code):
    plan = FaultPlan().on("DescribeInstances", fault=access_denied(code))
    ec2 = plan.attach(client("ec2"))
    with pytest.raises(ClientError) as caught:
        ec2.describe_instances()
    assert caught.value.response["Error"]["Code"] == code
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    assert plan.attempts("DescribeInstances") == 1


@pytest.mark.parametrize("status", [500, 503])
@pytest.mark.parametrize("body", [True, False])
def test_ec2_5xx_is_retried_with_or_without_a_body(moto, status, body):
    plan = FaultPlan().on("DescribeRegions", calls={1, 2}, fault=server_error(status, body=body))
    ec2 = plan.attach(client("ec2"))
    assert ec2.describe_regions()["ResponseMetadata"]["RetryAttempts"] == 2
    plan.on("DescribeAvailabilityZones", fault=server_error(status, body=body))
    with pytest.raises(ClientError) as caught:
        ec2.describe_availability_zones()
    expected = {500: "InternalError", 503: "ServiceUnavailable"}[status] if body else str(status)
    assert caught.value.response["Error"]["Code"] == expected
    assert plan.attempts("DescribeAvailabilityZones") == 3


def test_read_timeout_raised_in_before_send_is_retried_as_a_transport_error(moto):
    plan = FaultPlan().on("DescribeRegions", calls={1}, fault=read_timeout())
    ec2 = plan.attach(client("ec2"))
    assert ec2.describe_regions()["ResponseMetadata"]["RetryAttempts"] == 1
    plan.on("DescribeAvailabilityZones", fault=read_timeout())
    with pytest.raises(ReadTimeoutError):
        ec2.describe_availability_zones()
    assert plan.attempts("DescribeAvailabilityZones") == 3


# -- moto stays out of answered calls, unless the fault says the call reached it ----------


@pytest.fixture(scope="module")
def fleet(moto: None) -> tuple[Clients, str]:
    aws = Clients(boto3.Session(region_name=REGION))
    vpc = aws.ec2.create_vpc(CidrBlock="127.20.0.0/16")["Vpc"]["VpcId"]
    subnet = aws.ec2.create_subnet(VpcId=vpc, CidrBlock="127.20.1.0/24", AvailabilityZone=f"{REGION}a")["Subnet"]["SubnetId"]
    return aws, subnet


def state(aws: Clients, instance_id: str) -> str:
    return str(aws.ec2.describe_instances(InstanceIds=[instance_id])["Reservations"][0]["Instances"][0]["State"]["Name"])


def test_an_answered_call_never_reaches_moto(fleet):
    """register_first alone would not do: botocore emits before-send to every handler."""
    aws, subnet = fleet
    (instance_id,) = launch(aws, subnet, 1)
    plan = FaultPlan().on("StopInstances", fault=throttle())
    ec2 = plan.attach(client("ec2", ONE_SHOT))
    with pytest.raises(ClientError, match="RequestLimitExceeded"):
        ec2.stop_instances(InstanceIds=[instance_id])
    assert state(aws, instance_id) == "running"
    assert plan.reached_server("StopInstances") == []


def test_a_reply_lost_after_the_server_ran_the_call(fleet):
    aws, subnet = fleet
    (instance_id,) = launch(aws, subnet, 1)
    plan = FaultPlan().on("StopInstances", fault=read_timeout(), reaches_server=True)
    ec2 = plan.attach(client("ec2", ONE_SHOT))
    with pytest.raises(ReadTimeoutError):
        ec2.stop_instances(InstanceIds=[instance_id])
    assert state(aws, instance_id) in ("stopping", "stopped")
    assert [r.number for r in plan.reached_server("StopInstances")] == [1]


def test_unfaulted_calls_still_reach_moto_and_are_logged(fleet):
    aws, subnet = fleet
    ids = launch(aws, subnet, 2)
    plan = FaultPlan().on("RebootInstances", when=lambda call: ids[1] in call.instance_ids(), fault=error("InvalidInstanceID.NotFound"))
    ec2 = plan.attach(client("ec2", ONE_SHOT))
    ec2.reboot_instances(InstanceIds=[ids[0]])
    with pytest.raises(ClientError, match="InvalidInstanceID.NotFound"):
        ec2.reboot_instances(InstanceIds=ids)
    assert [(r.number, r.fault, r.reached_server) for r in plan.log] == [(1, None, True), (2, "400 InvalidInstanceID.NotFound", False)]
    assert plan.log[1].params["InstanceId.2"] == [ids[1]]


# -- counting and attaching ------------------------------------------------------------


def test_attempts_are_numbered_per_operation_and_service(moto):
    plan = FaultPlan().on("DescribeRegions", calls={2}, fault=throttle())
    ec2 = plan.attach(client("ec2"))
    ec2.describe_regions()  # 1: through
    ec2.describe_availability_zones()  # its own count: not faulted
    ec2.describe_regions()  # 2: throttled, 3: through
    assert plan.attempts("DescribeRegions") == 3 and plan.attempts("DescribeAvailabilityZones") == 1
    assert [(r.operation, r.number, r.fault is not None) for r in plan.log] == [
        ("DescribeRegions", 1, False),
        ("DescribeAvailabilityZones", 1, False),
        ("DescribeRegions", 2, True),
        ("DescribeRegions", 3, False),
    ]
    assert plan.attempts("DescribeRegions", service="ec2") == 3 and plan.attempts("DescribeRegions", service="sns") == 0


def test_attach_clients_hooks_current_and_future_clients_once(moto):
    aws = Clients(boto3.Session(region_name=REGION))
    aws.ec2  # made before the plan
    plan = FaultPlan().on("ListTopics", calls={1}, fault=throttle("Throttling"))
    plan.attach_clients(aws)
    plan.attach(aws.ec2)  # idempotent: still one hook, one count per attempt
    aws.ec2.describe_regions()
    aws.client("sns").list_topics()  # made after
    assert plan.attempts("DescribeRegions") == 1
    assert plan.attempts("ListTopics") == 2
    assert aws.counter.snapshot() == {"ec2.DescribeRegions": 1, "sns.ListTopics": 1}  # API calls, not attempts


def test_install_hooks_every_clients_instance(moto, monkeypatch):
    plan = FaultPlan().on("DescribeRegions", fault=access_denied("UnauthorizedOperation")).install(monkeypatch)
    with pytest.raises(ClientError, match="UnauthorizedOperation"):
        Clients(boto3.Session(region_name=REGION)).ec2.describe_regions()
    assert plan.attempts("DescribeRegions") == 1


# -- query protocol (autoscaling, sns) ---------------------------------------------------


def test_query_protocol_throttle_once_then_every_time(moto):
    plan = FaultPlan().on("DescribeAutoScalingGroups", calls={1}, fault=throttle("Throttling"))
    asg = plan.attach(client("autoscaling"))
    assert asg.meta.service_model.resolved_protocol == "query"
    assert asg.describe_auto_scaling_groups()["ResponseMetadata"]["RetryAttempts"] == 1
    plan.on("DescribeAutoScalingInstances", fault=throttle("Throttling"))
    with pytest.raises(ClientError) as caught:
        asg.describe_auto_scaling_instances(InstanceIds=["i-0123456789abcdef0"])
    assert caught.value.response["Error"]["Code"] == "Throttling"
    assert caught.value.response["Error"]["Type"] == "Sender"
    assert plan.attempts("DescribeAutoScalingInstances") == 3


def test_query_protocol_access_denied_sns(moto):
    plan = FaultPlan().on("Publish", fault=access_denied("AuthorizationError"))
    sns = plan.attach(client("sns"))
    with pytest.raises(ClientError) as caught:
        sns.publish(TopicArn="arn:aws:sns:us-east-1:123456789012:orch", Message="x")
    assert caught.value.response["Error"]["Code"] == "AuthorizationError"
    assert plan.attempts("Publish") == 1


# -- json protocol (dynamodb, and CloudWatch as this botocore speaks it) -----------------


@pytest.mark.parametrize("code", ["ProvisionedThroughputExceededException", "ThrottlingException"])
def test_json_protocol_dynamodb_throttle(moto, code):
    plan = FaultPlan().on("ListTables", calls={1}, fault=throttle(code))
    ddb = plan.attach(client("dynamodb"))
    assert ddb.list_tables()["ResponseMetadata"]["RetryAttempts"] == 1
    plan.on("DescribeLimits", fault=throttle(code))
    with pytest.raises(ClientError) as caught:
        ddb.describe_limits()
    assert caught.value.response["Error"]["Code"] == code
    assert plan.attempts("DescribeLimits") == 3


def test_cloudwatch_resolves_to_json_although_its_model_lists_cbor_first(moto):
    plan = FaultPlan().on("GetMetricData", calls={1}, fault=throttle("Throttling"))
    cw = plan.attach(client("cloudwatch"))
    assert cw.meta.service_model.protocol == "smithy-rpc-v2-cbor"
    assert cw.meta.service_model.resolved_protocol == "json"  # what goes on the wire here
    reply = cw.get_metric_data(MetricDataQueries=[], StartTime=0, EndTime=60)
    assert reply["ResponseMetadata"]["RetryAttempts"] == 1
    plan.on("ListMetrics", fault=throttle("Throttling"))
    with pytest.raises(ClientError) as caught:
        cw.list_metrics()
    # query-compatible: the code comes from x-amzn-query-error, as CloudWatch sends it
    assert caught.value.response["Error"]["Code"] == "Throttling"
    assert caught.value.response["Error"]["Type"] == "Sender"
    assert plan.attempts("ListMetrics") == 3


# -- smithy-rpc-v2-cbor ------------------------------------------------------------------


def test_cbor_encoding_reads_back_through_botocores_parser():
    value = {"__type": "com.amazonaws.x#Throttling", "message": "é" * 30, "n": [0, 23, 24, 255, 256, 70000, -1, -300], "ok": True, "none": None, "f": 1.5, "b": b"\x00\x01"}
    parsed = RpcV2CBORParser().parse_data_item(io.BufferedReader(io.BytesIO(encode_cbor(value))))  # type: ignore[arg-type]
    assert parsed == {k: v for k, v in value.items() if v is not None}  # botocore drops null map values


def test_cbor_protocol_service_throttle_then_success():
    """cloudwatchomni resolves to smithy-rpc-v2-cbor only; every attempt is answered by
    the plan (the endpoint is loopback, so a miss would be refused, never sent out)."""
    plan = (
        FaultPlan()
        .on("ListDomains", calls={1}, fault=throttle("ThrottlingException"))
        .on("ListDomains", calls={2}, fault=succeed({"items": [], "nextToken": "page-2"}))
        .on("ListSpaces", fault=throttle("ThrottlingException"))
    )
    omni = plan.attach(client("cloudwatchomni", endpoint_url=LOOPBACK_DISCARD))
    assert omni.meta.service_model.resolved_protocol == "smithy-rpc-v2-cbor"
    reply = omni.list_domains()
    assert reply["nextToken"] == "page-2" and reply["ResponseMetadata"]["RetryAttempts"] == 1
    with pytest.raises(ClientError) as caught:
        omni.list_spaces(domainId="d")
    assert caught.value.response["Error"]["Code"] == "ThrottlingException"
    assert plan.attempts("ListSpaces") == 3


def test_cloudwatch_forced_to_cbor_parses_the_injected_throttle(monkeypatch):
    """Should botocore start preferring CBOR for CloudWatch, the plan follows it."""
    original = botocore.model.ServiceModel.resolved_protocol

    def resolved(self: Any) -> str:
        return "smithy-rpc-v2-cbor" if self.service_name == "cloudwatch" else original.fget(self)  # type: ignore[attr-defined]

    monkeypatch.setattr(botocore.model.ServiceModel, "resolved_protocol", property(resolved))
    plan = (
        FaultPlan()
        .on("GetMetricData", calls={1}, fault=throttle("Throttling"))
        .on("GetMetricData", calls={2}, fault=succeed({"MetricDataResults": [{"Id": "m0", "Label": "mem", "Values": [42.5], "Timestamps": []}]}))
    )
    cw = plan.attach(client("cloudwatch", endpoint_url=LOOPBACK_DISCARD))
    reply = cw.get_metric_data(MetricDataQueries=[], StartTime=0, EndTime=60)
    assert reply["MetricDataResults"][0]["Values"] == [42.5]
    assert [r.fault for r in plan.log] == ["400 Throttling", "200 (scripted)"]

"""An AccessDenied names the IAM action to grant, found from the call itself (aws.py imports no adapter)."""

from __future__ import annotations

import boto3
import botocore.session
import pytest
from botocore.exceptions import ClientError
from botocore.stub import Stubber

from orchestrator.aws import Clients, describe_aws_error, iam_action
from orchestrator.iam.permissions import ALL


def _denied(service: str, operation: str, code: str, params: dict) -> ClientError:
    clients = Clients(boto3.Session(region_name="us-east-1"))
    client = clients.client(service)
    with Stubber(client) as stub:
        stub.add_client_error(_method(operation), service_error_code=code,
                              service_message="You are not authorized to perform this operation.", http_status_code=403)
        with pytest.raises(ClientError) as raised:
            getattr(client, _method(operation))(**params)
    return raised.value


def _method(operation: str) -> str:
    return botocore.xform_name(operation)


def test_ec2_unauthorized_operation_names_the_ec2_action():
    exc = _denied("ec2", "RebootInstances", "UnauthorizedOperation", {"InstanceIds": ["i-0123456789abcdef0"]})
    assert "lacks the IAM permission ec2:RebootInstances" in describe_aws_error(exc)


def test_cloudwatch_access_denied_names_the_cloudwatch_action():
    exc = _denied("cloudwatch", "ListMetrics", "AccessDenied", {})
    assert "lacks the IAM permission cloudwatch:ListMetrics" in describe_aws_error(exc)


def test_a_caller_that_knows_the_permission_wins():
    exc = _denied("ec2", "DescribeInstances", "UnauthorizedOperation", {})
    assert "lacks the IAM permission ec2:Special" in describe_aws_error(exc, permission="ec2:Special")


def test_other_errors_are_not_annotated():
    clients = Clients(boto3.Session(region_name="us-east-1"))
    client = clients.client("ec2")
    with Stubber(client) as stub:
        stub.add_client_error("describe_instances", service_error_code="InvalidParameterValue", http_status_code=400)
        with pytest.raises(ClientError) as raised:
            client.describe_instances()
    assert "OrchIamAction" not in raised.value.response
    assert "IAM" not in describe_aws_error(raised.value)


def test_every_action_orch_declares_is_the_one_its_operation_would_be_named():
    """The naming rule (service:Operation, S3's exceptions) agrees with every declaration."""
    session = botocore.session.get_session()
    named = set()
    for service in {p.partition(":")[0] for p in ALL}:
        model = session.get_service_model(service)
        named |= {iam_action(service, op) for op in model.operation_names}
    assert sorted(ALL - named) == []

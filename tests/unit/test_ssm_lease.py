"""The SSM lease adapter against Parameter Store's documented replies (botocore Stubber).

Moto is not AWS: these feed the shapes and errors of the PutParameter,
GetParametersByPath and DeleteParameter API references.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import boto3
import pytest
from botocore.stub import ANY, Stubber

from orchestrator.state import LeaseHeld, StateError, lease_scope
from orchestrator.state.ssm_lease import SsmLeases, parameter_path

T0 = datetime(2026, 1, 1, tzinfo=timezone.utc)
SCOPE = lease_scope("123456789012", "us-east-1", "vpc-0abc")
PATH = parameter_path(SCOPE)


def client():
    return boto3.client("ssm", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")


def parameter(n: int, owner: str, expires: datetime) -> dict:
    value = json.dumps({"owner": owner, "expires_at": expires.isoformat(), "fence": n})
    return {
        "Name": f"{PATH}/{n}", "Type": "String", "Value": value, "Version": 1, "LastModifiedDate": T0,
        "ARN": f"arn:aws:ssm:us-east-1:123456789012:parameter{PATH}/{n}", "DataType": "text",
    }


def test_the_path_is_the_region_and_vpc_only_and_a_valid_parameter_name():
    assert PATH == "/orch/lease/us-east-1/vpc-0abc"
    assert parameter_path(lease_scope("-", "us-east-1", None)) == "/orch/lease/us-east-1/all-vpcs"
    # the account is not in it: a caller that knows it and one that does not meet on one name
    assert parameter_path(lease_scope("-", "us-east-1", "vpc-0abc")) == PATH


def test_a_retried_create_that_meets_itself_is_its_own_lease():
    ssm = client()
    with Stubber(ssm) as stub:
        stub.add_response("get_parameters_by_path", {"Parameters": []}, {"Path": PATH, "Recursive": False})
        stub.add_client_error(
            "put_parameter", "ParameterAlreadyExists",
            "The parameter already exists. To overwrite this request, set the overwrite option in the request to true.", 400,
        )
        stub.add_response("get_parameters_by_path", {"Parameters": [parameter(1, "me:1:a", T0 + timedelta(minutes=5))]}, {"Path": PATH, "Recursive": False})
        lease = SsmLeases(ssm).acquire_lease(SCOPE, "me:1:a", timedelta(minutes=5), T0)
    assert (lease.owner, lease.fence) == ("me:1:a", 1)


def test_a_live_generation_on_a_later_page_is_still_seen():
    ssm = client()
    with Stubber(ssm) as stub:
        stub.add_response("get_parameters_by_path", {"Parameters": [], "NextToken": "t1"}, {"Path": PATH, "Recursive": False})
        stub.add_response(
            "get_parameters_by_path", {"Parameters": [parameter(7, "other:2:b", T0 + timedelta(minutes=3))]},
            {"Path": PATH, "Recursive": False, "NextToken": "t1"},
        )
        with pytest.raises(LeaseHeld) as held:
            SsmLeases(ssm).acquire_lease(SCOPE, "me:1:a", timedelta(minutes=5), T0)
    assert held.value.owner == "other:2:b" and held.value.fence == 7


def test_access_denied_is_a_state_error_naming_the_permission_and_the_parameter():
    ssm = client()
    with Stubber(ssm) as stub:
        stub.add_response("get_parameters_by_path", {"Parameters": []}, {"Path": PATH, "Recursive": False})
        stub.add_client_error(
            "put_parameter", "AccessDeniedException",
            "User: arn:aws:iam::123456789012:user/x is not authorized to perform: ssm:PutParameter", 400,
            expected_params={"Name": f"{PATH}/1", "Value": ANY, "Type": "String", "Overwrite": False},
        )
        with pytest.raises(StateError) as failed:
            SsmLeases(ssm).acquire_lease(SCOPE, "me:1:a", timedelta(minutes=5), T0)
    assert "ssm:PutParameter" in str(failed.value) and PATH in str(failed.value)


def test_an_unreadable_generation_is_free_and_numbers_the_next():
    ssm = client()
    garbage = {**parameter(3, "x", T0), "Value": "not json"}
    with Stubber(ssm) as stub:
        stub.add_response("get_parameters_by_path", {"Parameters": [garbage]}, {"Path": PATH, "Recursive": False})
        stub.add_response("put_parameter", {"Version": 1, "Tier": "Standard"}, {"Name": f"{PATH}/4", "Value": ANY, "Type": "String", "Overwrite": False})
        stub.add_client_error("delete_parameter", "ParameterNotFound", "Parameter not found", 400, expected_params={"Name": f"{PATH}/3"})
        lease = SsmLeases(ssm).acquire_lease(SCOPE, "me:1:a", timedelta(minutes=5), T0)
    assert lease.fence == 4


def test_the_keeper_holds_both_leases_or_neither(tmp_path):
    from moto import mock_aws

    from orchestrator.state import LeaseLost
    from orchestrator.state.lease import LeaseKeeper
    from orchestrator.state.sqlite import SqliteStore

    now = [T0]
    with mock_aws():
        shared = SsmLeases(boto3.client("ssm", region_name="us-east-1"))
        store = SqliteStore(tmp_path / "mine.db")
        shared.acquire_lease(SCOPE, "elsewhere:9:q", timedelta(minutes=5), T0)  # a healer with another store
        keeper = LeaseKeeper(store, SCOPE, clock=lambda: now[0], shared=shared, owner="here:1:a")
        with pytest.raises(LeaseHeld) as held:
            keeper.acquire()
        assert held.value.owner == "elsewhere:9:q"
        lease = store.get_lease(SCOPE)
        assert lease is None or not lease.owner  # the store's lease was not kept alone
        now[0] = T0 + timedelta(minutes=6)  # the other healer's lease expired
        keeper.acquire()
        assert store.get_lease(SCOPE).owner == "here:1:a" and shared.get_lease(SCOPE).owner == "here:1:a"
        now[0] += timedelta(minutes=3)  # past half the TTL: renewing renews both
        keeper.check()
        assert shared.get_lease(SCOPE).expires_at == now[0] + timedelta(minutes=5)
        shared.acquire_lease(SCOPE, "thief:2:t", timedelta(minutes=5), now[0] + timedelta(minutes=6))  # overtaken after expiry
        with pytest.raises(LeaseLost):
            keeper.check()
        keeper.release()
        assert shared.get_lease(SCOPE).owner == "thief:2:t"  # its generation untouched
        store.close()

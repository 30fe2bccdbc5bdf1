"""`orch doctor` against the sandbox: a healthy fleet passes every check orch can tell, and
an instance whose security group lets no probe in is named with the fix.

The sandbox's fleet lives in 127.20.0.0/16 with a security group letting the probe port
in from 127.0.0.0/8 (where orch runs here) and a route back to it through a virtual
private gateway (orchestrator/sandbox/build.py). The sandbox picks a free port for its
fake sshd (``port=0``) so that runs do not collide; "port 22" below is that port.
Moto's server does not implement SimulatePrincipalPolicy (it answers a 500 page), so the
honest answer for the IAM check is "cannot tell", and that is what is asserted.
"""

from __future__ import annotations

import json
import os
from typing import Any, Iterator

import pytest
from click.testing import CliRunner, Result

from orchestrator.cli import cli
from orchestrator.sandbox import FleetSpec, Sandbox
from tests.e2e.test_terminal_fit import on_terminal

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Sandbox, dict[str, str]]]:
    spec = FleetSpec(instances=6, hung=0, refusing=0, leaking=0, opt_out=0, unmanaged=1, seed=2, port=0)
    with Sandbox(spec) as sb:
        iam = sb.client("iam")
        iam.create_user(UserName="operator")
        key = iam.create_access_key(UserName="operator")["AccessKey"]
        env = {
            **sb.env(),
            "AWS_ACCESS_KEY_ID": key["AccessKeyId"],
            "AWS_SECRET_ACCESS_KEY": key["SecretAccessKey"],
            "ORCH_PROBE_PORT": str(sb.port),
            "ORCH_STATE": str(tmp_path_factory.mktemp("state") / "state.db"),
        }
        yield sb, env


def doctor(env: dict[str, str], *args: str) -> tuple[Result, list[dict[str, Any]]]:
    result = CliRunner().invoke(cli, ["doctor", "-o", "json", *args], env=env, catch_exceptions=False)
    assert "Traceback" not in result.output
    return result, json.loads(result.stdout)["checks"]


def test_a_healthy_sandbox_passes_every_check_orch_can_tell(sandbox) -> None:
    _, env = sandbox
    result, checks = doctor(env)
    not_ok = [c for c in checks if c["status"] != "ok"]
    assert [(c["check"], c["status"]) for c in not_ok] == [("permissions", "cannot tell")], not_ok
    assert "IAM policy simulator" in not_ok[0]["detail"] and not_ok[0]["fix"]
    assert result.exit_code == 1  # cannot tell is not a pass
    by_check = {c["check"]: c for c in checks}
    assert by_check["credentials"]["subject"] == "arn:aws:iam::123456789012:user/operator"
    for check in ("security group", "route", "probe", "metrics"):
        assert by_check[check]["subject"] == "all 6 instances", by_check[check]
    assert by_check["clock"]["status"] == "ok"  # against the moto server's Date header


def test_an_instance_whose_group_blocks_the_port_is_named_with_the_fix(sandbox) -> None:
    sb, env = sandbox
    ec2 = sb.client("ec2")
    web = ec2.create_security_group(GroupName="web-only", Description="https only", VpcId=sb.vpc_id)["GroupId"]
    ec2.authorize_security_group_ingress(
        GroupId=web, IpPermissions=[{"IpProtocol": "tcp", "FromPort": 443, "ToPort": 443, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}])
    blocked = sb.instance("crawler-3")
    ec2.modify_instance_attribute(InstanceId=blocked.instance_id, Groups=[web])
    result, checks = doctor(env)
    assert result.exit_code == 1
    failed = [c for c in checks if c["status"] == "FAIL"]
    assert [(c["check"], c["subject"]) for c in failed] == [("security group", f"{blocked.instance_id} (crawler-3)")]
    (row,) = failed
    assert f"no rule of {web} allows tcp/{sb.port} from 127.0.0.1" in row["detail"]
    assert f"--group-id {web} --protocol tcp --port {sb.port} --cidr 127.0.0.1/32" in row["fix"]
    table = CliRunner().invoke(cli, ["doctor"], env={**env, "COLUMNS": "120"}, catch_exceptions=False)
    assert table.exit_code == 1 and "crawler-3" in table.stdout and "FAIL" in table.stdout and "authorize-security-group-ingress" in table.stdout


def test_source_override_is_judged_too(sandbox) -> None:
    _, env = sandbox
    _, checks = doctor(env, "--source", "10.9.8.7")  # outside 127.0.0.0/8: neither let in nor routed back
    assert {c["check"] for c in checks if c["status"] == "FAIL"} >= {"security group", "route"}
    bad = CliRunner().invoke(cli, ["doctor", "--source", "nope"], env=env)
    assert bad.exit_code == 2 and "not an IPv4 address" in bad.stderr


def test_credentials_refused_by_the_endpoint_are_a_failed_check(sandbox) -> None:
    _, env = sandbox
    result, checks = doctor({**env, "AWS_ENDPOINT_URL": "http://127.0.0.1:1"})
    assert result.exit_code == 1
    assert [c["status"] for c in checks if c["check"] == "credentials"] == ["FAIL"]


def test_a_subnet_whose_network_acl_drops_the_probe_port_is_named(sandbox) -> None:
    """The first subnet's association moved to an ACL denying the probe port in: every selected
    instance there gets a FAIL row naming the ACL, rule 50 and the fix; the other subnet,
    on the VPC's default ACL, passes. The association is put back afterwards (the sandbox is
    shared by this module's tests)."""
    sb, env = sandbox
    ec2 = sb.client("ec2")
    subnet = sb.subnet_ids[0]
    acl_id = ec2.create_network_acl(VpcId=sb.vpc_id)["NetworkAcl"]["NetworkAclId"]
    ec2.create_network_acl_entry(NetworkAclId=acl_id, RuleNumber=50, Protocol="6", RuleAction="deny", Egress=False,
                                 CidrBlock="127.0.0.0/8", PortRange={"From": sb.port, "To": sb.port})
    for egress in (False, True):
        ec2.create_network_acl_entry(NetworkAclId=acl_id, RuleNumber=100, Protocol="-1", RuleAction="allow", Egress=egress, CidrBlock="0.0.0.0/0")
    (default,) = ec2.describe_network_acls(Filters=[{"Name": "association.subnet-id", "Values": [subnet]}])["NetworkAcls"]
    association = next(a["NetworkAclAssociationId"] for a in default["Associations"] if a["SubnetId"] == subnet)
    moved = ec2.replace_network_acl_association(AssociationId=association, NetworkAclId=acl_id)["NewAssociationId"]
    try:
        _, checks = doctor(env)
        for columns in (80, 120):  # the long fix folds inside the table on a real terminal
            lines = on_terminal("doctor", {**os.environ, **env}, columns)
            assert any(acl_id in line for line in lines) and not [line for line in lines if len(line.rstrip()) > columns]
    finally:
        ec2.replace_network_acl_association(AssociationId=moved, NetworkAclId=default["NetworkAclId"])
    there = {f"{s.instance_id} ({s.name})" for s in sb.instances if s.managed and s.subnet_id == subnet and s.state == "running"}
    rows = [c for c in checks if c["check"] == "network acl"]
    failed = [c for c in rows if c["status"] == "FAIL"]
    assert there and {c["subject"] for c in failed} == there
    assert all(f"{acl_id} rule 50 denies tcp/{sb.port} in from 127.0.0.1" in c["detail"] for c in failed)
    assert all("before rule 50" in c["fix"] and f"--port-range From={sb.port},To={sb.port}" in c["fix"] for c in failed)
    (passing,) = [c for c in rows if c["status"] == "ok"]
    assert passing["subject"].endswith(" instances") and not passing["subject"].startswith("all")
    _, after = doctor(env)
    assert {c["status"] for c in after if c["check"] == "network acl"} == {"ok"}  # put back: the default ACL again

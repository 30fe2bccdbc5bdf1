"""README's "Adopt on a real fleet", run as written: every block, in order, in bash.

The blocks run against the sandbox's untagged fleet (what `orch sandbox --serve
--untagged` serves: FleetSpec(tagged=False)), started in this process so that moto's two
stack-set quirks can be put right as AWS documents them (tests/aws/test_stackset.py's
patch; the README says so). Before the "regions" block the harness adds a small untagged
fleet in us-west-2 (a VPC in 127.30.0.0/16), since the sandbox builds one region only.

The environment in front of each block is the sandbox's exports (endpoint, fake keys,
probe port, state file), a HOME of the test's own (so `~/.config/orch/config.toml` is
the test's), and this worktree's code first on PYTHONPATH. The one line the harness runs
itself is `orch package --zip orch-lambda.zip`: for real, once; when the local package
sources cannot serve Lambda's wheels it must fail in one line naming --wheelhouse, and the
harness then builds the zip without dependencies, as the README says.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Iterator

import pytest

from orchestrator.deploy import package
from orchestrator.sandbox import FleetSpec, Mode, Sandbox
from orchestrator.sandbox.build import pick_image
from orchestrator.sandbox.demo import exports, stage
from tests.aws.test_stackset import overrides_as_aws_documents  # noqa: F401  (autouse: moto's stack sets as AWS documents them)
from tests.unit.test_package import fake_installer, local_pip_environment

pytestmark = [pytest.mark.e2e, pytest.mark.filterwarnings("ignore:.*not supported by moto's CloudFormation")]

ROOT = Path(__file__).resolve().parents[2]
SECTION = (ROOT / "docs" / "adopt.md").read_text()  # the README's former section, now docs/adopt.md
BIN = Path(sys.executable).parent
PACKAGE_LINE = "orch package --zip orch-lambda.zip"
ORDER = ("credentials", "init", "agent", "doctor", "permissions", "plan", "deploy", "regions", "status")
EXIT = {"doctor": 1}  # the hung instances fail the probe check, and moto has no policy simulator


def adopt_blocks() -> dict[str, str]:
    """name -> body of every <!-- readme-adopt-NAME: ... --> ```sh block, in README order."""
    found = re.findall(r"<!-- readme-adopt-([a-z-]+): ([^\n]*?) -->\n```sh\n(.*?)```", SECTION, re.S)
    return {name: body for name, _, body in found}


def test_every_block_of_the_section_is_marked_and_run_here():
    blocks = adopt_blocks()
    assert SECTION.count("```sh") == len(blocks), "a block of 'Adopt on a real fleet' has no readme-adopt marker"
    assert tuple(n for n in blocks if n != "install") == ORDER
    assert blocks["install"].lstrip().startswith("pipx install .")  # run in tests/e2e/test_wheel_install.py's way
    markers = re.findall(r"<!-- readme-adopt-([a-z-]+): ([^\n]*?) -->", SECTION)
    for name, why in markers:
        assert ("tests/e2e/test_readme_adopt.py" in why) != (name == "install"), (name, why)


# AWS_ENDPOINT_URL is honoured from AWS CLI 1.29.0 and 2.13.0 on; an older CLI would send
# the walk's calls to AWS itself, so it is refused, and every call is pinned to the sandbox.
ENDPOINT_ENV_SINCE = {1: (1, 29, 0), 2: (2, 13, 0)}


def aws_cli() -> str:
    """The AWS CLI's path, or a skip saying why it cannot be used safely here."""
    found = shutil.which("aws")
    if found is None:
        pytest.skip("the README's adopt walk uses the AWS CLI (aws), which is not on PATH here (scripts/test installs it)")
    version = subprocess.run([found, "--version"], capture_output=True, text=True, timeout=60)
    match = re.search(r"aws-cli/(\d+)\.(\d+)\.(\d+)", version.stdout + version.stderr)
    have = tuple(int(n) for n in match.groups()) if match else None
    if have is None or have[0] not in ENDPOINT_ENV_SINCE or have < ENDPOINT_ENV_SINCE[have[0]]:
        pytest.skip(f"the AWS CLI here ({(version.stdout + version.stderr).strip()[:80]}) does not honour AWS_ENDPOINT_URL")
    return found


def pin_to_sandbox(real_aws: str, bin_dir: Path) -> Path:
    """An `aws` first on PATH that adds --endpoint-url from the environment: belt and braces."""
    bin_dir.mkdir()
    wrapper = bin_dir / "aws"
    wrapper.write_text(f'#!/bin/sh\n: "${{AWS_ENDPOINT_URL:?the walk needs the sandbox endpoint}}"\n'
                       f'exec {real_aws} "$@" --endpoint-url "$AWS_ENDPOINT_URL"\n')
    wrapper.chmod(0o755)
    return bin_dir


@pytest.fixture
def walk(tmp_path: Path) -> Iterator[tuple[Sandbox, dict[str, str], Path]]:
    pinned = pin_to_sandbox(aws_cli(), tmp_path / "aws-bin")
    spec = FleetSpec(tagged=False, port=0)  # `orch sandbox --serve --untagged`'s fleet, on a free port
    with Sandbox(spec) as sb:
        home = tmp_path / "home"
        home.mkdir()
        work = tmp_path / "work"
        work.mkdir()
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "ORCH_", "PIP_", "XDG_", "PYTHON", "VIRTUAL_ENV"))}
        env.update(exports(sb, stage(sb, tmp_path / "sandbox")))
        env.update(HOME=str(home), PATH=f"{pinned}{os.pathsep}{BIN}{os.pathsep}{env.get('PATH', '')}", PYTHONPATH=str(ROOT), COLUMNS="160", PIP_NO_INDEX="1")
        yield sb, env, work


def run_block(body: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["bash", "-euo", "pipefail", "-c", body], cwd=cwd, env=env, capture_output=True, text=True, timeout=600)


def build_zip(env: dict[str, str], cwd: Path) -> str:
    """The README's `orch package` line, for real; without Lambda's wheels here, the zip without dependencies."""
    offline = {k: v for k, v in (local_pip_environment() or {}).items() if k.startswith("PIP_")}
    ran = subprocess.run(["bash", "-euo", "pipefail", "-c", PACKAGE_LINE], cwd=cwd, env={**env, **offline},
                         capture_output=True, text=True, timeout=600)
    if ran.returncode == 0:
        return "built by orch package"
    assert ran.returncode == 2 and "--wheelhouse" in ran.stderr and "Traceback" not in ran.stderr, ran.stderr
    package.build(cwd / "orch-lambda.zip", installer=fake_installer)
    return "built without dependencies: " + ran.stderr.strip().splitlines()[-1][:200]


def add_west_fleet(sb: Sandbox) -> tuple[str, set[str]]:
    """Two untagged crawlers in us-west-2, in a VPC of loopback space, for the stack set's second region."""
    ec2 = _client(sb, "ec2", "us-west-2")
    vpc = ec2.create_vpc(CidrBlock="127.30.0.0/16")["Vpc"]["VpcId"]
    subnets = [ec2.create_subnet(VpcId=vpc, CidrBlock=f"127.30.{i}.0/24", AvailabilityZone=f"us-west-2{z}")["Subnet"]["SubnetId"]
               for i, z in ((1, "a"), (2, "b"))]
    launched = ec2.run_instances(ImageId=pick_image(ec2), InstanceType="t3.large", MinCount=2, MaxCount=2, SubnetId=subnets[0])
    ids = [i["InstanceId"] for i in launched["Instances"]]
    for n, instance_id in enumerate(ids, 1):
        ec2.create_tags(Resources=[instance_id], Tags=[{"Key": "Name", "Value": f"crawler-west-{n}"}])
    return vpc, set(ids)


def _client(sb: Sandbox, service: str, region: str):  # type: ignore[no-untyped-def]
    import boto3

    return boto3.client(service, region_name=region, endpoint_url=sb.endpoint_url, aws_access_key_id="sandbox", aws_secret_access_key="sandbox")


def tagged(sb: Sandbox, region: str) -> set[str]:
    ec2 = _client(sb, "ec2", region)
    pages = ec2.get_paginator("describe_instances").paginate(Filters=[{"Name": "tag:orch:managed", "Values": ["true"]}])
    return {i["InstanceId"] for page in pages for r in page["Reservations"] for i in r["Instances"]}


def test_the_adopt_walk_runs_as_written(walk):
    sb, env, work = walk
    blocks = adopt_blocks()
    managed = {s.instance_id for s in sb.instances if s.managed}
    bystanders = {s.instance_id for s in sb.instances if not s.managed}
    broken = {s.instance_id for s in sb.instances if s.managed and s.mode in (Mode.HUNG, Mode.REFUSING)}
    assert len(managed) == 24 and bystanders and broken and not tagged(sb, "us-east-1")
    ran: dict[str, subprocess.CompletedProcess[str]] = {}
    zip_note = ""
    for name in ORDER:
        body = blocks[name]
        if PACKAGE_LINE in body:
            if not zip_note:
                zip_note = build_zip(env, work)
            assert body.count(PACKAGE_LINE) == 1
            body = body.replace(PACKAGE_LINE, f": {PACKAGE_LINE} was run by the harness")
        if name == "regions":
            west_vpc, west = add_west_fleet(sb)
        ran[name] = result = run_block(body, env, work)
        assert result.returncode == EXIT.get(name, 0), f"{name}: exit {result.returncode}\n{result.stdout[-4000:]}\n{result.stderr[-4000:]}"
        assert "Traceback" not in result.stderr, result.stderr
        if name == "plan":
            assert not sb.acted_on(), "orch heal --dry-run acted"

    assert sb.account_id in ran["credentials"].stdout

    init = ran["init"].stdout
    assert "would tag 24 instance(s)" in init and "tagged 24 instance(s) with orch:managed=true" in init
    assert tagged(sb, "us-east-1") == managed  # the bystanders stay untagged
    config = (Path(env["HOME"]) / ".config" / "orch" / "config.toml").read_text()
    assert f'vpc_id = "{sb.vpc_id}"' in config and 'region = "us-east-1"' in config

    assert "would run AWS-ConfigureAWSPackage" in ran["agent"].stdout and "install Success, configure Success" in ran["agent"].stdout
    assert "24 of 24 instances publish" in ran["agent"].stdout

    doctor = ran["doctor"].stdout
    failed = {m for line in doctor.splitlines() if "FAIL" in line for m in re.findall(r"i-[0-9a-f]{17}", line)}
    opted_out = {s.instance_id for s in sb.instances if s.opt_out}
    assert failed == broken - opted_out, (failed, broken)  # exactly the hung and refusing ones, named; doctor skips the opted-out
    assert "cannot tell" in doctor

    policy = json.loads((work / "orch-heal-policy.json").read_text())
    assert "ec2:RebootInstances" in json.dumps(policy) and "aws:ResourceTag/orch:managed" in json.dumps(policy)
    assert "arn:aws:iam::123456789012:policy/orch-heal" in ran["permissions"].stdout

    plan = ran["plan"].stdout
    assert "dry-run would reboot" in plan and all(i in plan for i in broken - {s.instance_id for s in sb.instances if s.opt_out})

    deploy = ran["deploy"].stdout
    assert "dry run for orch (CREATE): nothing uploaded" in deploy and "stack orch: CREATE_COMPLETE" in deploy

    regions = ran["regions"].stdout + ran["regions"].stderr
    assert tagged(sb, "us-west-2") == west
    assert (Path(env["HOME"]) / ".config" / "orch" / "us-west-2.toml").is_file()
    assert "dry run: nothing uploaded, no stack set or instance created" in regions and "created stack set orch" in regions
    cfn = _client(sb, "cloudformation", "us-east-1")
    instances = cfn.list_stack_instances(StackSetName="orch")["Summaries"]
    assert sorted(i["Region"] for i in instances) == ["us-east-1", "us-west-2"]
    assert all(i["Status"] == "CURRENT" for i in instances), instances

    status = ran["status"].stdout
    rows = {line.split()[1]: line for line in status.splitlines() if line.startswith(sb.account_id)}
    assert set(rows) == {"us-east-1", "us-west-2"}, status
    assert sb.vpc_id in rows["us-east-1"] and west_vpc in rows["us-west-2"], status  # each region's healer, found
    assert "StackSet-orch" in rows["us-east-1"] and "StackSet-orch" in rows["us-west-2"], status

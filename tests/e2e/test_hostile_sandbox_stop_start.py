"""Issue 20, case 13 (manual actions): in the sandbox every stop-start was refused.

moto reports an Amazon Linux instance's root device as the AMI's ``/dev/xvda`` but
attached its default root volume at ``/dev/sda1``, so orch's stop/start rung found the
root device missing from the instance's EBS volumes and refused, rightly, on every box.
The sandbox's EC2 fix-up (orchestrator/sandbox/ec2_fixes.py) attaches the root volume
where the image says, as EC2 does; `orch stop-start` then stops and starts the box.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Iterator

import pytest
from click.testing import CliRunner

from orchestrator.cli import cli
from orchestrator.sandbox import FleetSpec, Mode, Sandbox
from orchestrator.sandbox.demo import exports, stage

pytestmark = pytest.mark.e2e


@pytest.fixture
def fleet(tmp_path: Path) -> Iterator[tuple[Sandbox, dict[str, str]]]:
    with Sandbox(FleetSpec(instances=6, hung=1, refusing=0, leaking=0, opt_out=0, seed=3, port=0)) as sb:
        yield sb, exports(sb, stage(sb, tmp_path))


def test_case_13_a_sandbox_instance_reports_its_root_volume_where_its_root_device_is(fleet) -> None:
    sb, _ = fleet
    reply = sb.client("ec2").describe_instances(InstanceIds=[sb.instances[0].instance_id])
    instance = reply["Reservations"][0]["Instances"][0]
    devices = [m["DeviceName"] for m in instance["BlockDeviceMappings"]]
    assert instance["RootDeviceType"] == "ebs" and instance["RootDeviceName"] in devices, (instance["RootDeviceName"], devices)


def test_case_13_stop_start_works_in_the_sandbox(fleet) -> None:
    sb, env = fleet
    target = next(s.instance_id for s in sb.instances if s.managed and s.mode is Mode.HUNG)
    result = CliRunner().invoke(cli, ["stop-start", target, "--yes", "-o", "json"], env=env)
    assert "Traceback" not in result.output
    assert result.exit_code == 0, result.output
    outcome = json.loads(result.stdout)
    assert outcome["action"] == "stop-start" and outcome["outcome"] == "done", outcome
    assert "root device" not in json.dumps(outcome)

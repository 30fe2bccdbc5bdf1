"""`orch permissions deploy` / `destroy` cover every call orch makes for them: the real
commands against a moto server, each API call recorded. (What CloudFormation then calls
with the deployer's credentials happens inside AWS and is declared per resource type in
orchestrator/iam/deploy.py; tests/unit/test_iam_policy.py checks it lists every
type of the template.)"""

from __future__ import annotations

import pytest

from orchestrator.config import load_settings
from orchestrator.iam import policy as iam_policy
from tests.aws.test_command_permissions import iam_action
from tests.aws.test_deploy import (  # noqa: F401  (fixtures)
    REGION,
    code_zip,
    deploy_args,
    endpoint,
    moto_endpoint,
    network,
    orch,
    session,
)
from tests.faults import FaultPlan

pytestmark = pytest.mark.filterwarnings("ignore:.*not supported by moto's CloudFormation")


def test_deploy_and_destroy_call_only_what_their_policies_grant(session, network, code_zip, monkeypatch) -> None:  # noqa: F811
    recorder = FaultPlan().install(monkeypatch)
    settings = load_settings(None)
    seen: dict[str, set[str]] = {"deploy": set(), "destroy": set()}
    runs = (
        ("deploy", deploy_args(network, code_zip, "--dry-run")),
        ("deploy", deploy_args(network, code_zip)),
        ("destroy", ["destroy", "--stack-name", "orch", "--yes"]),
    )
    for name, args in runs:
        start = len(recorder.log)
        result = orch(*args)
        assert result.exit_code == 0, result.output
        called = {iam_action(r) for r in recorder.log[start:]}
        granted = set(iam_policy.policy_for([name], settings, REGION).actions)
        assert called and not called - granted, f"orch {name} called {sorted(called - granted)}"
        seen[name] |= called
    assert {"cloudformation:CreateChangeSet", "cloudformation:ExecuteChangeSet", "s3:PutObject", "s3:ListBucket"} <= seen["deploy"]
    assert {"cloudformation:DeleteStack", "cloudformation:ListStackResources"} <= seen["destroy"]

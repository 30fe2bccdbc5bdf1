"""`orch sandbox` itself, the README's first command in small: found, rebooted, healthy on
the next sweep. In the first end-to-end group: it builds its fleet in the sandbox's own
addresses (tests/conftest.py, work_unit)."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from orchestrator.cli import cli

pytestmark = pytest.mark.e2e


def test_orch_sandbox_demo_heals_and_verifies():
    """The README's first command, in small: found, rebooted, healthy on the next sweep."""
    result = CliRunner().invoke(cli, ["sandbox", "--instances", "12", "--hung", "2", "--refusing", "1", "--leaking", "1", "--port", "0", "--output", "json"])
    assert result.exit_code == 0, result.output
    demo = json.loads(result.stdout)
    assert demo["ok"] and demo["bystanders_untouched"]
    assert sorted(demo["healed"]) == sorted(demo["broken"]) and len(demo["broken"]) == 3
    assert {a["instance_id"] for a in demo["first"]["actions"]} == set(demo["broken"])
    assert demo["sweeps"] == 2
    assert demo["last"]["actions"] == [] and demo["last"]["verdicts"]["unreachable"] == 1  # the opted-out one
    assert len(demo["evidence_keys"]) == 3 and "rebooted" in demo["sns_message"]["body"]
    assert demo["first"]["verdicts"]["memory-exhaustion-forecast"] == 1

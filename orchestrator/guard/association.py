"""The guard as a State Manager association (cfn/orchestrator.yaml, GuardAssociation=true).

The template carries the apply script's lines as AWS-RunShellScript's ``commands``; the
lines that depend on the stack's parameters (the process, the limit, MemoryHigh= beside it)
are CloudFormation intrinsics. ``template_commands`` is what the template must hold, and a
test compares it with the template, so the script there is the one orch generates; after a
change to the script, ``python -m orchestrator.guard.association`` prints the new block.
"""

from __future__ import annotations

import json
from typing import Any

from orchestrator.guard.plan import HIGH_BELOW_MAX_POINTS, GuardSpec
from orchestrator.guard.script import Action, render

LIMITS = ("50", "60", "70", "75", "80")  # GuardLimitPercent's allowed values; MemoryHigh= 5 points under each
PLACEHOLDER = "orchprocess"


def high_for(limit: str) -> str:
    return f"{float(limit) - HIGH_BELOW_MAX_POINTS:g}"


def template_commands() -> list[Any]:
    """The script's lines, with the parameter-dependent ones as intrinsics (the decoded template's form)."""
    spec = GuardSpec(process=PLACEHOLDER, limit_percent=75.0, high_percent=70.0)
    by_line: dict[str, Any] = {
        f"PROCESS={PLACEHOLDER}": {"Fn::Sub": "PROCESS='${GuardProcess}'"},
        "LIMIT_PERCENT=75": {"Fn::Sub": "LIMIT_PERCENT=${GuardLimitPercent}"},
        "HIGH_PERCENT=70": {"Fn::Join": ["", ["HIGH_PERCENT=", {"Fn::FindInMap": ["GuardHigh", {"Ref": "GuardLimitPercent"}, "High"]}]]},
        f"CGNAME=orch-guard-{PLACEHOLDER}": {"Fn::Sub": "CGNAME='orch-guard-${GuardProcess}'"},
    }
    lines = render(spec, Action.APPLY).splitlines()
    missing = set(by_line) - set(lines)
    if missing:
        raise AssertionError(f"the script no longer has the lines the template parametrises: {sorted(missing)}")
    return [by_line.get(line, line) for line in lines]


def _yaml(item: Any) -> str:
    if isinstance(item, str):
        return json.dumps(item)  # a JSON string is a YAML double-quoted scalar
    (name, value), = item.items()
    if name == "Fn::Sub":
        return f"!Sub {json.dumps(value)}"
    return '!Join ["", ["HIGH_PERCENT=", !FindInMap [GuardHigh, !Ref GuardLimitPercent, High]]]'


def yaml_block(indent: int = 10) -> str:
    pad = " " * indent
    return "\n".join(f"{pad}- {_yaml(item)}" for item in template_commands())


if __name__ == "__main__":
    print(yaml_block())

"""Hostile input to `orch deploy` and `orch permissions deploy` (issue 20, cases 9-12).

Each row is what a person could type and what it must get: the exit code, one line
naming the problem, no traceback, and nothing uploaded or created. A dry run refuses
what the real deploy would fail on (case 11): it runs the same checks
(orchestrator/deploy/checks.py) before any call that changes anything.
Against a moto server on 127.0.0.1, as docs/deploy.md has a person do.
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path
from typing import Any

import boto3
import pytest
from click.testing import CliRunner

from orchestrator.cli import cli
from orchestrator.config import load_settings
from orchestrator.deploy import package
from orchestrator.iam import policy as iam_policy
from tests.aws.test_deploy import BUCKET, REGION, code_zip, deploy_args, endpoint, moto_endpoint, network, session  # noqa: F401
from tests.aws.test_stackset import REGIONS, A, B, buckets, overrides_as_aws_documents, stack_set_args  # noqa: F401

pytestmark = pytest.mark.filterwarnings("ignore:.*not supported by moto's CloudFormation")


def run(*args: str) -> Any:
    return CliRunner().invoke(cli, [*args, "--region", REGION])


def one_clear_line(result: Any, code: int, fragment: str) -> None:
    assert result.exit_code == code, result.output
    assert "Traceback" not in result.output and not isinstance(result.exception, (KeyError, TypeError, AttributeError, ValueError))
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error")]
    assert len(errors) == 1 and fragment in errors[0], result.stderr


def nothing_made(session: boto3.Session) -> None:  # noqa: F811
    assert session.client("cloudformation").list_stacks()["StackSummaries"] == []
    assert session.client("cloudformation").list_stack_sets()["Summaries"] == []
    assert session.client("s3").list_objects_v2(Bucket=BUCKET).get("KeyCount", 0) == 0


def list_manifest_zip(tmp_path: Path) -> Path:
    """A zip shaped like orch's, whose orch_build.json is a JSON list."""
    path = tmp_path / "odd.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("lambdas/heal.py", "")
        archive.writestr("orchestrator/sweep/pipeline.py", "")
        archive.writestr(package.MANIFEST, "[1, 2]")
    return path


# -- case 11 (and 10): one stack -----------------------------------------------------------

# (why, extra arguments for a dry run of one stack, fragment of the one error line)
STACK_ROWS: list[tuple[str, tuple[str, ...], str]] = [
    ("case 11: a stack name CloudFormation refuses", ("--stack-name", "bad name!"), "--stack-name 'bad name!' is not a name CloudFormation accepts"),
    ("case 11: a stack name starting with a digit", ("--stack-name", "1orch"), "must start with a letter"),
    ("case 11: a value outside AllowedValues", ("-p", "Mode=yolo"), "Mode=yolo: must be one of dry-run, heal"),
    ("case 11: not a number for a Number", ("-p", "ProbePort=ssh"), "ProbePort=ssh: must be a number"),
    ("case 11: a NaN for a Number", ("-p", "ProbePort=nan"), "ProbePort=nan: must be a finite number"),
    ("case 9/11: markup where a VPC id goes", ("-p", "VpcId=[/x]"), "VpcId=[/x]: must be an id like vpc-"),
    ("case 11: a zip that is not there", ("--zip", "/nonexistent/orch-lambda.zip"), "/nonexistent/orch-lambda.zip does not exist"),
]


@pytest.mark.parametrize("why, extra, fragment", STACK_ROWS, ids=[r[0] for r in STACK_ROWS])
def test_case_11_stack_dry_run_refuses_what_the_deploy_would(why, extra, fragment, session, network, code_zip) -> None:  # noqa: F811
    args = deploy_args(network, code_zip, "--dry-run")
    for flag, value in zip(extra[::2], extra[1::2]):  # a later flag of the same name replaces the fixture's
        if flag in ("--stack-name", "--zip"):
            args[args.index(flag) + 1] = value
        else:
            key = value.partition("=")[0]
            given = [i for i, a in enumerate(args) if a.startswith(f"{key}=") and args[i - 1] == "--parameter"]
            for i in reversed(given):
                del args[i - 1 : i + 1]
            args += [flag, value]
    one_clear_line(run(*args), 2, fragment)
    nothing_made(session)


def test_case_10_a_zip_whose_manifest_is_a_list_is_one_line(session, network, tmp_path) -> None:  # noqa: F811
    odd = list_manifest_zip(tmp_path)
    for extra in (("--dry-run",), ()):
        result = run(*deploy_args(network, odd, *extra))
        one_clear_line(result, 2, "orch_build.json is not a JSON object (got list)")
    nothing_made(session)


def test_case_9_markup_in_a_parameter_value_is_shown_as_text(session, network, code_zip) -> None:  # noqa: F811
    """`[/x]` is a value SelectorValue's pattern allows: the dry run's table shows it, rich does not read it."""
    result = run(*deploy_args(network, code_zip, "--dry-run", "--selector", "team=[/x] and [bold]"))
    assert result.exit_code == 0, result.output
    assert "[/x] and [bold]" in result.stdout and "Traceback" not in result.output
    nothing_made(session)


# -- case 11: a stack set -----------------------------------------------------------------

SET_ROWS: list[tuple[str, tuple[str, ...], dict[str, str], str]] = [
    ("case 11: a stack set name CloudFormation refuses", (), {"--stack-set": "bad name!"}, "--stack-set 'bad name!' is not a name"),
    ("case 11: a region that does not exist", (), {"--regions": "us-east-1,mars-1"}, "--regions: 'mars-1' is not an AWS region name"),
    ("case 11: a region in capitals", (), {"--regions": "US-EAST-1"}, "'US-EAST-1' is written in capitals; AWS region names are lower case: us-east-1"),
    ("case 11: a region that is not a name", (), {"--regions": "us_east;1"}, "'us_east;1' is not an AWS region name"),
    ("case 11: a region shaped right that CloudFormation is not in", (), {"--regions": "us-east-9"}, "is not a region CloudFormation is in"),
    ("case 11: a value outside AllowedValues", ("-p", "Mode=yolo"), {}, "--parameter Mode=yolo: must be one of dry-run, heal"),
    ("case 11: an instance parameter outside AllowedValues", ("--instance-parameter", f"{A}:us-east-1:Mode=yolo"), {},
     f"--instance-parameter {A}:us-east-1:Mode=yolo: must be one of"),
    ("case 11: an instance parameter for a region not deployed", ("--instance-parameter", f"{A}:ap-south-1:VpcId=vpc-00000009"), {},
     "region 'ap-south-1' is not among --regions (us-east-1, eu-west-1); it would be ignored"),
    ("case 11: an instance parameter for an account not deployed", ("--instance-parameter", "333333333333:us-east-1:VpcId=vpc-00000009"), {},
     "'333333333333' is not among --accounts"),
    ("case 11: a zip that is not there", (), {"--zip": "/nonexistent/orch-lambda.zip"}, "/nonexistent/orch-lambda.zip does not exist"),
    ("case 9/11: markup where a VPC id goes", ("--instance-parameter", f"{A}:us-east-1:VpcId=[/x]"), {}, "VpcId=[/x]: must be an id like vpc-"),
]


@pytest.mark.parametrize("why, extra, replace, fragment", SET_ROWS, ids=[r[0] for r in SET_ROWS])
@pytest.mark.parametrize("dry", [True, False], ids=["dry-run", "real"])
def test_case_11_stack_set_refuses_before_anything_in_both_runs(why, extra, replace, fragment, dry, session, buckets, code_zip) -> None:  # noqa: F811
    args = stack_set_args(code_zip, *extra, *(("--dry-run",) if dry else ()))
    for flag, value in replace.items():
        args[args.index(flag) + 1] = value
    one_clear_line(run(*args), 2, fragment)
    cfn = session.client("cloudformation")
    assert cfn.list_stack_sets()["Summaries"] == []
    for region in REGIONS:
        assert boto3.client("s3", region_name=region).list_objects_v2(Bucket=f"orch-artifacts-{region}").get("KeyCount", 0) == 0


def test_case_9_the_stack_set_dry_run_shows_bracketed_values_as_text(session, buckets, code_zip) -> None:  # noqa: F811
    result = run(*stack_set_args(code_zip, "--dry-run", "--instance-parameter", f"{A}:us-east-1:SelectorValue=[/x]"))
    assert result.exit_code == 0, result.output
    assert "SelectorValue=[/x]" in result.stdout.replace("\n", "") and "Traceback" not in result.output


# -- case 12: what `orch permissions deploy` grants ------------------------------------------------

STACK_SET_ACTIONS = {
    "cloudformation:CreateStackSet", "cloudformation:UpdateStackSet", "cloudformation:DescribeStackSet", "cloudformation:ListStackInstances",
    "cloudformation:CreateStackInstances", "cloudformation:UpdateStackInstances", "cloudformation:DescribeStackSetOperation",
    "cloudformation:ListStackSetOperationResults",
}


def test_case_12_permissions_deploy_lists_the_stack_set_actions() -> None:
    result = CliRunner().invoke(cli, ["permissions", "deploy", "--region", REGION])
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    granted = {a for s in document["Statement"] for a in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"])}
    assert STACK_SET_ACTIONS <= granted, STACK_SET_ACTIONS - granted
    assert STACK_SET_ACTIONS <= iam_policy.actions_for(["deploy"], load_settings(None, environ={}))

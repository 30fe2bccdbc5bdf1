"""The template a deploy sends and its parameters: where it is, what CloudFormation says it takes, what a change set passes.

A name the template does not declare, a required one missing, or one of the names
deploy sets itself from the uploaded zip (``MANAGED_PARAMETERS``) is refused before
anything is uploaded or created.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

from botocore.exceptions import ClientError

from orchestrator.aws import describe_aws_error
from orchestrator.deploy.errors import DeployUsageError
from orchestrator.echo import clip

MANAGED_PARAMETERS = frozenset({"CodeBucket", "CodeKey", "Architecture"})  # set by deploy from the uploaded zip

PACKAGED_TEMPLATE = Path(__file__).resolve().parents[1] / "templates" / "orchestrator.yaml"
"""Package data, so an installed wheel has it; in the repository a symlink to cfn/orchestrator.yaml."""
CHECKOUT_TEMPLATE = Path(__file__).resolve().parents[2] / "cfn" / "orchestrator.yaml"


def default_template() -> Path:
    """The template shipped with this orch: package data in a wheel, cfn/ in a checkout.

    The packaged copy comes first because it is the one that travels with the code
    (``pip install .`` leaves no cfn/ beside site-packages); the checkout's file is the
    fallback for a tree whose symlink was not materialised.
    """
    for candidate in (PACKAGED_TEMPLATE, CHECKOUT_TEMPLATE):
        if candidate.is_file():
            return candidate
    return PACKAGED_TEMPLATE  # read_template names it and the fix


def parse_parameters(pairs: tuple[str, ...] | list[str]) -> dict[str, str]:
    result: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise DeployUsageError(f"--parameter {clip(pair)} is not KEY=VALUE (example: --parameter Mode=heal)")
        if key.strip() in result:
            raise DeployUsageError(f"--parameter {key.strip()} given twice")
        result[key.strip()] = value
    return result


def read_template(path: Path) -> str:
    try:
        return Path(path).read_text()
    except FileNotFoundError:
        raise DeployUsageError(
            f"template {path} does not exist: pass --template PATH (cfn/orchestrator.yaml in orch's repository), or reinstall orch"
        ) from None
    except OSError as exc:
        raise DeployUsageError(f"template {path} cannot be read: {exc.strerror}") from None


def template_parameters(cfn: Any, body: str) -> dict[str, bool]:
    """Parameter name -> has a default, as CloudFormation itself reads the template."""
    try:
        summary = cfn.get_template_summary(TemplateBody=body)
    except ClientError as exc:
        raise DeployUsageError(f"CloudFormation rejects the template: {describe_aws_error(exc)}") from None
    return {p["ParameterKey"]: "DefaultValue" in p and p["DefaultValue"] is not None for p in summary.get("Parameters", [])}


def stack_parameters(
    declared: Mapping[str, bool], given: Mapping[str, str], managed: Mapping[str, str], stack: Mapping[str, Any] | None, kind: str
) -> list[dict[str, Any]]:
    """The Parameters of the change set; unknown or missing names are refused up front."""
    unknown = sorted(set(given) - set(declared))
    if unknown:
        raise DeployUsageError(
            f"unknown parameter(s) {', '.join(unknown)}: the template takes {', '.join(sorted(set(declared) - MANAGED_PARAMETERS))}"
        )
    clash = sorted(set(given) & set(managed))
    if clash:
        raise DeployUsageError(f"{', '.join(clash)} are set by orch deploy from the uploaded zip; do not pass them")
    previous = {p["ParameterKey"] for p in (stack or {}).get("Parameters", [])} if kind == "UPDATE" else set()
    missing = sorted(k for k, has_default in declared.items() if not has_default and k not in given and k not in managed and k not in previous)
    if missing:
        raise DeployUsageError("missing required parameter(s): " + " ".join(f"--parameter {k}=..." for k in missing))
    result = [{"ParameterKey": k, "ParameterValue": v} for k, v in sorted({**given, **managed}.items())]
    result += [{"ParameterKey": k, "UsePreviousValue": True} for k in sorted(previous & set(declared) - set(given) - set(managed))]
    return result

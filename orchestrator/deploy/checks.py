"""What `orch deploy` checks before it changes anything, the same for a dry run and a real one.

A dry run that accepts what the real deploy then fails on is worse than no dry run: it
says "fine". So both paths call these checks first, before any upload, change set or
stack set call, and a dry run refuses what CloudFormation would:

- a stack or stack set name outside CloudFormation's pattern (a letter, then letters,
  digits and hyphens, at most 128 characters);
- a region that is not one (``mars-1``), not written as AWS writes it (``US-EAST-1``),
  or not a region name at all (``us_east;1``);
- a parameter value the template refuses: not among its ``AllowedValues``, not a number
  for a ``Number``, not an id of the kind an ``AWS::EC2::...::Id`` parameter takes.
  The constraints are read from the template by CloudFormation itself
  (``GetTemplateSummary``'s ``ParameterConstraints``), so a template with other
  parameters is checked by its own rules;
- an ``--instance-parameter`` for an account or region the deploy does not target
  (it would be silently ignored);
- a ``--zip`` that does not exist or is not orch's Lambda zip.

Pure but for ``parameter_rules`` (one read call) and ``check_zip`` (reads the file).
"""

from __future__ import annotations

import difflib
import functools
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

from botocore.exceptions import ClientError

from orchestrator.aws import describe_aws_error
from orchestrator.deploy.code import inspect_code
from orchestrator.deploy.errors import DeployUsageError
from orchestrator.echo import clip

NAME = re.compile(r"[A-Za-z][-A-Za-z0-9]*")
NAME_MAX = 128  # CloudFormation: stack and stack set names
REGION_SHAPE = re.compile(r"[a-z]{2,4}(-[a-z]+){1,3}-\d{1,2}")
# AWS-specific parameter types whose values have a known shape (CloudFormation also checks they exist).
ID_PREFIX = {
    "AWS::EC2::VPC::Id": "vpc",
    "AWS::EC2::Subnet::Id": "subnet",
    "AWS::EC2::SecurityGroup::Id": "sg",
    "AWS::EC2::Image::Id": "ami",
    "AWS::EC2::Instance::Id": "i",
}
RESOURCE_ID = "{prefix}-[0-9a-f]{{8,17}}"


def check_name(name: str, flag: str) -> None:
    """CloudFormation's rule for stack and stack set names; DeployUsageError naming ``flag``."""
    if not NAME.fullmatch(name) or len(name) > NAME_MAX:
        raise DeployUsageError(
            f"{flag} {clip(name)} is not a name CloudFormation accepts: it must start with a letter and hold only "
            f"letters, digits and hyphens, at most {NAME_MAX} characters (e.g. orch-web)"
        )


@functools.cache
def known_regions() -> frozenset[str]:
    """Every region botocore's endpoint data has CloudFormation in, across partitions (no AWS call)."""
    import boto3  # here, not at import: `orch --help` must not load boto3 (docs/performance.md)

    session = boto3.session.Session()
    found: set[str] = set()
    for partition in session.get_available_partitions():
        found |= set(session.get_available_regions("cloudformation", partition_name=partition))
    return frozenset(found)


def check_regions(regions: Iterable[str], flag: str = "--regions") -> None:
    known = known_regions()
    for region in regions:
        if region in known:
            continue
        if region.lower() in known:
            raise DeployUsageError(f"{flag}: {clip(region)} is written in capitals; AWS region names are lower case: {region.lower()}")
        if not REGION_SHAPE.fullmatch(region):
            raise DeployUsageError(f"{flag}: {clip(region)} is not an AWS region name (like us-east-1 or eu-west-2)")
        close = difflib.get_close_matches(region, sorted(known), n=1)
        hint = f"; did you mean {close[0]}?" if close else ""
        raise DeployUsageError(f"{flag}: {clip(region)} is not a region CloudFormation is in (as this botocore knows them){hint}")


@dataclass(frozen=True, slots=True)
class ParameterRule:
    """A template parameter's type and allowed values, as CloudFormation reads them."""

    name: str
    type: str = "String"
    allowed: tuple[str, ...] = ()

    def problem(self, value: str) -> str | None:
        """Why CloudFormation would refuse ``value`` for this parameter, or None."""
        if self.allowed and value not in self.allowed:
            return f"must be one of {', '.join(self.allowed)}"
        if self.type == "Number":
            try:
                number = float(value)
            except ValueError:
                return "must be a number"
            if not math.isfinite(number):
                return "must be a finite number"
        if self.type == "List<Number>":
            for part in value.split(","):
                try:
                    if not math.isfinite(float(part)):
                        return "must be a comma-separated list of finite numbers"
                except ValueError:
                    return "must be a comma-separated list of numbers"
        element = self.type[len("List<") : -1] if self.type.startswith("List<") else self.type
        prefix = ID_PREFIX.get(element)
        if prefix is not None:
            values = value.split(",") if element != self.type else [value]
            pattern = re.compile(RESOURCE_ID.format(prefix=prefix))
            wrong = [v for v in values if not pattern.fullmatch(v.strip())]
            if wrong:
                kind = f"a list of {prefix}- ids" if element != self.type else f"an id like {prefix}-0123456789abcdef0"
                return f"must be {kind} ({element})"
        return None


def parameter_rules(cfn: Any, body: str) -> dict[str, ParameterRule]:
    """Each parameter's rule from GetTemplateSummary (``ParameterType``, ``ParameterConstraints.AllowedValues``)."""
    try:
        summary = cfn.get_template_summary(TemplateBody=body)
    except ClientError as exc:
        raise DeployUsageError(f"CloudFormation rejects the template: {describe_aws_error(exc)}") from None
    return {
        p["ParameterKey"]: ParameterRule(
            p["ParameterKey"], str(p.get("ParameterType") or "String"), tuple(str(v) for v in (p.get("ParameterConstraints") or {}).get("AllowedValues") or ()),
        )
        for p in summary.get("Parameters", [])
    }


def check_values(rules: Mapping[str, ParameterRule], values: Mapping[str, str], where: str = "--parameter") -> None:
    """Every value the template would refuse, the first one said (unknown names are the callers' own check)."""
    for key, value in values.items():
        rule = rules.get(key)
        problem = rule.problem(value) if rule is not None else None
        if problem:
            gap = "" if where.endswith(":") else " "
            raise DeployUsageError(f"{where}{gap}{key}={clip(value, quote=False)}: {problem} (the template's rule; CloudFormation would refuse it)")


def check_instance_targets(instance_parameters: Mapping[tuple[str, str], Mapping[str, str]], targets: Sequence[str] | None,
                           regions: Sequence[str]) -> None:
    """An --instance-parameter must name a region the deploy targets and, self-managed, one of
    its accounts (``targets``), or ``*``. ``targets`` None: the accounts are not checked here
    (with --ou an account of an OU may be named; the stack set's own checks judge those).

    Said only once there are regions (and targets) to compare with: their absence is its own error."""
    if not regions or targets is not None and not targets:
        return
    for (target, region), values in instance_parameters.items():
        shown = f"{target}:{region}:{next(iter(values), 'KEY')}=..."
        if region != "*" and region not in regions:
            raise DeployUsageError(
                f"--instance-parameter {clip(shown, quote=False)}: region {clip(region)} is not among --regions "
                f"({', '.join(regions) or 'none'}); it would be ignored. Add the region to --regions, or use * for every region"
            )
        if targets is not None and target != "*" and target not in targets:
            raise DeployUsageError(
                f"--instance-parameter {clip(shown, quote=False)}: {clip(target)} is not among --accounts "
                f"({', '.join(targets) or 'none'}); it would be ignored. Use one of them, or * for every one"
            )


def check_zip(zip_path: Path | None, bucket: str) -> None:
    """The zip a deploy would upload: it exists, is orch's, was built for the function's Python and architecture."""
    if zip_path is not None:
        inspect_code(bucket, zip_path)

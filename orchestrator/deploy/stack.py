"""Deploy the stack: upload the Lambda zip, then create or update through a change set.

A change set, not CreateStack/UpdateStack, so the operator sees what will change
before it changes and an unchanged redeploy is recognised as such. ``--dry-run`` makes
no change anywhere, so it creates neither the upload nor a change set (a CREATE change
set even creates a stack, in REVIEW_IN_PROGRESS): ``preview`` reads what it can instead
(is the code already uploaded, does the template differ, which parameters change). The steps are separate functions so the CLI can show the change set between
creating and executing it; all AWS calls go through ``Clients`` (so --region,
--profile and AWS_ENDPOINT_URL apply), waiting uses botocore's waiter for the change
set and a tenacity poll for the stack, which prints stack events as they arrive.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Mapping

from botocore.exceptions import ClientError, WaiterError
from tenacity import Retrying, retry_if_result, stop_after_delay, wait_fixed

from orchestrator.aws import Clients, describe_aws_error, error_code
from orchestrator.deploy.package import ARCHITECTURES, LAMBDA_PYTHON, PackageError, read_manifest
from orchestrator.echo import clip

CAPABILITIES = ["CAPABILITY_IAM", "CAPABILITY_NAMED_IAM"]
MANAGED_PARAMETERS = frozenset({"CodeBucket", "CodeKey", "Architecture"})  # set by deploy from the uploaded zip
CODE_PREFIX = "orch/lambda/"
# The template keeps these on stack deletion (DeletionPolicy: Retain): audit records
# outlive the healer. A test checks this matches the template.
RETAINED_TYPES = frozenset({"AWS::DynamoDB::Table", "AWS::S3::Bucket"})
NO_CHANGES = ("didn't contain changes", "No updates are to be performed")
FAILED_SUFFIXES = ("_FAILED", "ROLLBACK_COMPLETE")

Say = Callable[[str], None]


class DeployError(Exception):
    """AWS refused or the stack failed; the message says what happened and what to do."""


class DeployUsageError(DeployError):
    """The request itself is wrong (parameters, zip, template); nothing was changed."""


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


@dataclass(frozen=True)
class Change:
    action: str  # Add | Modify | Remove | Dynamic
    logical_id: str
    resource_type: str
    replacement: str  # True | False | Conditional | "" (not a Modify)


@dataclass
class ChangeSet:
    stack_name: str
    stack_id: str
    change_set_id: str
    change_set_type: str  # CREATE | UPDATE
    changes: list[Change] = field(default_factory=list)
    no_changes: bool = False


@dataclass(frozen=True)
class StackResult:
    stack_name: str
    status: str
    outputs: dict[str, str]


@dataclass(frozen=True)
class Uploaded:
    bucket: str
    key: str
    size: int
    python: str
    arch: str


# -- template and parameters ------------------------------------------------------------


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


def current_stack(cfn: Any, stack_name: str) -> dict[str, Any] | None:
    try:
        stacks = cfn.describe_stacks(StackName=stack_name)["Stacks"]
    except ClientError as exc:
        if error_code(exc) == "ValidationError" and "does not exist" in str(exc):
            return None
        raise
    return stacks[0] if stacks else None


def change_set_type(stack: Mapping[str, Any] | None) -> str:
    """CREATE or UPDATE, or DeployUsageError for a stack that can be neither."""
    if stack is None:
        return "CREATE"
    status = str(stack["StackStatus"])
    name = stack["StackName"]
    if status == "REVIEW_IN_PROGRESS":  # created by a change set never executed
        return "CREATE"
    if status.endswith("_IN_PROGRESS"):
        raise DeployUsageError(f"stack {name} is busy ({status}): wait for it to finish, then deploy again")
    if status in ("ROLLBACK_COMPLETE", "ROLLBACK_FAILED", "DELETE_FAILED", "UPDATE_ROLLBACK_FAILED"):
        raise DeployUsageError(f"stack {name} is {status} and cannot be updated: `orch destroy --stack-name {name}`, then deploy again")
    return "UPDATE"


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


# -- steps --------------------------------------------------------------------------------


def inspect_code(bucket: str, zip_path: Path) -> tuple[Uploaded, bytes]:
    """The checked zip and the content-hash key it is uploaded under; calls no AWS."""
    try:
        manifest = read_manifest(zip_path)
    except PackageError as exc:
        raise DeployUsageError(str(exc)) from None
    if manifest.get("python") != LAMBDA_PYTHON:
        raise DeployUsageError(
            f"{zip_path} was built for Python {clip(manifest.get('python'), quote=False)} but the function runs python{LAMBDA_PYTHON}: "
            f"rebuild with orch package (default --python-version {LAMBDA_PYTHON})"
        )
    if str(manifest.get("arch", "x86_64")) not in ARCHITECTURES:
        raise DeployUsageError(f"{zip_path} names architecture {clip(manifest.get('arch'))}; the function runs on "
                               f"{' or '.join(sorted(ARCHITECTURES))}: rebuild it with orch package --arch")
    data = Path(zip_path).read_bytes()
    key = f"{CODE_PREFIX}{hashlib.sha256(data).hexdigest()[:24]}.zip"
    return Uploaded(bucket, key, len(data), str(manifest.get("python")), str(manifest.get("arch", "x86_64"))), data


def upload_code(clients: Clients, bucket: str, zip_path: Path) -> Uploaded:
    """Upload under a content-hash key: same code, same key, no change to the function."""
    code, data = inspect_code(bucket, zip_path)
    key = code.key
    s3 = clients.client("s3")
    try:
        s3.put_object(Bucket=bucket, Key=key, Body=data)
    except ClientError as exc:
        if error_code(exc) in ("NoSuchBucket", "404"):
            raise DeployUsageError(
                f"bucket {bucket} does not exist in this account: create it in the stack's region first "
                f"(aws s3 mb s3://{bucket}) or pass another --bucket"
            ) from None
        raise DeployError(f"cannot upload the code to s3://{bucket}/{key}: {describe_aws_error(exc, 's3:PutObject')}") from None
    return code


@dataclass(frozen=True)
class Preview:
    """What a deploy would do, read without changing anything (``--dry-run``)."""

    stack_name: str
    kind: str  # CREATE | UPDATE
    code: Uploaded | None  # None: no --zip, the deploy would build one
    code_uploaded: bool | None  # the key is already in the bucket; None: cannot tell
    template_changed: bool | None  # None for a CREATE
    parameters: dict[str, tuple[str | None, str]]  # name -> (current value, value the deploy sets)


def preview(clients: Clients, prepared: Prepared, bucket: str, zip_path: Path | None, arch: str) -> Preview:
    """Read-only: HeadBucket/HeadObject and GetTemplate, never PutObject or a change set."""
    s3 = clients.client("s3")
    try:
        s3.head_bucket(Bucket=bucket)
    except ClientError as exc:
        if error_code(exc) in ("404", "NoSuchBucket", "NotFound"):
            raise DeployUsageError(f"bucket {bucket} does not exist in this account: create it in the stack's region first (aws s3 mb s3://{bucket})") from None
    code: Uploaded | None = None
    uploaded: bool | None = None
    if zip_path is not None:
        code, _ = inspect_code(bucket, zip_path)
        try:
            s3.head_object(Bucket=bucket, Key=code.key)
            uploaded = True
        except ClientError as exc:
            uploaded = False if error_code(exc) in ("404", "NoSuchKey", "NotFound") else None
    managed = {"CodeBucket": bucket, "CodeKey": code.key if code else "(built at deploy)", "Architecture": code.arch if code else arch}
    wanted = {p["ParameterKey"]: p.get("ParameterValue") for p in stack_parameters(prepared.declared, prepared.given, managed, prepared.stack, prepared.kind)}
    current = {p["ParameterKey"]: p.get("ParameterValue") for p in (prepared.stack or {}).get("Parameters", [])} if prepared.kind == "UPDATE" else {}
    changes = {k: (current.get(k), str(v)) for k, v in sorted(wanted.items()) if v is not None and current.get(k) != str(v)}
    changed: bool | None = None
    if prepared.kind == "UPDATE":
        deployed = clients.client("cloudformation").get_template(StackName=prepared.stack_name, TemplateStage="Original")["TemplateBody"]
        changed = (deployed if isinstance(deployed, str) else json.dumps(deployed)).strip() != prepared.body.strip()
    return Preview(prepared.stack_name, prepared.kind, code, uploaded, changed, changes)


@dataclass(frozen=True)
class Prepared:
    """A checked request: the template parses, the parameters fit it, the stack can take it."""

    stack_name: str
    body: str
    kind: str  # CREATE | UPDATE
    stack: Mapping[str, Any] | None
    declared: Mapping[str, bool]
    given: Mapping[str, str]


def prepare(clients: Clients, stack_name: str, body: str, given: Mapping[str, str]) -> Prepared:
    """Every check that needs no change to AWS, so a bad request uploads and creates nothing."""
    cfn = clients.client("cloudformation")
    declared = template_parameters(cfn, body)
    stack = current_stack(cfn, stack_name)
    kind = change_set_type(stack)
    placeholder = {k: "-" for k in MANAGED_PARAMETERS}
    stack_parameters(declared, given, placeholder, stack, kind)
    return Prepared(stack_name, body, kind, stack, declared, dict(given))


def create_change_set(
    clients: Clients,
    prepared: Prepared,
    uploaded: Uploaded,
    *,
    wait_delay: int = 5,
    wait_attempts: int = 120,
) -> ChangeSet:
    """Create the change set and wait until CloudFormation has computed it."""
    cfn = clients.client("cloudformation")
    managed = {"CodeBucket": uploaded.bucket, "CodeKey": uploaded.key, "Architecture": uploaded.arch}
    parameters = stack_parameters(prepared.declared, prepared.given, managed, prepared.stack, prepared.kind)
    name = f"orch-{datetime.now(timezone.utc):%Y%m%d%H%M%S}"
    try:
        created = cfn.create_change_set(
            StackName=prepared.stack_name,
            ChangeSetName=name,
            ChangeSetType=prepared.kind,
            TemplateBody=prepared.body,
            Parameters=parameters,
            Capabilities=CAPABILITIES,
            Description="orch deploy",
        )
    except ClientError as exc:
        if any(marker in str(exc) for marker in NO_CHANGES):
            stack_id = str((prepared.stack or {}).get("StackId", ""))
            return ChangeSet(prepared.stack_name, stack_id, "", prepared.kind, no_changes=True)
        raise DeployError(f"CloudFormation refused the change set: {describe_aws_error(exc)}") from None
    change_set = ChangeSet(prepared.stack_name, created["StackId"], created["Id"], prepared.kind)
    try:
        cfn.get_waiter("change_set_create_complete").wait(
            ChangeSetName=change_set.change_set_id, WaiterConfig={"Delay": wait_delay, "MaxAttempts": wait_attempts}
        )
    except WaiterError:
        described = cfn.describe_change_set(ChangeSetName=change_set.change_set_id)
        reason = str(described.get("StatusReason", ""))
        if any(marker in reason for marker in NO_CHANGES):
            cfn.delete_change_set(ChangeSetName=change_set.change_set_id)
            change_set.no_changes = True
            return change_set
        discard(clients, change_set)
        raise DeployError(f"change set {name} failed: {reason or described.get('Status')}") from None
    change_set.changes = list_changes(cfn, change_set.change_set_id)
    return change_set


def list_changes(cfn: Any, change_set_id: str) -> list[Change]:
    changes: list[Change] = []
    token: str | None = None
    while True:  # pagination (no botocore paginator exists for DescribeChangeSet), not a retry
        kwargs: dict[str, Any] = {"ChangeSetName": change_set_id}
        if token:
            kwargs["NextToken"] = token
        page = cfn.describe_change_set(**kwargs)
        for item in page.get("Changes", []):
            rc = item.get("ResourceChange", {})
            changes.append(
                Change(rc.get("Action", ""), rc.get("LogicalResourceId", ""), rc.get("ResourceType", ""), str(rc.get("Replacement", "") or ""))
            )
        token = page.get("NextToken")
        if not token:
            return changes


def discard(clients: Clients, change_set: ChangeSet) -> None:
    """Delete the change set, and the empty stack a CREATE change set leaves behind."""
    cfn = clients.client("cloudformation")
    if change_set.change_set_id:
        cfn.delete_change_set(ChangeSetName=change_set.change_set_id)
    if change_set.change_set_type == "CREATE" and change_set.stack_id:
        stack = current_stack(cfn, change_set.stack_id)
        if stack is not None and stack["StackStatus"] == "REVIEW_IN_PROGRESS":
            cfn.delete_stack(StackName=change_set.stack_id)


def execute(
    clients: Clients,
    change_set: ChangeSet,
    on_event: Say,
    *,
    poll_seconds: float = 5.0,
    timeout_seconds: float = 3600.0,
    sleep: Callable[[float], None] | None = None,
) -> StackResult:
    """Execute the change set and wait for the stack, reporting each new stack event."""
    cfn = clients.client("cloudformation")
    earlier = event_ids(cfn, change_set.stack_id)
    cfn.execute_change_set(ChangeSetName=change_set.change_set_id)
    status = wait_for_stack(cfn, change_set.stack_id, on_event, poll_seconds, timeout_seconds, sleep, set(earlier))
    if status.endswith(FAILED_SUFFIXES):
        raise DeployError(f"stack {change_set.stack_name} ended {status}: {failure_reasons(cfn, change_set.stack_id, earlier)}")
    stack = current_stack(cfn, change_set.stack_id) or {}
    outputs = {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs") or []}
    return StackResult(change_set.stack_name, status, outputs)


def event_ids(cfn: Any, stack_id: str) -> frozenset[str]:
    """Ids of the events already there, so only what this run causes is shown."""
    return frozenset(e["EventId"] for e in cfn.describe_stack_events(StackName=stack_id).get("StackEvents", []))


def wait_for_stack(
    cfn: Any,
    stack_id: str,
    on_event: Say,
    poll_seconds: float,
    timeout_seconds: float,
    sleep: Callable[[float], None] | None = None,
    seen: set[str] | None = None,
) -> str:
    """Poll until the stack leaves *_IN_PROGRESS; returns its final status."""
    shown: set[str] = set() if seen is None else seen

    def poll() -> str:
        for line in new_events(cfn, stack_id, shown):
            on_event(line)
        stack = current_stack(cfn, stack_id)
        return str(stack["StackStatus"]) if stack else "DELETE_COMPLETE"

    extra = {"sleep": sleep} if sleep is not None else {}
    retrying = Retrying(
        retry=retry_if_result(lambda status: status.endswith("_IN_PROGRESS")),
        wait=wait_fixed(poll_seconds),
        stop=stop_after_delay(timeout_seconds),
        retry_error_callback=lambda state: state.outcome.result() if state.outcome else "UNKNOWN",
        **extra,
    )
    status = str(retrying(poll))
    if status.endswith("_IN_PROGRESS"):
        raise DeployError(
            f"stack still {status} after {timeout_seconds:.0f} s; follow it with aws cloudformation describe-stack-events --stack-name {stack_id}"
        )
    return status


def new_events(cfn: Any, stack_id: str, shown: set[str]) -> list[str]:
    """Lines for stack events not shown yet, oldest first (the API lists newest first)."""
    events = cfn.describe_stack_events(StackName=stack_id).get("StackEvents", [])
    lines = []
    for event in sorted((e for e in events if e["EventId"] not in shown), key=lambda e: e["Timestamp"]):
        shown.add(event["EventId"])
        reason = f"  {event['ResourceStatusReason']}" if event.get("ResourceStatusReason") else ""
        lines.append(f"{event['Timestamp']:%H:%M:%S}  {event['ResourceStatus']:<20} {event['LogicalResourceId']} ({event['ResourceType']}){reason}")
    return lines


def failure_reasons(cfn: Any, stack_id: str, earlier: frozenset[str], limit: int = 3) -> str:
    events = cfn.describe_stack_events(StackName=stack_id).get("StackEvents", [])
    reasons = [
        f"{e['LogicalResourceId']}: {e.get('ResourceStatusReason', e['ResourceStatus'])}"
        for e in sorted(events, key=lambda e: e["Timestamp"])
        if e["ResourceStatus"].endswith("_FAILED") and e["EventId"] not in earlier
    ]
    return "; ".join(reasons[:limit]) or "no failure reason in the stack events"


# -- destroy -------------------------------------------------------------------------------


def retained_resources(cfn: Any, stack_name: str) -> list[tuple[str, str]]:
    """(type, physical id) of the resources the template keeps when the stack is deleted."""
    paginator = cfn.get_paginator("list_stack_resources")
    kept = []
    for page in paginator.paginate(StackName=stack_name):
        for item in page.get("StackResourceSummaries", []):
            if item.get("ResourceType") in RETAINED_TYPES and item.get("PhysicalResourceId"):
                kept.append((item["ResourceType"], item["PhysicalResourceId"]))
    return sorted(kept)


def destroy(
    clients: Clients,
    stack: Mapping[str, Any],
    on_event: Say,
    *,
    poll_seconds: float = 5.0,
    timeout_seconds: float = 3600.0,
    sleep: Callable[[float], None] | None = None,
) -> str:
    cfn = clients.client("cloudformation")
    stack_id = str(stack["StackId"])
    earlier = event_ids(cfn, stack_id)
    cfn.delete_stack(StackName=stack_id)
    status = wait_for_stack(cfn, stack_id, on_event, poll_seconds, timeout_seconds, sleep, set(earlier))
    if status != "DELETE_COMPLETE":
        raise DeployError(f"stack {stack['StackName']} ended {status}: {failure_reasons(cfn, stack_id, earlier)}")
    return status

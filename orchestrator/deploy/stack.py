"""Deploy the stack: upload the Lambda zip, then create or update through a change set.

A change set, not CreateStack/UpdateStack, so the operator sees what will change
before it changes and an unchanged redeploy is recognised as such. ``--dry-run`` makes
no change anywhere, so it creates neither the upload nor a change set (a CREATE change
set even creates a stack, in REVIEW_IN_PROGRESS): ``preview`` reads what it can instead
(is the code already uploaded, does the template differ, which parameters change). The steps are separate functions so the CLI can show the change set between
creating and executing it; all AWS calls go through ``Clients`` (so --region,
--profile and AWS_ENDPOINT_URL apply), waiting uses botocore's waiter for the change
set and a tenacity poll for the stack, which prints stack events as they arrive.

The zip's checks and upload are ``code``, the template and its parameters ``template``,
the wait for the stack and its events ``stack_watch``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Mapping

from botocore.exceptions import ClientError, WaiterError

from orchestrator.aws import Clients, describe_aws_error, error_code
from orchestrator.deploy.code import Uploaded, inspect_code
from orchestrator.deploy.errors import DeployError, DeployUsageError
from orchestrator.deploy.stack_watch import Say, current_stack, event_ids, failure_reasons, wait_for_stack
from orchestrator.deploy.template import MANAGED_PARAMETERS, stack_parameters, template_parameters

CAPABILITIES = ["CAPABILITY_IAM", "CAPABILITY_NAMED_IAM"]
# The template keeps these on stack deletion (DeletionPolicy: Retain): audit records
# outlive the healer. A test checks this matches the template.
RETAINED_TYPES = frozenset({"AWS::DynamoDB::Table", "AWS::S3::Bucket"})
NO_CHANGES = ("didn't contain changes", "No updates are to be performed")
FAILED_SUFFIXES = ("_FAILED", "ROLLBACK_COMPLETE")


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


# -- steps --------------------------------------------------------------------------------


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

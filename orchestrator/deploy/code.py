"""The function's code on its way to S3: build the zip (or take --zip), upload it to each region's bucket, let other accounts read it.

One place for both deploys (`orch deploy --stack-name` and `--stack-set`), so they
build, check and name the zip the same way. A stack set's stacks live in other
accounts, and Lambda fetches a function's code with the credentials of whoever creates
the function (there, the stack set's execution role): the artifact bucket needs a
policy that lets those accounts read the code (``grant_code_read``).
"""

from __future__ import annotations

import hashlib
import json
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from botocore.exceptions import ClientError

from orchestrator.aws import Clients, describe_aws_error, error_code
from orchestrator.deploy import package
from orchestrator.deploy.errors import DeployError, DeployUsageError
from orchestrator.echo import clip

Say = Callable[[str], None]
CODE_PREFIX = "orch/lambda/"
GRANT_SID = "OrchStackSetCodeRead"
PERMISSIONS = frozenset({"s3:GetBucketPolicy", "s3:PutBucketPolicy", "organizations:DescribeOrganization"})


@dataclass(frozen=True)
class Uploaded:
    bucket: str
    key: str
    size: int
    python: str
    arch: str


def inspect_code(bucket: str, zip_path: Path) -> tuple[Uploaded, bytes]:
    """The checked zip and the content-hash key it is uploaded under; calls no AWS."""
    try:
        manifest = package.read_manifest(zip_path)
    except package.PackageError as exc:
        raise DeployUsageError(str(exc)) from None
    if manifest.get("python") != package.LAMBDA_PYTHON:
        raise DeployUsageError(
            f"{zip_path} was built for Python {clip(manifest.get('python'), quote=False)} "
            f"but the function runs python{package.LAMBDA_PYTHON}: "
            f"rebuild with orch package (default --python-version {package.LAMBDA_PYTHON})"
        )
    if str(manifest.get("arch", "x86_64")) not in package.ARCHITECTURES:
        raise DeployUsageError(f"{zip_path} names architecture {clip(manifest.get('arch'))}; the function runs on "
                               f"{' or '.join(sorted(package.ARCHITECTURES))}: rebuild it with orch package --arch")
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
class Destination:
    """One region's bucket, reached through that region's clients."""

    region: str
    clients: Clients
    bucket: str


def build_and_upload(destinations: Sequence[Destination], zip_path: Path | None, arch: str, say: Say) -> Uploaded:
    """Build the zip when none is given, then upload it under its content hash to every destination."""
    if not destinations:
        raise DeployError("no bucket to upload the code to")
    uploaded: Uploaded | None = None
    with tempfile.TemporaryDirectory(prefix="orch-deploy-") as tmp:
        if zip_path is None:
            built = package.build(Path(tmp) / "orch-lambda.zip", package.Target(arch))
            say(built.describe())
            zip_path = built.path
        for where in destinations:
            uploaded = upload_code(where.clients, where.bucket, zip_path)
            say(f"uploaded s3://{uploaded.bucket}/{uploaded.key} ({uploaded.size / 1048576:.1f} MB, {where.region})")
    assert uploaded is not None
    return uploaded


def read_statement(bucket: str, accounts: Sequence[str] = (), org_id: str | None = None) -> dict[str, Any]:
    """The bucket-policy statement that lets these accounts (or this organization) read the code, and nothing else."""
    statement: dict[str, Any] = {
        "Sid": GRANT_SID,
        "Effect": "Allow",
        "Action": "s3:GetObject",
        "Resource": f"arn:aws:s3:::{bucket}/{CODE_PREFIX}*",
    }
    if org_id:
        statement["Principal"] = "*"
        statement["Condition"] = {"StringEquals": {"aws:PrincipalOrgID": org_id}}
    else:
        statement["Principal"] = {"AWS": [f"arn:aws:iam::{a}:root" for a in sorted(set(accounts))]}
    return statement


def merged_policy(current: Mapping[str, Any] | None, statement: Mapping[str, Any]) -> dict[str, Any]:
    """The bucket's policy with orch's statement replaced (accounts granted before are kept); others' statements untouched."""
    policy = dict(current or {"Version": "2012-10-17", "Statement": []})
    statements = policy.get("Statement", [])
    if isinstance(statements, dict):
        statements = [statements]
    mine = [s for s in statements if s.get("Sid") == GRANT_SID]
    rest = [s for s in statements if s.get("Sid") != GRANT_SID]
    new = dict(statement)
    principal = new.get("Principal")
    if isinstance(principal, dict) and mine and isinstance(mine[0].get("Principal"), dict):
        before = mine[0]["Principal"].get("AWS", [])
        before = [before] if isinstance(before, str) else list(before)
        new["Principal"] = {"AWS": sorted(set(before) | set(principal["AWS"]))}
    policy["Statement"] = [*rest, new]
    return policy


def organization_id(clients: Clients) -> str:
    try:
        return str(clients.client("organizations").describe_organization()["Organization"]["Id"])
    except ClientError as exc:
        raise DeployError(f"cannot read the organization's id for the code bucket's policy: {describe_aws_error(exc, 'organizations:DescribeOrganization')}") from None


def grant_code_read(clients: Clients, bucket: str, accounts: Sequence[str] = (), org_id: str | None = None) -> dict[str, Any]:
    """GetBucketPolicy, add or widen orch's statement, PutBucketPolicy; returns the policy written."""
    s3 = clients.client("s3")
    try:
        current = json.loads(s3.get_bucket_policy(Bucket=bucket)["Policy"])
    except ClientError as exc:
        if error_code(exc) != "NoSuchBucketPolicy":
            raise DeployError(f"cannot read the policy of s3://{bucket}: {describe_aws_error(exc, 's3:GetBucketPolicy')}") from None
        current = None
    policy = merged_policy(current, read_statement(bucket, accounts, org_id))
    try:
        s3.put_bucket_policy(Bucket=bucket, Policy=json.dumps(policy))
    except ClientError as exc:
        raise DeployError(f"cannot let the stack set's accounts read s3://{bucket}: {describe_aws_error(exc, 's3:PutBucketPolicy')}") from None
    return policy

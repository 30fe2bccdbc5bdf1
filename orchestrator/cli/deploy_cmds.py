"""`orch package`, `orch deploy`, `orch destroy`: from source to a running stack and back.

Thin shells over orchestrator.deploy.package and orchestrator.deploy.stack. Progress (build sizes,
stack events) goes to stderr; the change set, the outputs, or with ``-o json`` one
JSON document, go to stdout.
"""

from __future__ import annotations

import functools
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

import click
from rich.table import Table

from orchestrator.aws import AWS_CALL_ERRORS, describe_aws_error
from orchestrator.cli.common import (
    DISPLAY,
    Exit,
    OrchError,
    Runtime,
    add_global_options,
    common_options,
    display_from,
    given_options,
    stdin_is_terminal,
)
from orchestrator.cli.extras import sandbox_deploy_hint
from orchestrator.cli.output import FORMATS
from orchestrator.cli.stackset_cmd import deploy_stack_set, stack_set_options
from orchestrator.deploy import checks, code, package
from orchestrator.deploy import stack as deploy
from orchestrator.deploy.code import CODE_PREFIX
from orchestrator.deploy.errors import DeployError, DeployUsageError
from orchestrator.deploy.stack_watch import current_stack
from orchestrator.deploy.template import default_template, parse_parameters, read_template
from orchestrator.echo import clip

Json = dict[str, Any]


@contextmanager
def _errors(endpoint_url: str | None = None) -> Iterator[None]:
    """Every failure the user can act on as one line and a documented exit code."""
    try:
        yield
    except DeployUsageError as exc:
        raise OrchError(str(exc), Exit.USAGE) from None
    except DeployError as exc:
        raise OrchError(sandbox_deploy_hint(endpoint_url) or str(exc), Exit.AWS) from None
    except package.PackageError as exc:
        raise OrchError(str(exc), Exit.USAGE) from None
    except AWS_CALL_ERRORS as exc:
        raise OrchError(sandbox_deploy_hint(endpoint_url) or describe_aws_error(exc), Exit.AWS) from None


def can_ask() -> bool:
    """Only a person at a terminal can confirm a deletion."""
    return stdin_is_terminal()


def _package_json(result: package.PackageResult) -> Json:
    return {
        "path": str(result.path),
        "python": result.target.python_version,
        "arch": result.target.arch,
        "zipped_bytes": result.zipped_bytes,
        "unzipped_bytes": result.unzipped_bytes,
        "files": result.files,
        "sha256": result.sha256,
        "distributions": list(result.distributions),
    }


PACKAGE_DISPLAY = ("query", "debug", "no_color")  # --output is package's own: a format, or the old path


@click.command("package")
@click.option("--zip", "zip_path", type=click.Path(dir_okay=False, path_type=Path), help="Where to write the zip.  [default: orch-lambda.zip]")
@click.option("--arch", type=click.Choice(sorted(package.ARCHITECTURES)), default="x86_64", show_default=True, help="Lambda architecture.")
@click.option("--python-version", default=package.LAMBDA_PYTHON, show_default=True, help="Lambda's Python (the template runs python3.12; orch deploy refuses other builds).")
@click.option("--no-boto3", is_flag=True, help="Leave boto3 out and use the Lambda runtime's copy (smaller zip).")
@click.option("--unpinned", is_flag=True, help="Take orch's declared version ranges instead of the versions installed here.")
@click.option("--wheelhouse", type=click.Path(path_type=Path), help="Install only from this directory of wheels (offline builds).")
@click.option("--output", "-o", "output_arg", metavar="[table|json|text]",
              help="Output format. (A file name here is the old spelling of --zip: deprecated, still works.)")
@click.option("--json", "as_json", is_flag=True, hidden=True, help="Deprecated: -o json.")
@functools.partial(add_global_options, names=PACKAGE_DISPLAY)
def package_command(
    zip_path: Path | None, arch: str, python_version: str, no_boto3: bool, unpinned: bool, wheelhouse: Path | None,
    output_arg: str | None, as_json: bool, **display: Any,
) -> None:
    """Build the Lambda zip: orch plus its dependencies as wheels for Lambda's platform.

    Dependencies are pinned to the versions installed here (what the tests ran against).
    Only what the handler imports goes in: the CLI's own libraries (click, rich,
    platformdirs) stay out.
    """
    output_format = output_arg
    if output_arg is not None and output_arg not in FORMATS:
        if zip_path is not None:
            raise OrchError(f"give the zip's path once: --zip {zip_path} (--output {clip(output_arg)} is the old spelling)", Exit.USAGE)
        click.echo(f"warning: `orch package --output PATH` is deprecated; use --zip {output_arg}", err=True)
        zip_path, output_format = Path(output_arg), None
    values = given_options({**display, "output": "json" if as_json else output_format}, DISPLAY)
    shown = display_from(values)
    with _errors():
        result = package.build(
            zip_path or Path("orch-lambda.zip"),
            package.Target(arch, python_version),
            include_boto3=not no_boto3,
            pin_installed=not unpinned,
            wheelhouse=wheelhouse,
        )
    shown.emit(_package_json(result), lambda: click.echo(result.describe() + "\nbundled: " + ", ".join(result.distributions)))


def change_table(change_set: deploy.ChangeSet) -> Table:
    table = Table(title=f"change set for {change_set.stack_name} ({change_set.change_set_type})", title_justify="left")
    for column in ("action", "resource", "type", "replacement"):
        table.add_column(column)
    for c in change_set.changes:
        table.add_row(c.action, c.logical_id, c.resource_type, c.replacement if c.action == "Modify" else "")
    return table


def outputs_table(outputs: dict[str, str]) -> Table:
    table = Table(title="outputs", title_justify="left")
    table.add_column("key")
    table.add_column("value", overflow="fold")
    for key, value in sorted(outputs.items()):
        table.add_row(key, value)
    return table


def _deploy_parameters(runtime: Runtime, pairs: tuple[str, ...]) -> dict[str, str]:
    """--parameter pairs, plus --selector mapped onto SelectorKey/SelectorValue."""
    given = parse_parameters(pairs)
    if runtime.overrides.get("state"):
        raise DeployUsageError("--state does not apply to deploy: the stack makes its own table (see the StateStore output)")
    selector = runtime.overrides.get("selector")
    if selector:
        if len(selector) != 1:
            raise DeployUsageError("the stack manages instances by one tag: pass --selector KEY=VALUE with a single pair")
        if {"SelectorKey", "SelectorValue"} & set(given):
            raise DeployUsageError("give the selector either as --selector or as --parameter SelectorKey/SelectorValue, not both")
        ((key, value),) = selector.items()
        given.update(SelectorKey=key, SelectorValue=value)
    return given


@click.command("deploy")
@click.option("--stack-name", help="CloudFormation stack to create or update (one region, this account).")
@click.option("--bucket", required=True, help="Existing S3 bucket in the stack's region for the code zip ({region} in the name: one per region).")
@click.option("--parameter", "-p", "parameters", multiple=True, metavar="KEY=VALUE", help="Template parameter (repeatable), e.g. Mode=heal.")
@click.option("--zip", "zip_path", type=click.Path(dir_okay=False, path_type=Path), help="Deploy this zip from orch package instead of building one.")
@click.option("--arch", type=click.Choice(sorted(package.ARCHITECTURES)), default="x86_64", show_default=True, help="Architecture when building the zip.")
@click.option("--template", "template_path", type=click.Path(dir_okay=False, path_type=Path), help="Template (default: the one shipped with orch, cfn/orchestrator.yaml).")
@click.option("--dry-run", is_flag=True, help="Show what would be uploaded and which parameters change; create, upload or change nothing.")
@stack_set_options
@common_options
def deploy_command(
    runtime: Runtime,
    stack_name: str | None,
    bucket: str,
    parameters: tuple[str, ...],
    zip_path: Path | None,
    arch: str,
    template_path: Path | None,
    dry_run: bool,
    **stack_set: Any,
) -> None:
    """Package, upload and create or update the stack through a change set (or a stack set: --stack-set)."""
    if (stack_name is None) == (stack_set["stack_set"] is None):
        raise OrchError("give exactly one of --stack-name NAME (one stack) or --stack-set NAME --regions ... (many)", Exit.USAGE)
    if stack_set["stack_set"] is not None:
        with _errors(runtime.endpoint_url):
            given = _deploy_parameters(runtime, parameters)
            body = read_template(template_path or default_template())
            deploy_stack_set(runtime, given, body, bucket, zip_path, arch, dry_run, **stack_set)
        return
    if any(stack_set.values()):
        raise OrchError("--regions, --accounts, --ou and the other stack-set options need --stack-set NAME", Exit.USAGE)
    err = runtime.console(stderr=True)
    out = runtime.console()
    with _errors(runtime.endpoint_url):
        assert stack_name is not None  # exactly one of the two, above
        checks.check_name(stack_name, "--stack-name")
        checks.check_zip(zip_path, bucket)
        given = _deploy_parameters(runtime, parameters)
        body = read_template(template_path or default_template())
        clients = runtime.clients
        prepared = deploy.prepare(clients, stack_name, body, given)
        checks.check_values(checks.parameter_rules(clients.client("cloudformation"), body), given)
        if dry_run:
            _show_preview(runtime, deploy.preview(clients, prepared, bucket, zip_path, arch), bucket)
            return
        uploaded = code.build_and_upload([code.Destination(clients.region or "-", clients, bucket)], zip_path, arch, err.print)
        change_set = deploy.create_change_set(clients, prepared, uploaded)
        result: Json = {
            "stack_name": stack_name,
            "code": {"bucket": uploaded.bucket, "key": uploaded.key, "bytes": uploaded.size},
            "change_set_type": change_set.change_set_type,
            "changes": [c.__dict__ for c in change_set.changes],
            "executed": False,
        }
        if change_set.no_changes:
            result["status"] = "no changes"
            if runtime.json:
                runtime.emit(result)
            else:
                out.print(f"no changes: stack {stack_name} is already up to date")
            return
        if not runtime.json:
            out.print(change_table(change_set))
        stack = deploy.execute(clients, change_set, err.print)
        result.update(executed=True, status=stack.status, outputs=stack.outputs)
    if runtime.json:
        runtime.emit(result)
        return
    out.print(f"stack {stack_name}: {stack.status}")
    if stack.outputs:
        out.print(outputs_table(stack.outputs))
    else:
        out.print("(the stack reports no outputs)")


def _show_preview(runtime: Runtime, seen: deploy.Preview, bucket: str) -> None:
    """A dry run's answer: nothing was uploaded, no change set or stack was created."""
    code: Json | None = None
    if seen.code is not None:
        code = {"bucket": bucket, "key": seen.code.key, "bytes": seen.code.size, "already_uploaded": seen.code_uploaded}
    if runtime.json:
        runtime.emit(
            {
                "stack_name": seen.stack_name,
                "dry_run": True,
                "change_set_type": seen.kind,
                "code": code,
                "template_changed": seen.template_changed,
                "parameters": {k: {"from": old, "to": new} for k, (old, new) in seen.parameters.items()},
                "executed": False,
                "status": "dry run: nothing uploaded, no change set, nothing changed",
            }
        )
        return
    out = runtime.console()
    table = Table(title=f"dry run for {seen.stack_name} ({seen.kind}): nothing uploaded, no change set created", title_justify="left")
    table.add_column("what")
    table.add_column("would be", overflow="fold")
    if seen.code is None:
        table.add_row("code", f"built by orch package and uploaded to s3://{bucket}/{CODE_PREFIX}<content hash>.zip")
    else:
        there = {True: "already uploaded", False: "uploaded", None: "uploaded (cannot tell whether it is already there)"}[seen.code_uploaded]
        table.add_row("code", f"s3://{bucket}/{seen.code.key} ({seen.code.size / 1048576:.1f} MB): {there}")
    if seen.kind == "UPDATE":
        table.add_row("template", "changed" if seen.template_changed else "unchanged")
    for name, (old, new) in seen.parameters.items():
        table.add_row(f"parameter {name}", new if old is None else f"{old} -> {new}")
    out.print(table)
    out.print("dry run: nothing changed (CloudFormation's per-resource diff needs a change set, which a real deploy shows first)")


@click.command("destroy")
@click.option("--stack-name", required=True, help="CloudFormation stack to delete.")
@click.option("--yes", "-y", "assume_yes", is_flag=True, help="Do not ask for confirmation.")
@common_options
def destroy_command(runtime: Runtime, stack_name: str, assume_yes: bool) -> None:
    """Delete the stack. The state table and the evidence bucket are kept (DeletionPolicy Retain)."""
    out = runtime.console()
    err = runtime.console(stderr=True)
    with _errors(runtime.endpoint_url):
        clients = runtime.clients
        cfn = clients.client("cloudformation")
        stack = current_stack(cfn, stack_name)
        if stack is None:
            out.print(f"no stack {stack_name} in {clients.region}: nothing to destroy")
            return
        kept = deploy.retained_resources(cfn, stack_name)
        if not assume_yes:
            if not can_ask():
                raise OrchError(f"refusing to delete stack {stack_name} without --yes (no terminal to ask on)", Exit.USAGE)
            click.confirm(f"delete stack {stack_name} ({stack['StackStatus']})?", abort=True, err=True)
        status = deploy.destroy(clients, stack, err.print)
    result = {"stack_name": stack_name, "status": status, "retained": [{"type": t, "id": i} for t, i in kept]}
    if runtime.json:
        runtime.emit(result)
        return
    out.print(f"stack {stack_name}: {status}")
    for rtype, physical in kept:
        out.print(f"kept {rtype} {physical} (DeletionPolicy Retain): delete it by hand when no longer needed")

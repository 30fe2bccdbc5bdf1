"""`orch deploy --stack-set`: the CLI shell over orchestrator.deploy.stackset.

Uploads the code once per region (a function's zip must be in a bucket of its own
region) and lets the target accounts read it, plans the stack set calls, shows them
(``--dry-run`` stops there), runs them and shows each stack instance's status.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import click
from rich.table import Table

from orchestrator.aws import Clients
from orchestrator.cli.common import Runtime
from orchestrator.deploy import checks, code, stackset, stackset_aws
from orchestrator.deploy.errors import DeployUsageError
from orchestrator.deploy.template import MANAGED_PARAMETERS, template_parameters
from orchestrator.echo import clip
from orchestrator.estate.accounts import split_list

F = Callable[..., Any]


def stack_set_options(func: F) -> F:
    options = [
        click.option("--stack-set", "stack_set", metavar="NAME", help="Deploy through this CloudFormation stack set (many accounts and regions)."),
        click.option("--regions", help="Stack set: comma-separated regions, e.g. us-east-1,eu-west-1."),
        click.option("--accounts", help="Stack set, self-managed: comma-separated 12-digit account ids."),
        click.option("--ou", help="Stack set, service-managed (AWS Organizations, auto-deployment on): comma-separated OU ids."),
        click.option("--administration-role-arn", help="Self-managed: the administration role (default AWSCloudFormationStackSetAdministrationRole)."),
        click.option("--execution-role-name", help="Self-managed: the execution role in each account (default AWSCloudFormationStackSetExecutionRole)."),
        click.option("--instance-parameter", "instance_parameters", multiple=True, metavar="ACCOUNT:REGION:KEY=VALUE",
                     help="A parameter of one stack instance (repeatable; * for any account or region), e.g. 111122223333:us-east-1:VpcId=vpc-1."),
        click.option("--failure-tolerance-percentage", type=click.IntRange(0, 100), help="Stack set: accounts per region that may fail.  [default: 10]"),
        click.option("--max-concurrent-percentage", type=click.IntRange(1, 100), help="Stack set: accounts deployed at once.  [default: 25]"),
        click.option("--region-concurrency", type=click.Choice(["parallel", "sequential"]), help="Stack set: regions at once or in order.  [default: parallel]"),
        click.option("--call-as", type=click.Choice(["self", "delegated-admin"]),
                     help="--ou: delegated-admin from a delegated administrator account, self from the management account.  [default: self]"),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def parse_instance_parameters(pairs: tuple[str, ...]) -> dict[tuple[str, str], dict[str, str]]:
    found: dict[tuple[str, str], dict[str, str]] = {}
    for pair in pairs:
        where, sep, assignment = pair.rpartition(":")
        account, sep2, region = where.partition(":")
        key, eq, value = assignment.partition("=")
        if not sep or not sep2 or not eq or not account or not region or not key:
            raise DeployUsageError(f"--instance-parameter {clip(pair)} is not ACCOUNT:REGION:KEY=VALUE (example: 111122223333:us-east-1:VpcId=vpc-0abc)")
        found.setdefault((account, region), {})[key] = value
    return found


def build_request(given: dict[str, str], body: str, name: str, options: dict[str, Any]) -> stackset.Request:
    defaults = stackset.Preferences()
    preferences = stackset.Preferences(
        options.get("failure_tolerance_percentage") if options.get("failure_tolerance_percentage") is not None else defaults.failure_tolerance_percentage,
        options.get("max_concurrent_percentage") or defaults.max_concurrent_percentage,
        (options.get("region_concurrency") or defaults.region_concurrency).upper(),
    )
    return stackset.Request(
        name=name,
        body=body,
        parameters=given,
        regions=split_list(options.get("regions")),
        accounts=split_list(options.get("accounts")),
        ous=split_list(options.get("ou")),
        instance_parameters=parse_instance_parameters(tuple(options.get("instance_parameters") or ())),
        administration_role_arn=options.get("administration_role_arn"),
        execution_role_name=options.get("execution_role_name"),
        preferences=preferences,
        call_as=(options.get("call_as") or "").upper().replace("-", "_") or None,
    )


def bucket_in(bucket: str, region: str, regions: tuple[str, ...]) -> str:
    if "{region}" not in bucket and len(regions) > 1:
        raise DeployUsageError(
            f"a function's code must be in a bucket of its own region: pass --bucket with {{region}} in it (e.g. {bucket}-{{region}}), one bucket per region"
        )
    return bucket.replace("{region}", region)


def plan_table(planned: stackset.Plan) -> Table:
    table = Table(title=f"stack set {planned.name}: {planned.stack_set_action}"
                  f" ({'service-managed' if planned.service_managed else 'self-managed'})", title_justify="left")
    for column in ("region", "accounts / OUs", "offset (min)", "overrides"):
        table.add_column(column, overflow="fold")
    for group in planned.groups:
        overrides = ", ".join(f"{k}={v}" for k, v in group.overrides if k != stackset.OFFSET_PARAMETER)
        where = ",".join(group.targets) if group.account_filter != "DIFFERENCE" else f"{','.join(group.ous)} but {','.join(group.targets)}"
        table.add_row(group.region, where, dict(group.overrides)[stackset.OFFSET_PARAMETER], overrides or "-")
    for group in planned.updates:
        overrides = ", ".join(f"{k}={v}" for k, v in group.overrides if k != stackset.OFFSET_PARAMETER)
        table.add_row(group.region, ",".join(group.targets), dict(group.overrides)[stackset.OFFSET_PARAMETER],
                      f"existing stack instance, new parameters: {overrides or '-'}")
    for account, region in planned.already:
        table.add_row(region, account, "-", "already has a stack instance (updated by the stack set update)")
    return table


def instances_table(instances: list[dict[str, Any]]) -> Table:
    table = Table(title="stack instances", title_justify="left")
    for column in ("account", "region", "status", "detail", "reason"):
        table.add_column(column, overflow="fold")
    for item in instances:
        table.add_row(
            str(item.get("Account", "-")), str(item.get("Region", "-")), str(item.get("Status", "-")),
            str((item.get("StackInstanceStatus") or {}).get("DetailedStatus", "-")), str(item.get("StatusReason") or ""),
        )
    return table


def plan_json(planned: stackset.Plan) -> dict[str, Any]:
    return {
        "stack_set": planned.name,
        "action": planned.stack_set_action,
        "permission_model": "SERVICE_MANAGED" if planned.service_managed else "SELF_MANAGED",
        "operation_preferences": planned.preferences.as_api([g.region for g in planned.groups]),
        "create_stack_instances": [
            {"region": g.region, "targets": list(g.targets), "parameter_overrides": dict(g.overrides)} for g in planned.groups
        ],
        "update_stack_instances": [
            {"region": g.region, "targets": list(g.targets), "parameter_overrides": dict(g.overrides)} for g in planned.updates
        ],
        "already_deployed": [{"account": a, "region": r} for a, r in planned.already],
        "stack_set_parameters": {
            str(p["ParameterKey"]): ("(previous value)" if p.get("UsePreviousValue") else p.get("ParameterValue"))
            for p in planned.stack_set_call.get("Parameters", [])
        },
        "call_as": planned.call_as or "SELF",
        "notes": list(planned.notes),
    }


def code_readers(request: stackset.Request) -> list[str]:
    """The accounts whose stacks read the code (self-managed); --ou grants the organization instead."""
    return sorted(set(request.accounts))


def deploy_stack_set(
    runtime: Runtime, given: dict[str, str], body: str, bucket: str, zip_path: Path | None, arch: str, dry_run: bool, **options: Any,
) -> None:
    err = runtime.console(stderr=True)
    request = build_request(given, body, options["stack_set"], options)
    # What the real deploy would fail on, refused before any call (a dry run included).
    checks.check_name(request.name, "--stack-set")
    checks.check_regions(request.regions)
    if bool(request.accounts) != bool(request.ous):  # both or neither: check_request's own error, below
        checks.check_instance_targets(request.instance_parameters, None if request.service_managed else request.accounts, request.regions)
    checks.check_zip(zip_path, bucket)
    clients = runtime.clients  # the administrator account, in the stack set's home region
    cfn = clients.client("cloudformation")
    declared = template_parameters(cfn, body)
    rules = checks.parameter_rules(cfn, body)
    checks.check_values(rules, request.parameters)
    for (target, region), values in request.instance_parameters.items():
        checks.check_values(rules, values, f"--instance-parameter {target}:{region}:")
    buckets = {region: bucket_in(bucket, region, request.regions) for region in request.regions}
    stackset.check_request(request, declared)
    existing_set = stackset_aws.current_stack_set(cfn, request.name, request.call_as)
    existing = stackset_aws.existing_instances(cfn, request, existing_set)
    placeholder = {k: "-" for k in MANAGED_PARAMETERS}
    with_code = stackset.Request(**{**request.__dict__, "parameters": {**request.parameters, **placeholder}})
    planned = stackset.plan(with_code, declared, existing_set, existing)  # every check before any upload
    readers = code_readers(request)
    if dry_run:
        grant = {name: code.read_statement(name, readers, "(the organization's id)" if request.service_managed else None) for name in set(buckets.values())}
        document = {**plan_json(planned), "dry_run": True, "code_buckets": buckets, "code_bucket_policy": grant,
                    "status": "dry run: nothing uploaded or created"}
        runtime.emit(document, lambda: (runtime.console().print(plan_table(planned)), [runtime.say(f"note: {n}") for n in planned.notes],
                                        runtime.say("dry run: nothing uploaded, no stack set or instance created, no bucket policy changed")))
        return
    destinations = [code.Destination(region, Clients(region=region, profile=runtime.settings.profile, endpoint_url=runtime.endpoint_url), name)
                    for region, name in buckets.items()]
    uploaded = code.build_and_upload(destinations, zip_path, arch, err.print)
    org_id = code.organization_id(clients) if request.service_managed else None
    for where in {d.bucket: d for d in destinations}.values():
        code.grant_code_read(where.clients, where.bucket, readers, org_id)
        err.print(f"s3://{where.bucket}: {'the organization ' + str(org_id) if org_id else ', '.join(readers)} may read {code.CODE_PREFIX}*")
    managed = {"CodeKey": uploaded.key, "Architecture": uploaded.arch}
    parameters = {**request.parameters, **managed}
    if len(set(buckets.values())) == 1:
        parameters["CodeBucket"] = next(iter(buckets.values()))
        instance_parameters = dict(request.instance_parameters)
    else:
        instance_parameters = {**request.instance_parameters}
        for region, name in buckets.items():
            instance_parameters[("*", region)] = {**instance_parameters.get(("*", region), {}), "CodeBucket": name}
    final = stackset.Request(**{**request.__dict__, "parameters": parameters, "instance_parameters": instance_parameters})
    planned = stackset.plan(final, declared, existing_set, existing)
    if not runtime.json:
        runtime.console().print(plan_table(planned))
        for note in planned.notes:
            err.print(f"note: {note}")
    outcome = stackset_aws.run(cfn, planned, err.print)
    document = {**plan_json(planned), "operations": [{"what": w, "operation_id": o, "status": s} for w, o, s in outcome.operations],
                "stack_instances": outcome.instances}
    runtime.emit(document, lambda: runtime.console().print(instances_table(outcome.instances)))

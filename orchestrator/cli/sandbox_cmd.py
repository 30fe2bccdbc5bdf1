"""`orch sandbox`: watch orch heal a simulated fleet on embedded AWS, no account needed."""

from __future__ import annotations

import json
import shlex
import signal
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
from pydantic import ValidationError
from rich.console import Console

from orchestrator.cli.common import Exit, OrchError
from orchestrator.cli.render import print_report, stdout_console
from orchestrator.config import describe_validation_error
from orchestrator.model import VerdictKind
from orchestrator.sweep import SweepReport

if TYPE_CHECKING:
    from orchestrator.sandbox.spec import FleetSpec


def _spec(**fields: Any) -> FleetSpec:
    # moto is the sandbox's embedded AWS: an extra, not something a deployed orch carries.
    try:
        from orchestrator.sandbox.moto_version import UnsupportedMoto, require_supported_moto
        from orchestrator.sandbox.spec import FleetSpec

        require_supported_moto()
    except ImportError as exc:
        raise OrchError(f"the sandbox needs moto ({exc.name} is missing): pip install 'orch[sandbox]'", Exit.USAGE) from None
    except UnsupportedMoto as exc:
        raise OrchError(str(exc), Exit.USAGE) from None
    try:
        return FleetSpec(**fields)
    except ValidationError as exc:
        raise OrchError(describe_validation_error(exc, "sandbox options").replace("configuration", "sandbox fleet"), Exit.USAGE) from None


@click.command("sandbox")
@click.option("--instances", default=24, show_default=True, type=click.IntRange(1, 20000))
@click.option("--hung", default=2, show_default=True, type=click.IntRange(0), help="TCP accepted, no banner: the incident.")
@click.option("--refusing", default=1, show_default=True, type=click.IntRange(0), help="Nothing listens on the SSH port.")
@click.option("--leaking", default=2, show_default=True, type=click.IntRange(0), help="Healthy now, memory climbing.")
@click.option("--slow", default=0, show_default=True, type=click.IntRange(0), help="Banner only after --slow-delay seconds.")
@click.option("--slow-delay", default=1.5, show_default=True, type=click.FloatRange(0, 60), help="Seconds before a slow banner.")
@click.option("--no-metrics", default=0, show_default=True, type=click.IntRange(0), help="Healthy instances whose agent sends nothing.")
@click.option("--opt-out", default=1, show_default=True, type=click.IntRange(0), help="Instances tagged orch:skip (hung: must be left alone).")
@click.option("--unmanaged", default=2, show_default=True, type=click.IntRange(0), help="Hung bystanders without the orch tag.")
@click.option("--seed", default=0, show_default=True, type=int, help="Same seed, same fleet.")
@click.option("--port", default=2222, show_default=True, type=click.IntRange(0, 65535), help="Fake sshd port on every instance (0: any free).")
@click.option("--serve", is_flag=True, help="Keep the embedded AWS and fleet running for `orch scan` / `orch heal` by hand.")
@click.option("--state-dir", type=click.Path(file_okay=False, path_type=Path), help="Where --serve keeps its state file.")
@click.option("--output", "-o", type=click.Choice(["table", "json"]), default="table", show_default=True)
def sandbox_command(instances: int, hung: int, refusing: int, leaking: int, slow: int, slow_delay: float, no_metrics: int,
                    opt_out: int, unmanaged: int, seed: int, port: int, serve: bool, state_dir: Path | None, output: str) -> None:
    """A simulated fleet on embedded AWS (moto on 127.0.0.1), healed by the real sweep."""
    spec = _spec(instances=instances, hung=hung, refusing=refusing, leaking=leaking, slow=slow, slow_delay=slow_delay,
                 no_metrics=no_metrics, opt_out=opt_out, unmanaged=unmanaged, seed=seed, port=port)
    if serve:
        _serve(spec, state_dir)
        return
    err = Console(stderr=True)
    out = stdout_console()
    status = err.status("starting") if err.is_terminal and output == "table" else None

    def progress(message: str) -> None:
        if status is not None:
            status.update(message)

    def on_sweep(title: str, report: SweepReport) -> None:
        if output != "table":
            return
        if status is not None:
            status.stop()
        out.rule(title)
        print_report(out, report)
        if status is not None:
            status.start()

    if status is not None:
        status.start()
    from orchestrator.sandbox.demo import run_demo

    try:
        result = run_demo(spec, progress=progress, on_sweep=on_sweep)
    except OSError as exc:
        raise OrchError(f"sandbox could not start: {exc} (try another --port)", Exit.USAGE) from None
    finally:
        if status is not None:
            status.stop()
    if output == "json":
        click.echo(json.dumps({
            "ok": result.ok,
            "broken": result.broken,
            "healed": result.healed,
            "bystanders_untouched": result.untouched_bystanders,
            "evidence_keys": result.evidence_keys,
            "sns_message": None if result.message is None else {"subject": result.message[0], "body": result.message[1]},
            "first": result.first.summary(),
            "second": result.second.summary(),
        }, indent=2, default=str))
    else:
        out.rule("what orch did")
        names = {f.instance.instance_id: f.instance.name for f in result.first.facts}
        for verdict in result.first.verdicts:
            if verdict.kind is VerdictKind.MEMORY_FORECAST:
                out.print(f"forecast {verdict.instance_id} ({names.get(verdict.instance_id, '')}): {verdict.reasons[0]}; SSH still answers")
        for action in result.first.summary()["actions"]:
            evidence = action.get("evidence") or {}
            out.print(f"{action['instance_id']}: {action['action']} -> {action['outcome']}; evidence {evidence.get('s3_key') or '-'}; console: {evidence.get('console_summary') or '-'}")
        if result.message:
            out.print(f"\n[bold]SNS message[/] ({result.message[0]}):\n{result.message[1]}")
        verdict = "[green]healed[/]" if result.ok else "[red]not all healed[/]"
        out.print(f"\n{verdict}: {len(result.healed)} of {len(result.broken)} broken instances answer SSH again; "
                  f"opt-out and unmanaged instances {'untouched' if result.untouched_bystanders else '[red]TOUCHED[/]'}")
    sys.exit(int(Exit.OK if result.ok else Exit.UNHEALTHY))


def _serve(spec: FleetSpec, state_dir: Path | None) -> None:
    from orchestrator.sandbox.demo import aws_env, exports, stage
    from orchestrator.sandbox.fleet import Sandbox

    directory = state_dir or Path(tempfile.mkdtemp(prefix="orch-sandbox-"))
    directory.mkdir(parents=True, exist_ok=True)
    # A flag and signal.pause, not a threading.Event: Event.set from a signal handler
    # deadlocks against the main thread's own Event.wait (both take one plain lock).
    stopping: list[int] = []

    def request_stop(signum: int, frame: object) -> None:
        stopping.append(signum)

    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, request_stop)
    try:
        with Sandbox(spec) as sb, aws_env(sb.env()):
            staged = stage(sb, directory)
            for name, value in exports(sb, staged).items():
                click.echo(f"export {name}={shlex.quote(value)}")
            click.echo("ready", err=False)
            sys.stdout.flush()
            while not stopping:
                signal.pause()
    except OSError as exc:
        raise OrchError(f"sandbox could not start: {exc} (try another --port)", Exit.USAGE) from None

"""`orch sandbox`: watch orch heal a simulated fleet on embedded AWS, no account needed."""

from __future__ import annotations

import contextlib
import shlex
import signal
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
from pydantic import ValidationError
from rich.console import Console
from rich.text import Text

from orchestrator.cli.common import Display, Exit, OrchError, display_options
from orchestrator.cli.params import FiniteFloat
from orchestrator.cli.render import print_report
from orchestrator.config import describe_validation_error
from orchestrator.model import VerdictKind
from orchestrator.sweep.pipeline import SweepReport

if TYPE_CHECKING:
    from orchestrator.sandbox.demo import DemoResult
    from orchestrator.sandbox.scenario import LiveScenario
    from orchestrator.sandbox.spec import FleetSpec

OPT_OUT_TAG = "orch:skip"  # the sandbox's settings are the defaults here
# cfn/orchestrator.yaml's ScheduleMinutes default (orchestrator.sandbox.schedule has it too; a test compares
# both with the template): here so that `orch sandbox --help` does not import moto.
DEFAULT_SCHEDULE_MINUTES = 5


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
@click.option("--slow-delay", default=1.5, show_default=True, type=FiniteFloat(0, 60), help="Seconds before a slow banner.")
@click.option("--no-metrics", default=0, show_default=True, type=click.IntRange(0), help="Healthy instances whose agent sends nothing.")
@click.option("--opt-out", default=1, show_default=True, type=click.IntRange(0), help="Instances tagged orch:skip (hung: must be left alone).")
@click.option("--unmanaged", default=2, show_default=True, type=click.IntRange(0), help="Hung bystanders without the orch tag.")
@click.option("--seed", default=0, show_default=True, type=int, help="Same seed, same fleet.")
@click.option("--port", default=2222, show_default=True, type=click.IntRange(0, 65535), help="Fake sshd port on every instance (0: any free).")
@click.option("--untagged", is_flag=True, help="Launch the managed instances without orch:managed: a fleet for `orch init` to adopt (with --serve).")
@click.option("--serve", is_flag=True, help="Keep the embedded AWS and fleet running for `orch scan` / `orch heal` by hand.")
@click.option("--env-file", type=click.Path(dir_okay=False, path_type=Path),
              help="With --serve: write the export lines here, for `source FILE` in another shell (removed on exit).")
@click.option("--scenario", metavar="NAME",
              help="With --serve: one of orch simulate's fleets (orch simulate --list), live on the wall clock.")
@click.option("--time-scale", type=FiniteFloat(0.1, 120), default=1.0, show_default=True,
              help="With --serve: simulated minutes per wall-clock minute (10: a leak wedges ten times sooner).")
@click.option("--schedule-minutes", type=FiniteFloat(0, 1440), default=None, metavar="MINUTES",
              help=f"With --serve: heal as the deployed stack would, its Lambda every MINUTES simulated minutes, the first "
                   f"one interval after start (the stack's ScheduleMinutes; default {DEFAULT_SCHEDULE_MINUTES}, 0 with --untagged: "
                   "a fleet to adopt has no healer yet). 0: never, heal by hand.")
@click.option("--state-dir", type=click.Path(file_okay=False, path_type=Path),
              help="Where --serve keeps its state file and logs (default: a temporary directory, removed on exit).")
@display_options
def sandbox_command(display: Display, instances: int, hung: int, refusing: int, leaking: int, slow: int, slow_delay: float,
                    no_metrics: int, opt_out: int, unmanaged: int, seed: int, port: int, untagged: bool, serve: bool, env_file: Path | None,
                    scenario: str | None, time_scale: float, schedule_minutes: float | None, state_dir: Path | None) -> None:
    """A simulated fleet on embedded AWS (moto on 127.0.0.1), healed by the real sweep.

    Without --serve: build the fleet, sweep until every broken instance is healed and a
    sweep has verified it, print what orch did; exit 0 when all were healed and no
    bystander was touched. The sandbox shortens five settings so the demo does not
    wait: launch grace 0, debounce over 3 s, probe retries over 3 s, banner timeout 2 s,
    connect timeout 1 s.
    """
    # The default port may be busy (another sandbox, a real sshd): then a free one, said; a port given is that port or an error.
    default_port = click.get_current_context().get_parameter_source("port") is click.core.ParameterSource.DEFAULT
    spec = _spec(instances=instances, hung=hung, refusing=refusing, leaking=leaking, slow=slow, slow_delay=slow_delay,
                 no_metrics=no_metrics, opt_out=opt_out, unmanaged=unmanaged, seed=seed, port=port, tagged=not untagged,
                 port_fallback=default_port)
    if untagged and not serve:
        raise OrchError("--untagged needs --serve: an untagged fleet is one to adopt by hand with orch init", Exit.USAGE)
    live = _scenario(scenario, seed) if scenario else None
    boxes = live.boxes if live else []
    if scenario and not serve:
        raise OrchError("--scenario goes with --serve: the scenario lives on the wall clock (orch simulate runs it in simulated time)",
                        Exit.USAGE)
    if boxes:  # the scenario's fleet, box for box, and nothing else
        spec = spec.model_copy(update={"instances": len(boxes), "hung": 0, "refusing": 0, "leaking": 0, "slow": 0, "no_metrics": 0,
                                       "opt_out": 0, "unmanaged": 0})
    if serve:
        if schedule_minutes is None:  # an untagged fleet is one nobody heals yet: the adopt walk (docs/adopt.md) deploys its healer
            schedule_minutes = 0 if untagged else DEFAULT_SCHEDULE_MINUTES
        _serve(spec, state_dir, env_file, time_scale, live, schedule_minutes)
        return
    if schedule_minutes is not None:
        raise OrchError("--schedule-minutes goes with --serve (the demo without --serve sweeps until the fleet is healed)", Exit.USAGE)
    if time_scale != 1.0:
        raise OrchError("--time-scale goes with --serve (the demo without --serve moves its own clock)", Exit.USAGE)
    if env_file is not None:
        raise OrchError("--env-file goes with --serve (the demo without --serve stops when it is done)", Exit.USAGE)
    err = display.console(stderr=True)
    out = display.console()
    status = err.status("starting") if err.is_terminal and not display.json else None

    def progress(message: str) -> None:
        if status is not None:
            status.update(message)
        if message.startswith("port ") and " is taken " in message:  # the port note: said, not only shown in passing
            err.print(f"note: {message}", markup=False, highlight=False)

    def on_sweep(title: str, report: SweepReport) -> None:
        if display.json:
            return
        if status is not None:
            status.stop()
        out.rule(title)
        print_report(out, report, OPT_OUT_TAG)
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
    document = {
        "ok": result.ok,
        "broken": result.broken,
        "healed": result.healed,
        "bystanders_untouched": result.untouched_bystanders,
        "evidence_keys": result.evidence_keys,
        "sns_message": None if result.message is None else {"subject": result.message[0], "body": result.message[1]},
        "sweeps": len(result.sweeps),
        "first": result.first.summary(),
        "last": result.last.summary(),
    }
    display.emit(document, lambda: _print_outcome(out, result))
    sys.exit(int(Exit.OK if result.ok else Exit.UNHEALTHY))


def _print_outcome(out: Console, result: DemoResult) -> None:
    out.rule("what orch did")
    names = {f.instance.instance_id: f.instance.name for f in result.first.facts}
    for verdict in result.first.verdicts:
        if verdict.kind is VerdictKind.MEMORY_FORECAST:
            out.print(f"forecast {verdict.instance_id} ({names.get(verdict.instance_id, '')}): {verdict.reasons[0]}; SSH still answers")
    for number, report in enumerate(result.sweeps, 1):
        for action in report.summary()["actions"]:
            evidence = action.get("evidence") or {}
            out.print(f"sweep {number}: {action['instance_id']}: {action['action']} -> {action['outcome']}; "
                      f"evidence {evidence.get('s3_key') or '-'}; console: {evidence.get('console_summary') or '-'}")
    if result.message:
        out.print(Text.assemble("\n", ("SNS message", "bold"), f" ({result.message[0]}):\n{result.message[1]}"))
    verdict = ("healed", "green") if result.ok else ("not all healed", "red")
    out.print(Text.assemble("\n", verdict, f": {len(result.healed)} of {len(result.broken)} broken instances answer SSH again after "
                            f"{len(result.sweeps)} sweeps; opt-out and unmanaged instances ",
                            "untouched" if result.untouched_bystanders else ("TOUCHED", "red")))


def _scenario(name: str, seed: int) -> LiveScenario:
    from datetime import datetime, timezone

    from orchestrator.sandbox.scenario import ScenarioError, scenario_fleet

    try:
        return scenario_fleet(name, datetime.now(timezone.utc), seed)
    except ScenarioError as exc:
        raise OrchError(str(exc), Exit.USAGE) from None


def _serve(spec: FleetSpec, state_dir: Path | None, env_file: Path | None, time_scale: float = 1.0, live: LiveScenario | None = None,
           schedule_minutes: float = DEFAULT_SCHEDULE_MINUTES) -> None:
    from orchestrator.sandbox.demo import aws_env, exports, stage
    from orchestrator.sandbox.fleet import Sandbox
    from orchestrator.sandbox.schedule import living_driver
    from orchestrator.sandbox.server import log_requests

    # A flag and signal.pause, not a threading.Event: Event.set from a signal handler
    # deadlocks against the main thread's own Event.wait (both take one plain lock).
    stopping: list[int] = []

    def request_stop(signum: int, frame: object) -> None:
        stopping.append(signum)

    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, request_stop)
    with contextlib.ExitStack() as cleanup:
        if state_dir is None:
            directory = Path(cleanup.enter_context(tempfile.TemporaryDirectory(prefix="orch-sandbox-")))
        else:
            directory = state_dir
            try:
                directory.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise OrchError(f"cannot use --state-dir {directory}: {exc.strerror or exc}", Exit.USAGE) from None
        log_path = directory / "requests.log"
        made = Sandbox(spec)
        if live is not None:  # a scenario's boxes, by managed index, and its network's outages
            made.boxes = dict(enumerate(live.boxes))
            made.outages = list(live.outages)
        try:
            sb = cleanup.enter_context(made)
        except OSError as exc:
            raise OrchError(f"sandbox could not start: {exc} (try another --port)", Exit.USAGE) from None
        if sb.port_note:
            click.echo(f"note: {sb.port_note}", err=True)
        cleanup.callback(log_requests(log_path))
        cleanup.enter_context(aws_env(sb.env()))
        staged = stage(sb, directory)
        exported = exports(sb, staged)
        lines = [f"export {name}={shlex.quote(value)}" for name, value in exported.items()]
        if env_file is not None:
            # After the sandbox stops, one word makes the shell forget its endpoint and fake keys.
            forget = f"orch_sandbox_unset() {{ unset {' '.join(exported)}; unset -f orch_sandbox_unset; }}"
            _write_env_file(env_file, [*lines, forget])
            cleanup.callback(env_file.unlink, missing_ok=True)
            click.echo(f"in another shell: source {shlex.quote(str(env_file))}", err=True)
        else:
            click.echo("\n".join(lines))
        # The fleet lives: every minute its agents publish, leaks climb and wedge (orchestrator.sandbox.living);
        # and, as a deployed stack would, its Lambda heals it on the schedule (orchestrator.sandbox.schedule).
        lambda_log = directory / "lambda.log"
        log = cleanup.enter_context(lambda_log.open("a", encoding="utf-8")) if schedule_minutes > 0 else None
        driver = living_driver(sb, exported, time_scale, schedule_minutes, say=lambda line: click.echo(line, err=True), log=log,
                               on_error=lambda exc: click.echo(f"warning: the sandbox's clock tick failed: {exc}", err=True))
        pace = "" if time_scale == 1.0 else f", {time_scale:g} simulated minutes a minute"
        click.echo(f"AWS requests are logged to {log_path}; the fleet lives on the wall clock{pace}; stop with Ctrl-C", err=True)
        if driver.schedule:
            click.echo(f"the deployed Lambda's sweep heals it every {schedule_minutes:g} simulated minutes, a line here each time "
                       f"(its log: {lambda_log}); --schedule-minutes 0 leaves it to orch heal by hand", err=True)
        else:
            click.echo("no scheduled sweep (--schedule-minutes 0): only orch heal by hand heals it", err=True)
        if live is not None and live.started is not None:
            from orchestrator.sandbox.scenario import describe

            for outage in live.outages:
                click.echo(f"the scenario's network: {describe(outage, live.started)}", err=True)
        click.echo("ready")
        sys.stdout.flush()
        # After `ready`: the scheduled sweep's log lines take stdout for their file while it runs.
        thread = driver.start()

        def stop_driver() -> None:
            """Before the sandbox stops: a sweep under way finishes (its lease released, its record written)."""
            driver.stop.set()
            thread.join(timeout=120)

        cleanup.callback(stop_driver)
        while not stopping:
            signal.pause()


def _write_env_file(path: Path, lines: list[str]) -> None:
    """Written whole and then renamed into place: a script waiting for the file never reads half of it."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(f".{path.name}.partial")
        partial.write_text("# orch sandbox --serve: `source` this file; it is removed when the sandbox stops\n" + "\n".join(lines) + "\n")
        partial.replace(path)
    except OSError as exc:
        raise OrchError(f"cannot write --env-file {path}: {exc.strerror or exc}", Exit.USAGE) from None

"""`scripts/bench`: orch's sweep against the per-instance script, on sandbox fleets.

For each size: start `orch sandbox --serve` in its own process, run orch's sweep
(warm-up, then measured) in a fresh process, then the naive baseline in another,
and report calls, cost, time and memory. A measurement for humans: the targets are
reported as pass/fail, never asserted.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.table import Table
from rich.text import Text

from orchestrator.bench import figures
from orchestrator.bench.fleet import FleetMix, start_fleet
from orchestrator.cli.render import stdout_console

RUN_TIMEOUT = 3600.0


def machine() -> dict[str, Any]:
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    versions = {}
    for package in ("boto3", "moto"):
        try:
            from importlib.metadata import version

            versions[package] = version(package)
        except Exception:  # noqa: BLE001 - informative only
            versions[package] = "?"
    return {
        "cpus": os.cpu_count(),
        "cpu_model": model or platform.processor() or "unknown",
        "python": platform.python_version(),
        **versions,
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }


def _child_env(fleet_env: dict[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ORCH_", "AWS_"))}
    env.update(fleet_env)
    return env


def measure(kind: str, exports: dict[str, str], *args: str) -> dict[str, Any]:
    """Run one measurement in a fresh interpreter; its stdout's last line is the JSON."""
    completed = subprocess.run(
        [sys.executable, "-m", "orchestrator.bench.measure", kind, *args],
        input=json.dumps(exports),
        capture_output=True,
        text=True,
        env=_child_env({k: v for k, v in exports.items() if k.startswith("AWS_")}),
        timeout=RUN_TIMEOUT,
        check=False,
    )
    if completed.returncode != 0:
        raise RuntimeError(f"{kind} run failed (exit {completed.returncode}):\n{completed.stderr[-4000:]}")
    return json.loads(completed.stdout.strip().splitlines()[-1])


def bench_size(size: int, *, baseline: bool, sample: int, seed: int, work_dir: Path, say: Any) -> dict[str, Any]:
    mix = FleetMix.for_size(size)
    say(f"[{size}] starting the sandbox fleet ({mix.describe()}) in its own process")
    with start_fleet(mix, work_dir, seed=seed) as fleet:
        say(f"[{size}] fleet ready after {fleet.startup_seconds:.0f} s; orch sweep (warm-up + measured)")
        ours = measure("ours", fleet.exports)
        base = None
        if baseline:
            visit = sample if sample and sample < size else 0
            say(f"[{size}] naive baseline" + (f" on a sample of {visit}, extrapolated" if visit else ""))
            base = measure("baseline", fleet.exports, str(visit))
            # The minimum is the fleet's, whoever sweeps it: the baseline's own count of
            # metrics includes agents that never reported, which a minimum would not read.
            base["api_calls_minimum"], base["minimum"] = ours["api_calls_minimum"], ours["minimum"]
    result: dict[str, Any] = {
        **ours,
        "baseline": base,
        "fleet": {
            "instances": mix.instances,
            "hung": mix.hung,
            "slow": mix.slow,
            "no_metrics": mix.no_metrics,
            "startup_seconds": round(fleet.startup_seconds, 1),
        },
        "machine": machine(),
    }
    result["targets"] = figures.targets(result)
    return result


def _seconds(value: float) -> str:
    return f"{value:.3f} s" if value < 1 else f"{value:.2f} s"


def _calls(by_op: dict[str, int]) -> str:
    return "\n".join(f"{op} {n}" for op, n in sorted(by_op.items(), key=lambda kv: (-kv[1], kv[0])))


def render(console: Console, results: list[dict[str, Any]]) -> None:
    for result in results:
        base = result.get("baseline")
        fleet = result["fleet"]
        info = result["machine"]
        load = result["load_average"]["before"]
        table = Table(
            title=(
                f"{result['instances']} instances ({fleet['hung']} hung, {fleet['slow']} slow, {fleet['no_metrics']} without metrics)"
                f" - {info['cpus']} x {info['cpu_model']}, load {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}"
            ),
            title_justify="left",
        )
        table.add_column("", no_wrap=True)
        table.add_column("orch sweep", justify="right", no_wrap=True)
        table.add_column("naive baseline" + (" (extrapolated)" if base and base.get("extrapolated") else ""), justify="right", no_wrap=True)

        def row(label: str, ours: str, theirs: str = "-") -> None:
            table.add_row(label, ours, theirs if base else "-")

        b = base or {}
        row("API calls (minimum)", f"{result['api_calls_total']} ({result['api_calls_minimum']})",
            f"{b.get('api_calls_total')} ({b.get('api_calls_minimum')})")
        row("  by operation", _calls(result["api_calls"]), _calls(b.get("api_calls", {})))
        row("metrics requested", str(result["metrics_requested"]), str(b.get("metrics_requested")))
        row("CloudWatch $/sweep, $/month", f"{result['cloudwatch_usd_per_sweep']:.3f}, {result['cloudwatch_usd_per_month']:.0f}",
            f"{b.get('cloudwatch_usd_per_sweep', 0):.3f}, {b.get('cloudwatch_usd_per_month', 0):.0f}")
        row("sweep wall time", _seconds(result["sweep_seconds"]), _seconds(b.get("sweep_seconds", 0)))
        row("  AWS calls", _seconds(result["aws_seconds"]), _seconds(b.get("aws_seconds", 0)))
        row("  probing", _seconds(result["probe_seconds"]), _seconds(b.get("probe_seconds", 0)))
        row("  deciding", _seconds(result["decide_seconds"]), _seconds(b.get("decide_seconds", 0)))
        row("  acting (dry run) + store", _seconds(result["act_seconds"] + result["other_seconds"]), "-")
        row("CPU time of the measuring process", _seconds(result["cpu_seconds"]), _seconds(b.get("cpu_seconds", 0)))
        row("peak RSS", f"{result['peak_rss_mb']:.0f} MB", f"{b.get('peak_rss_mb', 0):.0f} MB")
        row("verdicts", ", ".join(f"{k} {v}" for k, v in result["verdicts"].items()),
            f"unhealthy {b.get('unhealthy_found')}")
        console.print(table)
        targets = Table(title=f"targets (set for 10000 instances), measured at {result['instances']}", title_justify="left")
        targets.add_column("target")
        targets.add_column("measured", justify="right")
        targets.add_column("")
        for target in result["targets"]:
            targets.add_row(target["target"], target["measured"], Text("pass", style="green") if target["pass"] else Text("FAIL", style="red"))  # the console prints no markup
        console.print(targets)
        if base and base.get("extrapolated"):
            sample = base["sample"]
            console.print(
                f"baseline: listed all {sample['of']} instances, visited {sample['visited']} (every {round(sample['scale'])}th); "
                "per-instance calls and times scaled by "
                f"{sample['scale']}"
            )
    console.print(
        "Counted with orch's botocore before-call hook (API calls, not HTTP attempts). The minimum is ceil(N/1000) inventory"
        " + ceil(N/1000) status + ceil(metrics/500) GetMetricData + 0 action calls (dry run) + 0 lease calls (dry runs take"
        " no lease; the SQLite lease costs no API call) + 1 SNS publish when the sweep has something to report."
        " AWS time is moto's on this machine, not AWS's."
    )


@click.command()
@click.option("--sizes", default="1000,5000,10000", show_default=True, help="Comma-separated fleet sizes.")
@click.option("--output", "-o", type=click.Choice(["table", "json"]), default="table", show_default=True)
@click.option("--no-baseline", is_flag=True, help="Skip the naive per-instance baseline.")
@click.option("--baseline-sample", default=0, show_default=True, type=click.IntRange(0),
              help="Visit only this many instances in the baseline and extrapolate (0: visit all).")
@click.option("--seed", default=0, show_default=True, type=int)
@click.option("--work-dir", type=click.Path(file_okay=False, path_type=Path), help="Where fleet logs go (default: a temp dir).")
def main(sizes: str, output: str, no_baseline: bool, baseline_sample: int, seed: int, work_dir: Path | None) -> None:
    """Measure orch's sweep and the naive baseline on sandbox fleets."""
    try:
        wanted = [int(s) for s in sizes.split(",") if s.strip()]
    except ValueError:
        raise click.BadParameter(f"not a list of integers: {sizes}", param_hint="--sizes") from None
    if not wanted or any(n < 1 or n > 20000 for n in wanted):
        raise click.BadParameter("sizes must be 1..20000", param_hint="--sizes")
    err = Console(stderr=True)
    started = time.monotonic()

    def say(message: str) -> None:
        load = os.getloadavg()
        err.print(Text.assemble((f"{time.monotonic() - started:6.0f}s load {load[0]:.2f}", "dim"), f" {message}"))

    directory = work_dir or Path(tempfile.mkdtemp(prefix="orch-bench-"))
    results: list[dict[str, Any]] = []
    for n in wanted:
        results.append(bench_size(n, baseline=not no_baseline, sample=baseline_sample, seed=seed, work_dir=directory, say=say))
        (directory / "results.json").write_text(json.dumps(results, indent=2))  # survives an interrupted run
    say(f"done; JSON also in {directory / 'results.json'}")
    if output == "json":
        click.echo(json.dumps(results, indent=2))
    else:
        render(stdout_console(), results)


if __name__ == "__main__":
    main(prog_name="scripts/bench")

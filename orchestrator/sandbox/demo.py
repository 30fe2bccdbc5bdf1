"""The sandbox's main job: a simulated fleet on embedded AWS, healed for real.

Everything below the sweep is real: boto3 talks HTTP to moto on 127.0.0.1 through
AWS_ENDPOINT_URL, probes open TCP connections to each instance's loopback address,
the state store is a SQLite file, evidence goes to an S3 bucket and the message to an
SNS topic in the embedded AWS. Only the instances are simulated.
"""

from __future__ import annotations

import os
import tempfile
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping

import boto3

from orchestrator.aws import Clients
from orchestrator.config import Settings, load_settings
from orchestrator.sandbox.fleet import Sandbox
from orchestrator.sandbox.spec import FleetSpec
from orchestrator.sandbox.sshd import Mode as EndpointMode
from orchestrator.state.sqlite import SqliteStore
from orchestrator.sweep.pipeline import Mode, SweepDeps, SweepReport, sweep

EVIDENCE_BUCKET = "orch-sandbox-evidence"
TOPIC_NAME = "orch-sandbox"

# The fleet was launched seconds ago, so the launch grace would (rightly) block every
# action; and a demo should not wait 20 s per failing probe. Everything else is the
# default a real deployment gets.
SANDBOX_OVERRIDES: dict[str, Any] = {
    "safety": {"launch_grace_minutes": 0, "debounce_seconds": 3},
    "probe": {"retry_window": 3.0, "banner_timeout": 2.0, "connect_timeout": 1.0},
}


@contextmanager
def aws_env(env: Mapping[str, str]) -> Iterator[None]:
    """Point boto3 in this process at the sandbox, as `export` would for `orch heal`."""
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    for name in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE"):
        saved.setdefault(name, os.environ.pop(name, None))
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@dataclass
class Stage:
    """Resources the sandbox adds beside the fleet: a bucket and a topic, like the stack has."""

    bucket: str
    topic_arn: str
    state_path: Path


def stage(sb: Sandbox, state_dir: Path) -> Stage:
    s3 = sb.client("s3")
    s3.create_bucket(Bucket=EVIDENCE_BUCKET)
    topic_arn = sb.client("sns").create_topic(Name=TOPIC_NAME)["TopicArn"]
    return Stage(EVIDENCE_BUCKET, topic_arn, state_dir / "state.db")


def sandbox_settings(sb: Sandbox, staged: Stage, extra: Mapping[str, Any] | None = None) -> Settings:
    overrides: dict[str, Any] = {
        **SANDBOX_OVERRIDES,
        "region": sb.region,
        "state": str(staged.state_path),
        "evidence": {"bucket": staged.bucket},
        "notify": {"topic_arn": staged.topic_arn},
    }
    overrides["probe"] = {**SANDBOX_OVERRIDES["probe"], "port": sb.port}
    return load_settings(environ={}, overrides={**overrides, **(extra or {})})


def exports(sb: Sandbox, staged: Stage) -> dict[str, str]:
    """What `orch scan` / `orch heal` in another shell need to target this sandbox."""
    return {
        **sb.env(),
        "ORCH_PROBE_PORT": str(sb.port),
        "ORCH_PROBE_RETRY_WINDOW": str(SANDBOX_OVERRIDES["probe"]["retry_window"]),
        "ORCH_PROBE_BANNER_TIMEOUT": str(SANDBOX_OVERRIDES["probe"]["banner_timeout"]),
        "ORCH_PROBE_CONNECT_TIMEOUT": str(SANDBOX_OVERRIDES["probe"]["connect_timeout"]),
        "ORCH_SAFETY_LAUNCH_GRACE_MINUTES": "0",
        "ORCH_SAFETY_DEBOUNCE_SECONDS": str(SANDBOX_OVERRIDES["safety"]["debounce_seconds"]),
        "ORCH_STATE": str(staged.state_path),
        "ORCH_EVIDENCE_BUCKET": staged.bucket,
        "ORCH_NOTIFY_TOPIC_ARN": staged.topic_arn,
        # The sandbox's news goes to its own topic only: webhooks in the person's config
        # file (a real pager) are overridden by this empty list (the environment wins).
        "ORCH_NOTIFY_WEBHOOKS": "[]",
    }


@dataclass
class DemoResult:
    sweeps: list[SweepReport]  # in order; the last one found nothing left to do
    broken: list[str]  # hung or refusing, managed and not opted out, before the first sweep
    healed: list[str]
    untouched_bystanders: bool
    message: tuple[str, str] | None
    evidence_keys: list[str] = field(default_factory=list)

    @property
    def first(self) -> SweepReport:
        return self.sweeps[0]

    @property
    def last(self) -> SweepReport:
        return self.sweeps[-1]

    @property
    def ok(self) -> bool:
        return bool(self.broken) and set(self.broken) <= set(self.healed) and self.untouched_bystanders


def sweeps_needed(broken: int, settings: Settings) -> int:
    """Sweeps the demo may take: the budget heals ``max_actions_per_sweep`` a sweep, and a
    last sweep verifies. (50 instances with 4 broken: 3 healed, then 1, then verified.)"""
    per_sweep = max(1, settings.safety.max_actions_per_sweep)
    return -(-broken // per_sweep) + 1


def _title(number: int, report: SweepReport, waiting: set[str], per_sweep: int) -> str:
    if report.plan.actions:
        return f"sweep {number}: find and heal" + (f" ({len(waiting)} more next sweep: at most {per_sweep} actions a sweep)" if waiting else "")
    return f"sweep {number}: verify"


def run_demo(
    spec: FleetSpec,
    progress: Callable[[str], None] = lambda message: None,  # also told when the spec's port was busy and another taken
    on_sweep: Callable[[str, SweepReport], None] = lambda title, report: None,
    state_dir: Path | None = None,
) -> DemoResult:
    """Build the fleet, heal it with the real sweep, sweep again until every broken box is healed and verified."""
    with tempfile.TemporaryDirectory(prefix="orch-sandbox-") as tmp:
        directory = state_dir or Path(tmp)
        progress(f"starting embedded AWS and {spec.instances} simulated instances")
        with Sandbox(spec) as sb, aws_env(sb.env()):
            if sb.port_note:
                progress(sb.port_note)
            staged = stage(sb, directory)
            settings = sandbox_settings(sb, staged)
            store = SqliteStore(staged.state_path)
            clients = Clients(boto3.Session(region_name=sb.region))
            broken = [
                s.instance_id for s in sb.instances if s.managed and not s.opt_out and s.mode in (EndpointMode.HUNG, EndpointMode.REFUSING)
            ]
            try:
                deps = SweepDeps(clients=clients, store=store, clock=sb.now, progress=progress)
                reports: list[SweepReport] = []
                acted: set[str] = set()
                limit = sweeps_needed(len(broken), settings)
                # Sweep until every broken instance was acted on and a sweep verified it
                # (took no new action), as a scheduled orch would over its next runs.
                while not reports or (len(reports) < limit and (set(broken) - acted or reports[-1].plan.actions)):
                    if reports:
                        # A reboot takes a moment; then every agent reports again.
                        time.sleep(max(spec.boot_delay, 0.5))
                        sb.advance(1)
                    report = sweep(settings, deps, mode=Mode.HEAL)
                    reports.append(report)
                    acted |= {a.instance_id for a in report.plan.actions}
                    on_sweep(_title(len(reports), report, set(broken) - acted, settings.safety.max_actions_per_sweep), report)
            finally:
                store.close()
            verdicts = {v.instance_id: v.kind.value for v in reports[-1].verdicts}
            healed = [i for i in broken if i in acted and verdicts.get(i) == "healthy"]
            bystanders = {s.instance_id for s in sb.instances if s.opt_out or not s.managed}
            evidence_keys = [
                o["Key"] for o in sb.client("s3").list_objects_v2(Bucket=staged.bucket).get("Contents", [])
            ]
            return DemoResult(
                sweeps=reports,
                broken=broken,
                healed=healed,
                untouched_bystanders=not (bystanders & sb.acted_on()),
                message=next((r.message for r in reports if r.message is not None), None),
                evidence_keys=evidence_keys,
            )

"""What one sweep is given: its store, clock, prober and fleet, and the Fleet port both AWS and the simulator fill."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Callable, Mapping, Protocol

from orchestrator.act.executor import Gate, Journal
from orchestrator.alerting import formats as alert_formats
from orchestrator.alerting import notify, webhook
from orchestrator.aws import Clients
from orchestrator.config import Settings, WebhookTarget
from orchestrator.decide.manual import ManualRequest
from orchestrator.decide.suspects import Suspects
from orchestrator.model import (
    Facts,
    ProbeResult,
    Verdict,
)
from orchestrator.observe import metrics
from orchestrator.observe.probe import probe_fleet
from orchestrator.state.lease import LeaseStore
from orchestrator.state.ssm_lease import SsmLeases
from orchestrator.state.store import StateStore
from orchestrator.sweep.aws_fleet import AwsFleet, HistoryReader
from orchestrator.sweep.report import SweepReport
from orchestrator.sweep.results import Acting, Observation

Prober = Callable[..., dict[str, ProbeResult]]


Clock = Callable[[], datetime]


WebhookSender = Callable[[tuple[WebhookTarget, ...], alert_formats.AlertDocument, webhook.Policy], list[webhook.Delivery]]


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def _no_progress(message: str) -> None:
    return None


class Fleet(Protocol):
    """Where a sweep's facts come from and where its actions go: AWS, or the simulator."""

    @property
    def region(self) -> str | None: ...

    def api_calls(self) -> Mapping[str, int]: ...

    def observe(self, settings: Settings, histories_of: HistoryReader, now: datetime, memory_full_read: bool) -> Observation: ...

    def enrich(self, facts: list[Facts], suspects: Suspects) -> list[Facts]: ...

    def executor(
        self,
        settings: Settings,
        journal: Journal,
        gate: Gate,
        facts: Mapping[str, Facts],
        verdicts: Mapping[str, Verdict],
        sweep_id: str,
    ) -> Acting: ...

    def publish(self, topic_arn: str, message: notify.SnsMessage) -> str | None: ...


@dataclass
class SweepDeps:
    clients: Clients | None
    store: StateStore
    clock: Clock = utcnow
    prober: Prober = probe_fleet
    progress: Callable[[str], None] = _no_progress
    time_left: Callable[[], float] | None = None  # seconds; a Lambda passes its context's
    confirm: Callable[[SweepReport], bool] | None = None  # asked before acting (the plan, with names and verdicts), e.g. on a terminal
    notify: bool = True  # False: tell nobody (a dry run by hand)
    account: str = "-"  # the AWS account, when known: part of the lease scope
    lease_wait_seconds: float = 0.0  # how long to wait for another sweep's lease
    only_instances: tuple[str, ...] = ()  # narrow a scan to these ids (orch explain)
    dimension_cache: metrics.DimensionCache = field(default_factory=metrics.DimensionCache)
    metric_progress: Callable[[int, int], None] | None = None  # (read, wanted): the CLI's n/N
    fleet: Fleet | None = None  # None: AWS through ``clients``
    # False: no sweep record (`orch top` looks every few seconds; the healer's records, its
    # memory cadence and `orch status`'s "last sweep" stay the healer's).
    record_sweep: bool = True
    webhooks: WebhookSender = webhook.send_all  # tests pass one with a recorded sleep
    manual: ManualRequest | None = None  # a person's `orch reboot`: this one action instead of the plan
    # The lease every healer of the fleet sees whatever its store; None with AWS clients:
    # Parameter Store in the fleet's account and region (state/ssm_lease.py).
    shared_lease: LeaseStore | None = None

    def __post_init__(self) -> None:
        if self.fleet is None:
            if self.clients is None:
                raise ValueError("a sweep needs AWS clients or a fleet")
            self.fleet = AwsFleet(
                self.clients, self.clock, self.prober, self.progress, self.only_instances, self.dimension_cache, self.time_left,
                self.metric_progress,
            )
            if self.shared_lease is None:
                self.shared_lease = SsmLeases(self.clients.client("ssm"))

    @property
    def the_fleet(self) -> Fleet:
        assert self.fleet is not None
        return self.fleet

"""`orch top`: the fleet live, worst first, refreshed in place. It reads; it never acts.

Each refresh is a scan-mode sweep (``Mode.SCAN``: observe and diagnose, no plan, no
lease, no mutating call) that writes no sweep record either, so watching the fleet
leaves the healer's records, its memory cadence and `orch status` as they were. The
scans run in a background thread so the keys answer while one is under way; the
layout is ``orchestrator.cli.top_layout`` (pure).

Off a terminal (a pipe), with ``--once`` or with ``-o json``, it prints one frame and
exits 0.
"""

from __future__ import annotations

import contextlib
import os
import select
import sys
import termios
import threading
import tty
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Callable, Iterator

import click
from rich.console import Console
from rich.live import Live
from rich.text import Text

from orchestrator.cli.common import Runtime, common_options, stdin_is_terminal
from orchestrator.cli.params import FiniteFloat
from orchestrator.cli.sweep_cmds import no_match, run_sweep
from orchestrator.cli.top_layout import Line, Only, SortKey, TopRow, View, arrange, frame, row_document, rows_from
from orchestrator.observe.metrics import DimensionCache
from orchestrator.sweep.pipeline import Mode


@dataclass(frozen=True, slots=True)
class Snapshot:
    rows: list[TopRow]
    at: datetime


def take_snapshot(runtime: Runtime, show_progress: bool, cache: DimensionCache) -> Snapshot:
    """One scan of the fleet as rows (scan mode: never plans, takes no lease, records nothing)."""
    report = run_sweep(runtime, Mode.SCAN, dry_run=True, assume_yes=True, show_progress=show_progress, record=False, dimension_cache=cache)
    if not report.facts:
        raise no_match(runtime)
    settings = runtime.settings
    chronic = {i for p in report.patterns for i in p.members}
    rows = rows_from(report.facts, report.verdicts, report.histories, chronic, settings.safety.ladder, settings.opt_out_tag)
    return Snapshot(rows, report.started_at)


def to_text(lines: list[Line]) -> Text:
    text = Text(no_wrap=True, overflow="crop")
    for i, line in enumerate(lines):
        if i:
            text.append("\n")
        for part, style in line:
            text.append(part, style=style or None)
    return text


@click.command("top")
@click.option("--sort", type=click.Choice([s.value for s in SortKey]), default=SortKey.WORST.value, show_default=True,
              help="Row order; worst: by verdict severity, then memory.")
@click.option("--only", type=click.Choice([o.value for o in Only]), default=Only.ALL.value, show_default=True,
              help="unhealthy: hide healthy instances.")
@click.option("--interval", type=FiniteFloat(1, 3600), default=15.0, show_default=True,
              help="Seconds between scans while live.")
@click.option("--once", is_flag=True, help="Print one frame and exit (what a pipe gets anyway).")
@common_options
def top_command(runtime: Runtime, sort: str, only: str, interval: float, once: bool) -> None:
    """The fleet live, worst first: verdict, SSH, memory and its window, time to exhaustion,
    ladder, action in flight, chronic or quarantined. Reads; never acts.

    \b
    Keys while live: q quit, s cycle the sort, u unhealthy only / all.
    Columns are dropped to fit the terminal (az, name, ladder, slope, flags, acting,
    window, full in, ...), never cut: instance and verdict always stay.
    """
    settings = runtime.settings
    out = runtime.console()
    view = View(
        now=datetime.min,
        sort=SortKey(sort),
        only=Only(only),
        critical_percent=settings.memory.critical_percent,
        opt_out_tag=settings.opt_out_tag,
    )
    cache = DimensionCache()
    if once or runtime.json or not out.is_terminal:
        snap = take_snapshot(runtime, show_progress=True, cache=cache)
        view = replace(view, now=snap.at)
        runtime.emit(
            [row_document(r) for r in arrange(snap.rows, view.sort, view.only)],
            lambda: out.print(to_text(frame(snap.rows, view, out.width)), soft_wrap=True),
        )
        return
    watch(runtime, out, replace(view, live=True), interval, cache)


class Refresher(threading.Thread):
    """Scans in the background, one after another with ``interval`` seconds between them."""

    def __init__(self, scan: Callable[[], Snapshot], interval: float) -> None:
        super().__init__(name="orch-top-scan", daemon=True)
        self.scan = scan
        self.interval = interval
        self.lock = threading.Lock()
        self.latest: Snapshot | None = None
        self.error: BaseException | None = None
        self.busy = False
        self.changed = threading.Event()
        self.stopped = threading.Event()

    def run(self) -> None:
        while not self.stopped.is_set():
            with self.lock:
                self.busy = True
            self.changed.set()
            try:
                snap = self.scan()
            except Exception as exc:  # shown in the frame; the first one ends `orch top` with its exit code
                with self.lock:
                    self.error, self.busy = exc, False
            else:
                with self.lock:
                    self.latest, self.error, self.busy = snap, None, False
            self.changed.set()
            self.stopped.wait(self.interval)


def describe(exc: BaseException) -> str:
    return exc.format_message() if isinstance(exc, click.ClickException) else str(exc)


def watch(runtime: Runtime, out: Console, view: View, interval: float, cache: DimensionCache) -> None:
    refresher = Refresher(lambda: take_snapshot(runtime, show_progress=False, cache=cache), interval)
    refresher.start()
    try:
        with keys() as read_key, Live(console=out, auto_refresh=False, transient=False, vertical_overflow="crop") as live:
            size = out.size
            while True:
                redraw = refresher.changed.wait(0) or out.size != size
                refresher.changed.clear()
                with refresher.lock:
                    snap, error, busy = refresher.latest, refresher.error, refresher.busy
                if snap is None and error is not None:
                    raise error  # the first scan failed: the same one line and exit code as `orch scan`
                for key in read_key(0.1):
                    if key == "q":
                        return
                    if key == "s":
                        view, redraw = replace(view, sort=view.sort.next()), True
                    elif key == "u":
                        view, redraw = replace(view, only=view.only.toggled()), True
                if not redraw:
                    continue
                size = out.size
                status = "refreshing…" if busy else ""
                if error is not None:
                    status = f"the last refresh failed ({describe(error)}); showing the scan of {snap.at:%H:%M:%S} UTC" if snap else ""
                if snap is None:
                    lines: list[Line] = [(("orch top: the first scan of the fleet is under way…", "bold"),), (("keys: q quit", "dim"),)]
                else:
                    lines = frame(snap.rows, replace(view, now=snap.at, status=status), size.width, size.height - 1)
                live.update(to_text(lines), refresh=True)
    except KeyboardInterrupt:
        return
    finally:
        refresher.stopped.set()
        refresher.join(timeout=1.0)


@contextlib.contextmanager
def keys() -> Iterator[Callable[[float], str]]:
    """Single key presses from the terminal (cbreak: no Enter needed, no echo); none if stdin
    is not one, is closed (``<&-``), or reaches its end (the terminal hung up): then the
    frame still refreshes, and Ctrl-C quits."""

    def no_keys(timeout: float) -> str:
        threading.Event().wait(timeout)
        return ""

    fd = sys.stdin.fileno() if stdin_is_terminal() else None
    if fd is None:
        yield no_keys
        return
    try:
        saved = termios.tcgetattr(fd)
        tty.setcbreak(fd)
    except (termios.error, OSError):
        yield no_keys
        return
    ended = threading.Event()
    try:

        def read(timeout: float) -> str:
            if ended.is_set():
                return no_keys(timeout)
            try:
                ready, _, _ = select.select([fd], [], [], timeout)
                data = os.read(fd, 64) if ready else b"-"
            except OSError:
                data = b""
            if not data:  # end of input: select would say "ready" forever
                ended.set()
                return ""
            return data.decode(errors="ignore").lower() if ready else ""

        yield read
    finally:
        with contextlib.suppress(termios.error, OSError):
            termios.tcsetattr(fd, termios.TCSADRAIN, saved)

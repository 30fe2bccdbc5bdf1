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
import logging
import os
import select
import sys
import termios
import threading
import tty
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Callable, Iterator

import click
from rich.console import Console
from rich.live import Live
from rich.text import Text

from orchestrator.cli.common import Exit, OrchError, Runtime, common_options, stdin_is_terminal
from orchestrator.cli.instance_view import detail_lines
from orchestrator.cli.params import FiniteFloat
from orchestrator.cli.sweep_cmds import no_match, run_sweep
from orchestrator.cli.top_keys import Do, Screen, State, press, split_keys
from orchestrator.cli.top_layout import Line, View, frame, legend_notes, wrap_words
from orchestrator.cli.top_rows import Only, SortKey, TopRow, arrange, row_document, rows_from
from orchestrator.model import Facts, InstanceHistory, Verdict
from orchestrator.observe.metrics import DimensionCache
from orchestrator.state.store import StateError
from orchestrator.sweep.pipeline import Mode

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Snapshot:
    rows: list[TopRow]
    at: datetime
    facts: dict[str, Facts] = field(default_factory=dict)  # for the instance screen (Enter)
    verdicts: dict[str, Verdict] = field(default_factory=dict)
    histories: dict[str, InstanceHistory] = field(default_factory=dict)


def take_snapshot(runtime: Runtime, show_progress: bool, cache: DimensionCache) -> Snapshot:
    """One scan of the fleet as rows (scan mode: never plans, takes no lease, records nothing)."""
    report = run_sweep(runtime, Mode.SCAN, dry_run=True, assume_yes=True, show_progress=show_progress, record=False, dimension_cache=cache)
    if not report.facts:
        raise no_match(runtime)
    settings = runtime.settings
    chronic = {i for p in report.patterns for i in p.members}
    rows = rows_from(report.facts, report.verdicts, report.histories, chronic, settings.safety.ladder, settings.opt_out_tag)
    return Snapshot(rows, report.started_at, {f.instance.instance_id: f for f in report.facts},
                    {v.instance_id: v for v in report.verdicts}, dict(report.histories))


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
@click.option("--filter", "needle", default="", help="Only rows whose name, id, AZ or verdict holds this text (live: /).")
@click.option("--interval", type=FiniteFloat(1, 3600), default=None,
              help="Seconds between scans while live (default: ORCH_TOP_INTERVAL, else 5; live: + and -).")
@click.option("--once", is_flag=True, help="Print one frame and exit (what a pipe gets anyway).")
@common_options
def top_command(runtime: Runtime, sort: str, only: str, needle: str, interval: float | None, once: bool) -> None:
    """The fleet live, worst first: verdict, SSH, memory and its window, time to
    exhaustion, ladder, action in flight, chronic or quarantined. Reads; never acts.

    Keys while live, as in htop and k9s: arrows or j/k move, PgUp/PgDn page, g/G
    first/last, / filter by name, id, AZ or verdict, Enter opens the instance (its
    chart and evidence), ? help, s cycle the sort, u unhealthy only, r refresh now,
    +/- the refresh interval, q quit. Columns are dropped to fit the terminal (az,
    ladder, slope, flags, acting, window, full in, ..., the name last), never cut:
    instance and verdict always stay.
    """
    settings = runtime.settings
    out = runtime.console()
    view = View(
        now=datetime.min,
        sort=SortKey(sort),
        only=Only(only),
        critical_percent=settings.memory.critical_percent,
        opt_out_tag=settings.opt_out_tag,
        needle=needle,
        interval=interval if interval is not None else default_interval(),
    )
    cache = DimensionCache()
    if once or runtime.json or not out.is_terminal:
        snap = take_snapshot(runtime, show_progress=True, cache=cache)
        view = replace(view, now=snap.at)
        runtime.emit(
            [row_document(r) for r in arrange(snap.rows, view.sort, view.only, view.needle)],
            lambda: out.print(to_text(frame(snap.rows, view, out.width)), soft_wrap=True),
        )
        return
    watch(runtime, out, replace(view, live=True), cache)


def default_interval() -> float:
    """ORCH_TOP_INTERVAL (seconds), else 5: a watcher wants to see the story move."""
    raw = os.environ.get("ORCH_TOP_INTERVAL", "").strip()
    try:
        value = float(raw) if raw else DEFAULT_INTERVAL
    except ValueError:
        raise OrchError(f"ORCH_TOP_INTERVAL={raw!r} is not a number of seconds", Exit.USAGE) from None
    if not 1 <= value <= 3600:
        raise OrchError(f"ORCH_TOP_INTERVAL={raw!r}: give 1 to 3600 seconds", Exit.USAGE)
    return value


DEFAULT_INTERVAL = 5.0


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
        self.wake = threading.Event()  # `r`: scan now

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
            self.wake.wait(self.interval)
            self.wake.clear()


def describe(exc: BaseException) -> str:
    return exc.format_message() if isinstance(exc, click.ClickException) else str(exc)


def watch(runtime: Runtime, out: Console, view: View, cache: DimensionCache) -> None:
    refresher = Refresher(lambda: take_snapshot(runtime, show_progress=False, cache=cache), view.interval)
    refresher.start()
    state = State(view)
    detail: list[str] = []
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
                shown = arrange(snap.rows, state.view.sort, state.view.only, state.view.needle) if snap else []
                for key in read_key(0.1):
                    state, do = press(replace(state, page=max(1, out.size.height - 8)), key, len(shown))
                    redraw = True
                    if do is Do.QUIT:
                        return
                    if do is Do.REFRESH:
                        refresher.wake.set()
                    if do is Do.OPEN and snap is not None and shown:
                        detail = instance_screen(runtime, snap, shown[min(state.view.selected, len(shown) - 1)], out.size.width)
                    refresher.interval = state.view.interval
                if not redraw:
                    continue
                size = out.size
                status = "refreshing…" if busy else ""
                if error is not None:
                    status = f"the last refresh failed ({describe(error)}); showing the scan of {snap.at:%H:%M:%S} UTC" if snap else ""
                if state.screen is Screen.FILTER:
                    status = f"/{state.typed}▏  (Enter keeps it, Esc drops it; part of a name, id, AZ or verdict)"
                lines = screen_lines(state, snap, status, detail, size.width, size.height - 1)
                live.update(to_text(lines), refresh=True)
    except KeyboardInterrupt:
        return
    finally:
        refresher.stopped.set()
        refresher.wake.set()
        refresher.join(timeout=1.0)


def screen_lines(state: State, snap: Snapshot | None, status: str, detail: list[str], width: int, height: int) -> list[Line]:
    """What the screen shows for the state: the table, the help, or one instance."""
    if snap is None:
        return [(("orch top: the first scan of the fleet is under way…", "bold"),), (("keys: q quit", "dim"),)]
    if state.screen is Screen.HELP:
        return [((line[:width], ""),) for line in help_lines(snap, state.view, width)][:height]
    if state.screen is Screen.DETAIL:
        body = [((line[:width], ""),) for line in detail][: max(1, height - 1)]
        return body + [(("q, Esc or Enter: back to the fleet", "dim"),)]
    return frame(snap.rows, replace(state.view, now=snap.at, status=status), width, height)


HELP = (
    ("↑ ↓ j k", "move"),
    ("PgUp PgDn b space", "a page up or down"),
    ("g G Home End", "first, last"),
    ("/", "filter: part of a name, id, AZ or verdict; Enter keeps it, Esc drops it"),
    ("Enter", "open the selected instance: its memory chart, reasons, probes, actions"),
    ("s", "cycle the sort: worst, memory, name, id"),
    ("u", "unhealthy only / all"),
    ("r", "scan now"),
    ("+ -", "refresh interval longer / shorter"),
    ("? q Esc", "this help; quit (or back from help and an instance)"),
)


def help_lines(snap: Snapshot, view: View, width: int) -> list[str]:
    lines = ["orch top: keys", ""]
    lines += [f"  {keys_text:<18} {what}"[:width] for keys_text, what in HELP]
    lines += ["", f"refreshing every {view.interval:g}s (--interval, ORCH_TOP_INTERVAL); it reads, never acts", ""]
    for note in legend_notes(snap.rows, None, view):
        lines += wrap_words(note, width)
    lines += ["", "any of q, Esc, ? or Enter: back to the fleet"]
    return lines


def instance_screen(runtime: Runtime, snap: Snapshot, row: TopRow, width: int) -> list[str]:
    """explain's chart and evidence for the selected row, from the scan shown and the store's last actions."""
    facts, verdict = snap.facts.get(row.instance_id), snap.verdicts.get(row.instance_id)
    if facts is None or verdict is None:
        return [f"{row.instance_id}: not in the last scan"]
    try:
        actions = runtime.store.list_actions(row.instance_id, 10)
    except StateError as exc:
        actions = []
        log.info("no actions for the instance screen: %s", exc)
    return detail_lines(facts, verdict, snap.histories.get(row.instance_id), actions, snap.at, runtime.settings.memory, width)


@contextlib.contextmanager
def keys() -> Iterator[Callable[[float], list[str]]]:
    """Single key presses from the terminal (cbreak: no Enter needed, no echo); none if stdin
    is not one, is closed (``<&-``), or reaches its end (the terminal hung up): then the
    frame still refreshes, and Ctrl-C quits."""

    def no_keys(timeout: float) -> list[str]:
        threading.Event().wait(timeout)
        return []

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

        def read(timeout: float) -> list[str]:
            if ended.is_set():
                return no_keys(timeout)
            try:
                ready, _, _ = select.select([fd], [], [], timeout)
                data = os.read(fd, 64) if ready else b"-"
            except OSError:
                data = b""
            if not data:  # end of input: select would say "ready" forever
                ended.set()
                return []
            return split_keys(data.decode(errors="ignore")) if ready else []

        yield read
    finally:
        with contextlib.suppress(termios.error, OSError):
            termios.tcsetattr(fd, termios.TCSADRAIN, saved)

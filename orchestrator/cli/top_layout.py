"""`orch top`'s frame, as data: which rows, in which order, which columns fit, each cell's text. Pure.

Nothing here reads a clock, a terminal or AWS: ``rows_from`` turns one scan's facts,
verdicts and histories into ``TopRow``s, and ``frame`` lays them out for a width (and,
live, a height) at a given ``now``, so the layout is table-tested with fixed timestamps.

Fitting a width. Columns are never cut (a verdict is read whole or not at all); they are
dropped instead, in this order until the rest fits:

1. columns with nothing to say on any shown row (no action in flight, no ladder, no
   chronic or quarantined instance: all ``-``);
2. then, least useful first: az, name, ladder, slope, flags, acting, the memory window
   (sparkline), minutes to exhaustion ("full in"), ssh, memory now.

The instance id and the verdict are never dropped. The memory window takes what width
is left over (8 to 30 characters). A name longer than 18 characters is shortened with
``…``: names are for recognising, the id is the handle. At 80 columns a fleet with a
``memory-exhaustion-forecast`` row keeps instance, verdict, memory, ssh, "full in" and a
short window; 120 columns add the rest.

Rows, worst first by default: by verdict severity (unreachable first, healthy last),
then by memory, highest first. ``--sort memory|name|id`` and ``--only unhealthy``
change that; live, the ``s`` and ``u`` keys do.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Callable, Iterable, Mapping, Sequence

from orchestrator.cli.render import SEVERITY, VERDICT_STYLE, Column  # one severity order and one palette with `orch scan`
from orchestrator.cli.render import fit_columns as shared_fit
from orchestrator.decide.memory import since_cycle
from orchestrator.model import ActionKind, Facts, InstanceHistory, ProbeOutcome, Verdict, VerdictKind

LEVELS = "▁▂▃▄▅▆▇"  # below the critical line, in seven steps from 0%
OVER = "█"  # at or above the critical line
SPARK_MIN, SPARK_MAX = 6, 30
NAME_MAX = 18
OPTED_MARK = " *"
EMPTY = "-"


class SortKey(str, enum.Enum):
    WORST = "worst"
    MEMORY = "memory"
    NAME = "name"
    ID = "id"

    def next(self) -> SortKey:
        """The `s` key: worst -> memory -> name -> id -> worst."""
        order = list(SortKey)
        return order[(order.index(self) + 1) % len(order)]


class Only(str, enum.Enum):
    ALL = "all"
    UNHEALTHY = "unhealthy"

    def toggled(self) -> Only:
        return Only.ALL if self is Only.UNHEALTHY else Only.UNHEALTHY


@dataclass(frozen=True, slots=True)
class TopRow:
    """One instance as `orch top` shows it."""

    instance_id: str
    name: str
    az: str
    verdict: VerdictKind
    opted_out: bool = False
    probe: ProbeOutcome | None = None
    latency_ms: float | None = None
    memory_percent: float | None = None
    slope_per_min: float | None = None
    minutes_to_exhaustion: float | None = None
    memory_window: tuple[float, ...] = ()  # the metric window's values, oldest first
    rung: int = 0  # the ladder's next rung (index), as the history says
    next_rung: ActionKind | None = None  # None: past the last rung
    in_flight: ActionKind | None = None  # an action taken, not yet verified
    in_flight_since: datetime | None = None
    chronic: bool = False
    quarantined: bool = False
    quarantine_reason: str = ""


def rows_from(
    facts: Iterable[Facts],
    verdicts: Iterable[Verdict],
    histories: Mapping[str, InstanceHistory],
    chronic_ids: Iterable[str],
    ladder: Sequence[ActionKind],
    opt_out_tag: str,
) -> list[TopRow]:
    """One row per instance of a scan, in the scan's order."""
    by_id = {v.instance_id: v for v in verdicts}
    chronic = frozenset(chronic_ids)
    rows = []
    for f in facts:
        inst = f.instance
        v = by_id[inst.instance_id]
        h = histories.get(inst.instance_id) or InstanceHistory(inst.instance_id)
        in_flight = h.in_flight_key is not None
        rows.append(
            TopRow(
                instance_id=inst.instance_id,
                name=inst.name,
                az=inst.availability_zone,
                verdict=v.kind,
                opted_out=opt_out_tag in inst.tags,
                probe=f.probe.outcome if f.probe else None,
                latency_ms=1000 * f.probe.ok_latency_s if f.probe and f.probe.ok_latency_s is not None else None,
                memory_percent=v.memory_percent,
                slope_per_min=v.memory_slope_per_min,
                minutes_to_exhaustion=v.minutes_to_exhaustion,
                memory_window=_window(f, v, h),
                rung=h.rung,
                next_rung=ladder[h.rung] if h.rung < len(ladder) else None,
                in_flight=h.last_action if in_flight else None,
                in_flight_since=h.last_action_at if in_flight else None,
                chronic=inst.instance_id in chronic,
                quarantined=h.quarantined_at is not None,
                quarantine_reason=h.quarantine_reason,
            )
        )
    return rows


def _window(f: Facts, v: Verdict, h: InstanceHistory) -> tuple[float, ...]:
    """The memory window; when the verdict set every point aside (all from before orch's last
    reboot), only this cycle's, so "-" never stands beside the last cycle's full sparkline."""
    if not f.memory:
        return ()
    points = sorted(f.memory.points)
    if v.memory_percent is None:
        points = since_cycle(points, h.cycle_started_at)
    return tuple(value for _, value in points)


# -- which rows, in which order ------------------------------------------------------


def _memory_first(row: TopRow) -> float:
    return -row.memory_percent if row.memory_percent is not None else 1.0


SORTS: dict[SortKey, Callable[[TopRow], tuple[Any, ...]]] = {
    SortKey.WORST: lambda r: (SEVERITY.index(r.verdict), _memory_first(r), r.instance_id),
    SortKey.MEMORY: lambda r: (_memory_first(r), SEVERITY.index(r.verdict), r.instance_id),
    SortKey.NAME: lambda r: (r.name == "", r.name, r.instance_id),
    SortKey.ID: lambda r: (r.instance_id,),
}


def arrange(rows: Iterable[TopRow], sort: SortKey, only: Only) -> list[TopRow]:
    shown = [r for r in rows if only is Only.ALL or r.verdict is not VerdictKind.HEALTHY]
    return sorted(shown, key=SORTS[sort])


# -- cell text -------------------------------------------------------------------------


def verdict_cell(row: TopRow) -> str:
    return row.verdict.value + (OPTED_MARK if row.opted_out else "")


def ssh_cell(row: TopRow) -> str:
    """Latency when sshd answered, else how it failed."""
    if row.probe is None:
        return EMPTY
    if row.probe is ProbeOutcome.OK:
        return f"{row.latency_ms:.0f}ms" if row.latency_ms is not None else "ok"
    return row.probe.value


def memory_cell(row: TopRow) -> str:
    return EMPTY if row.memory_percent is None else f"{row.memory_percent:.0f}%"


def slope_cell(row: TopRow) -> str:
    if row.slope_per_min is None or abs(row.slope_per_min) < 0.05:
        return EMPTY
    return f"{row.slope_per_min:+.1f}/min"


def full_cell(row: TopRow) -> str:
    """Minutes until memory reaches exhaustion at the current trend."""
    m = row.minutes_to_exhaustion
    if m is None:
        return EMPTY
    if m <= 0:
        return "now"
    if m < 60:
        return f"{m:.0f}m"
    if m < 24 * 60:
        hours, minutes = divmod(round(m), 60)
        return f"{hours}h{minutes:02d}"
    return ">1d"


def ladder_cell(row: TopRow) -> str:
    """The rung the next action would take, once the ladder has moved."""
    if row.rung == 0:
        return EMPTY
    return f"{row.rung} {row.next_rung.value if row.next_rung else 'none left'}"


def acting_cell(row: TopRow, now: datetime) -> str:
    if row.in_flight is None:
        return EMPTY
    if row.in_flight_since is None:
        return row.in_flight.value
    minutes = max(0, int((now - row.in_flight_since).total_seconds() // 60))
    return f"{row.in_flight.value} {minutes}m"


def flags_cell(row: TopRow) -> str:
    words = [w for w, on in (("quarantined", row.quarantined), ("chronic", row.chronic)) if on]
    return " ".join(words) or EMPTY


def sparkline(values: Sequence[float], width: int, critical_percent: float) -> str:
    """The window in ``width`` cells (each its part's highest value), right-aligned.

    Below the critical line a cell is one of seven steps from 0%; at or above it the cell
    is full (``█``): the critical line is the top of the ``▇``.
    """
    if width <= 0 or not values:
        return ""
    n = len(values)
    cells = min(width, n)
    out = []
    for i in range(cells):
        part = values[i * n // cells : max(i * n // cells + 1, (i + 1) * n // cells)]
        peak = max(part)
        if peak >= critical_percent:
            out.append(OVER)
        else:
            out.append(LEVELS[min(len(LEVELS) - 1, max(0, int(peak / critical_percent * len(LEVELS))))])
    return "".join(out).rjust(width)


# -- columns and fitting -------------------------------------------------------------------


DROP_ORDER = ("az", "name", "ladder", "slope", "flags", "acting", "window", "full", "ssh", "memory")
NEVER_DROPPED = ("instance", "verdict")
GAP = 1


def _column(key: str, heading: str, right: bool = False) -> Column:
    """The window is the one column that gives way before leaving: SPARK_MIN to SPARK_MAX wide."""
    drop = DROP_ORDER.index(key) + 1 if key in DROP_ORDER else None
    return Column(key, heading, drop=drop, cut=key == "window", min_width=SPARK_MIN, right=right)


COLUMNS: tuple[Column, ...] = (
    _column("instance", "instance"),
    _column("name", "name"),
    _column("az", "az"),
    _column("verdict", "verdict"),
    _column("ssh", "ssh"),
    _column("memory", "mem", right=True),
    _column("window", "window"),
    _column("slope", "slope", right=True),
    _column("full", "full", right=True),
    _column("ladder", "ladder"),
    _column("acting", "acting"),
    _column("flags", "flags"),
)


def cells(row: TopRow, now: datetime) -> dict[str, str]:
    """Every column's text for one row but the window, which depends on the width."""
    name = row.name if len(row.name) <= NAME_MAX else row.name[: NAME_MAX - 1] + "…"
    return {
        "instance": row.instance_id,
        "name": name or EMPTY,
        "az": row.az or EMPTY,
        "verdict": verdict_cell(row),
        "ssh": ssh_cell(row),
        "memory": memory_cell(row),
        "window": "",
        "slope": slope_cell(row),
        "full": full_cell(row),
        "ladder": ladder_cell(row),
        "acting": acting_cell(row, now),
        "flags": flags_cell(row),
    }


@dataclass(frozen=True, slots=True)
class Layout:
    columns: tuple[Column, ...]
    widths: dict[str, int]
    too_wide: tuple[str, ...] = ()  # headers of the columns dropped for the width (not the empty ones)

    @property
    def total(self) -> int:
        return sum(self.widths[c.key] for c in self.columns) + GAP * (len(self.columns) - 1)


def fit_columns(table: Sequence[Mapping[str, str]], width: int) -> Layout:
    """The columns that fit ``width``: first those with nothing to say leave, then
    orchestrator.cli.render.fit_columns (the one mechanism every orch table fits by)
    drops in DROP_ORDER; the window takes what is left, up to SPARK_MAX."""
    empty = {k for k in DROP_ORDER if k != "window" and table and all(r[k] == EMPTY for r in table)}
    measured = [{**r, "window": OVER * SPARK_MAX} for r in table] or [{"window": OVER * SPARK_MAX}]
    fit = shared_fit([c for c in COLUMNS if c.key not in empty], measured, width, gap=GAP)
    return Layout(fit.shown, dict(fit.widths), tuple(c.heading for c in fit.dropped))


# -- the frame ---------------------------------------------------------------------------------

Segment = tuple[str, str]  # (text, rich style; "" for none)
Line = tuple[Segment, ...]


@dataclass(frozen=True, slots=True)
class View:
    """What the person chose and what the frame is about."""

    now: datetime  # when the scan shown was made
    sort: SortKey = SortKey.WORST
    only: Only = Only.ALL
    critical_percent: float = 95.0
    opt_out_tag: str = "orch:skip"
    live: bool = False  # show the keys
    status: str = ""  # e.g. "refreshing…" or the last refresh's error


def frame(rows: Sequence[TopRow], view: View, width: int, height: int | None = None) -> list[Line]:
    """The whole screen: title, verdict counts, the table, legend (and keys, live).

    ``height`` (live) keeps the frame on the screen: rows past it are counted, not shown.
    """
    shown = arrange(rows, view.sort, view.only)
    lines: list[Line] = [_plain(_fit_parts(_title_parts(rows, shown, view), width))]
    lines.extend(_plain(text) for text in _wrap(_count_parts(rows), width))
    if view.status:
        lines.append(((view.status[:width], "yellow"),))
    table = [cells(r, view.now) for r in shown]
    layout = fit_columns(table, width)
    lines.append(_header(layout))
    lines.append((("─" * min(width, layout.total), "dim"),))
    footer = _footer(rows, shown, layout, view, width)
    room = None if height is None else max(1, height - len(lines) - len(footer) - 1)
    visible = shown if room is None or len(shown) <= room else shown[: room - 1]
    for row, text in zip(visible, table):
        lines.append(_row_line(row, text, layout, view))
    if len(visible) < len(shown):
        lines.append(_plain(f"… {len(shown) - len(visible)} more below (a larger terminal shows them)"[:width]))
    if not shown:
        lines.append(_plain("no instance to show" + (" (every instance is healthy; u shows all)" if view.only is Only.UNHEALTHY else "")))
    lines.extend(footer)
    return lines


def plain_text(lines: Sequence[Line]) -> list[str]:
    """The frame without styles (for tests and pipes)."""
    return ["".join(text for text, _ in line).rstrip() for line in lines]


def _plain(text: str) -> Line:
    return ((text, ""),)


def _title_parts(rows: Sequence[TopRow], shown: Sequence[TopRow], view: View) -> list[tuple[str, int]]:
    """The title's parts with their rank: the highest rank is dropped first when it does not fit."""
    unhealthy = sum(1 for r in rows if r.verdict is not VerdictKind.HEALTHY)
    return [
        ("orch top", 4),
        (f"{len(rows)} instances, {unhealthy} unhealthy", 0),
        (f"{view.now:%H:%M:%S} UTC", 3),
        (f"sort {view.sort.value}", 1),
        ("unhealthy only" if view.only is Only.UNHEALTHY else "all", 2),
    ]


def _count_parts(rows: Sequence[TopRow]) -> list[str]:
    counts = {k: sum(1 for r in rows if r.verdict is k) for k in SEVERITY}
    return [f"{n} {k.value}" for k, n in counts.items() if n]


def _fit_parts(parts: list[tuple[str, int]], width: int) -> str:
    """Join with " · ", dropping the highest-ranked parts until it fits (the last one left is cut if it must be)."""
    while len(parts) > 1 and len(" · ".join(p for p, _ in parts)) > width:
        worst = max(rank for _, rank in parts)
        parts = [p for p in parts if p[1] != worst]
    return " · ".join(p for p, _ in parts)[:width]


def _wrap(parts: list[str], width: int) -> list[str]:
    lines: list[str] = []
    current = ""
    for part in parts:
        candidate = f"{current}, {part}" if current else part
        if len(candidate) <= width or not current:
            current = candidate[:width]
        else:
            lines.append(current + ",")
            current = part[:width]
    if current:
        lines.append(current)
    return lines


def _pad(text: str, width: int, right: bool) -> str:
    return text.rjust(width) if right else text.ljust(width)


def _header(layout: Layout) -> Line:
    texts = [_pad(c.heading, layout.widths[c.key], c.right) for c in layout.columns]
    return (((" " * GAP).join(texts), "bold"),)


def _row_line(row: TopRow, text: Mapping[str, str], layout: Layout, view: View) -> Line:
    segments: list[Segment] = []
    for i, column in enumerate(layout.columns):
        if i:
            segments.append((" " * GAP, ""))
        w = layout.widths[column.key]
        if column.key == "window":
            spark = sparkline(row.memory_window, w, view.critical_percent)
            segments.extend(_spark_segments(spark))
            continue
        style = ""
        if column.key == "verdict":
            style = VERDICT_STYLE[row.verdict]
        elif column.key == "flags" and row.quarantined:
            style = "bold red"
        elif column.key == "ssh" and row.probe not in (None, ProbeOutcome.OK):
            style = "red"
        segments.append((_pad(text[column.key], w, column.right), style))
    return tuple(segments)


def _spark_segments(spark: str) -> list[Segment]:
    out: list[Segment] = []
    for ch in spark:
        style = "red" if ch == OVER else "cyan"
        if out and out[-1][1] == style:
            out[-1] = (out[-1][0] + ch, style)
        else:
            out.append((ch, style))
    return out


def _footer(rows: Sequence[TopRow], shown: Sequence[TopRow], layout: Layout, view: View, width: int) -> list[Line]:
    notes = []
    keys = {c.key for c in layout.columns}
    if "window" in keys:
        notes.append(f"window: memory over the metric window, {OVER} at or above critical {view.critical_percent:g}%")
    if any(r.opted_out for r in shown):
        notes.append(f"* opted out by tag {view.opt_out_tag}: reported, never acted on")
    if "full" in keys:
        notes.append("full: time until memory reaches exhaustion at its trend")
    if layout.too_wide:
        notes.append(f"too wide to show here: {', '.join(layout.too_wide)}")
    if view.live:
        notes.append("keys: q quit, s sort, u unhealthy only / all")
    lines: list[Line] = []
    for note in notes:
        lines.extend(_dim(t) for t in _wrap_words(note, width))
    return lines


def _dim(text: str) -> Line:
    return ((text, "dim"),)


def _wrap_words(text: str, width: int) -> list[str]:
    lines: list[str] = []
    current = ""
    for word in text.split(" "):
        candidate = f"{current} {word}" if current else word
        if len(candidate) <= width or not current:
            current = candidate[:width]
        else:
            lines.append(current)
            current = word[:width]
    if current:
        lines.append(current)
    return lines


def row_document(row: TopRow) -> dict[str, Any]:
    """`orch top -o json`: one object per row (timestamps as elsewhere in orch's JSON)."""
    return {
        "instance_id": row.instance_id,
        "name": row.name,
        "az": row.az,
        "verdict": row.verdict.value,
        "opted_out": row.opted_out,
        "probe": row.probe.value if row.probe else None,
        "probe_latency_ms": None if row.latency_ms is None else round(row.latency_ms, 1),
        "memory_percent": _rounded(row.memory_percent, 2),
        "memory_slope_per_min": _rounded(row.slope_per_min, 3),
        "minutes_to_exhaustion": _rounded(row.minutes_to_exhaustion, 1),
        "memory_window": list(row.memory_window),
        "ladder_rung": row.rung,
        "next_rung": row.next_rung.value if row.next_rung else None,
        "in_flight": row.in_flight.value if row.in_flight else None,
        "in_flight_since": row.in_flight_since,
        "chronic": row.chronic,
        "quarantined": row.quarantined,
        "quarantine_reason": row.quarantine_reason or None,
    }


def _rounded(value: float | None, digits: int) -> float | None:
    return None if value is None else round(value, digits)

"""`orch top`'s frame, as data: which columns fit, and the screen's lines. Pure.

Nothing here reads a clock, a terminal or AWS: ``frame`` lays the rows out
(orchestrator.cli.top_rows) for a width and, live, a height at a given ``now``, so the
layout is table-tested with fixed timestamps.

Fitting a width. Columns are never cut (a verdict is read whole or not at all); they are
dropped instead, in this order until the rest fits:

1. columns with nothing to say on any shown row (no action in flight, no ladder, no
   chronic or quarantined instance: all ``-``);
2. then, least useful first: az, ladder, slope, flags, acting,
   ssh (the verdict says how it failed), the memory window (sparkline), minutes to
   exhaustion ("full in"), memory now, and the name last.

The instance id and the verdict are never dropped. The memory window takes what width
is left over (8 to 30 characters). A name longer than 18 characters is shortened with
``…``: names are for recognising, the id is the handle.

Fitting a height (live). Every line the terminal has below the title, the counts and the
header holds a row; one line of keys closes the screen. The legend lives on the help
screen (``?``). Rows past the screen are reached by scrolling: the selected row
(highlighted) is always on screen, and the title says which rows are shown.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from typing import Mapping, Sequence

from orchestrator.cli.render import SEVERITY, VERDICT_STYLE
from orchestrator.cli.tables import Column
from orchestrator.cli.tables import fit_columns as shared_fit
from orchestrator.cli.top_cells import (
    EMPTY,
    OVER,
    acting_cell,
    flags_cell,
    full_cell,
    ladder_cell,
    memory_cell,
    slope_cell,
    sparkline,
    ssh_cell,
    verdict_cell,
)
from orchestrator.cli.top_rows import Only, SortKey, TopRow, arrange
from orchestrator.model import ProbeOutcome, VerdictKind

SPARK_MIN, SPARK_MAX = 6, 30
NAME_MAX = 18

# -- columns and fitting -------------------------------------------------------------------


# The name leaves last of the optional columns: people know their boxes by name.
DROP_ORDER = ("az", "ladder", "slope", "flags", "acting", "ssh", "window", "full", "memory", "name")
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
    orchestrator.cli.tables.fit_columns (the one mechanism every orch table fits by)
    drops in DROP_ORDER; the window takes what is left, up to SPARK_MAX. Columns dropped
    on the way that fit in what the later drops freed come back, the most useful first."""
    empty = {k for k in DROP_ORDER if k != "window" and table and all(r[k] == EMPTY for r in table)}
    measured = [{**r, "window": OVER * SPARK_MAX} for r in table] or [{"window": OVER * SPARK_MAX}]
    candidates = [c for c in COLUMNS if c.key not in empty]
    fit = shared_fit(candidates, measured, width, gap=GAP)
    kept = {c.key for c in fit.shown}
    for column in sorted(fit.dropped, key=lambda c: -(c.drop or 0)):
        trial = shared_fit([replace(c, drop=None) for c in candidates if c.key in kept | {column.key}], measured, width, gap=GAP)
        if trial.total > width:
            break  # in order only: a column is never shown while a more useful one is left out
        kept.add(column.key)
    if kept != {c.key for c in fit.shown}:
        fit = shared_fit([replace(c, drop=None) for c in candidates if c.key in kept], measured, width, gap=GAP)
        dropped = tuple(c for c in candidates if c.key not in kept)
    else:
        dropped = fit.dropped
    return Layout(fit.shown, dict(fit.widths), tuple(c.heading for c in sorted(dropped, key=lambda c: c.drop or 0)))


Segment = tuple[str, str]  # (text, rich style; "" for none)
Line = tuple[Segment, ...]
KEYS_LINE = "? help  / filter  ↵ open  ↑↓ PgUp PgDn scroll  s sort  u unhealthy  r refresh  q quit"


@dataclass(frozen=True, slots=True)
class View:
    """What the person chose and what the frame is about."""

    now: datetime  # when the scan shown was made
    sort: SortKey = SortKey.WORST
    only: Only = Only.ALL
    critical_percent: float = 95.0
    opt_out_tag: str = "orch:skip"
    live: bool = False  # show the keys and the selected row
    status: str = ""  # e.g. "refreshing…" or the last refresh's error
    needle: str = ""  # the `/` filter
    selected: int = 0  # index among the rows shown (live)
    offset: int = 0  # the first row on screen (live)
    interval: float = 0.0  # seconds between scans (live; shown in the title)


def visible_rows(height: int | None, header_lines: int) -> int | None:
    """How many rows a screen of ``height`` holds under ``header_lines`` and above the keys line."""
    return None if height is None else max(1, height - header_lines - 1)


def scrolled(view: View, count: int, room: int | None) -> View:
    """The selection kept within the rows and the offset moved so it is on screen."""
    selected = min(max(0, view.selected), max(0, count - 1))
    offset = view.offset
    if room is not None:
        offset = min(offset, selected)
        offset = max(offset, selected - room + 1)
        offset = max(0, min(offset, max(0, count - room)))
    else:
        offset = 0
    return replace(view, selected=selected, offset=offset)


def frame(rows: Sequence[TopRow], view: View, width: int, height: int | None = None) -> list[Line]:
    """The whole screen: title, verdict counts, the table (and, live, the keys).

    ``height`` (live) keeps the frame on the screen: the rows from ``view.offset`` that fit.
    Off a terminal (no height) every row and the legend are printed.
    """
    shown = arrange(rows, view.sort, view.only, view.needle)
    table = [cells(r, view.now) for r in shown]
    layout = fit_columns(table, width)
    head: list[Line] = []
    counts = [_plain(text) for text in _wrap(_count_parts(rows), width)]
    status = [((view.status[:width], "yellow"),)] if view.status else []
    header = [_header(layout), (("─" * min(width, layout.total), "dim"),)]
    room = visible_rows(height, 1 + len(counts) + len(status) + len(header))
    view = scrolled(view, len(shown), room)
    end = len(shown) if room is None else min(len(shown), view.offset + room)
    head.append(_plain(_fit_parts(_title_parts(rows, shown, view, end, room), width)))
    lines = head + counts + status + header
    for index in range(view.offset, end):
        line = _row_line(shown[index], table[index], layout, view)
        if view.live and index == view.selected:
            line = tuple((text, f"{style} reverse".strip()) for text, style in line)
        lines.append(line)
    if not shown:
        lines.append(_plain(_nothing(view)[:width]))
    if view.live:
        lines.append(_dim(_fit_keys(width)))
    else:
        lines.extend(_legend(shown, layout, view, width))
    return lines


def _nothing(view: View) -> str:
    if view.needle:
        return f"no instance matches /{view.needle} (/ then Enter on nothing clears it)"
    if view.only is Only.UNHEALTHY:
        return "no instance to show (every instance is healthy; u shows all)"
    return "no instance to show"


def _fit_keys(width: int) -> str:
    if len(KEYS_LINE) <= width:
        return KEYS_LINE
    short = "? help  / filter  ↵ open  s sort  u unhealthy  q quit"
    return short if len(short) <= width else "? help  q quit"


def plain_text(lines: Sequence[Line]) -> list[str]:
    """The frame without styles (for tests and pipes)."""
    return ["".join(text for text, _ in line).rstrip() for line in lines]


def _plain(text: str) -> Line:
    return ((text, ""),)


def _title_parts(rows: Sequence[TopRow], shown: Sequence[TopRow], view: View, end: int, room: int | None) -> list[tuple[str, int]]:
    """The title's parts with their rank: the highest rank is dropped first when it does not fit."""
    unhealthy = sum(1 for r in rows if r.verdict is not VerdictKind.HEALTHY)
    parts = [
        ("orch top", 5),
        (f"{len(rows)} instances, {unhealthy} unhealthy", 0),
        (f"{view.now:%H:%M:%S} UTC", 4),
        (f"sort {view.sort.value}", 2),
        ("unhealthy only" if view.only is Only.UNHEALTHY else "all", 3),
    ]
    if view.needle:
        parts.append((f"/{view.needle}", 1))
    if room is not None and len(shown) > room:
        parts.append((f"rows {view.offset + 1}-{end} of {len(shown)}", 1))
    if view.live and view.interval:
        parts.append((f"every {view.interval:g}s", 6))
    return parts


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


def legend_notes(shown: Sequence[TopRow], layout: Layout | None, view: View) -> list[str]:
    """What the columns mean: under a printed frame, and on the help screen live."""
    notes = []
    keys = {c.key for c in layout.columns} if layout is not None else {"window", "full"}
    if "window" in keys:
        notes.append(f"window: memory over the metric window (this cycle's when orch rebooted it), {OVER} at or above "
                     f"critical {view.critical_percent:g}%")
    if any(r.opted_out for r in shown):
        notes.append(f"* opted out by tag {view.opt_out_tag}: reported, never acted on")
    if "full" in keys:
        notes.append("full: time until memory reaches exhaustion at its trend")
    if layout is not None and layout.too_wide:
        notes.append(f"too wide to show here: {', '.join(layout.too_wide)}")
    return notes


def _legend(shown: Sequence[TopRow], layout: Layout, view: View, width: int) -> list[Line]:
    lines: list[Line] = []
    for note in legend_notes(shown, layout, view):
        lines.extend(_dim(t) for t in wrap_words(note, width))
    return lines


def _dim(text: str) -> Line:
    return ((text, "dim"),)


def wrap_words(text: str, width: int) -> list[str]:
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

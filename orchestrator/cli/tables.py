"""orch's one table style, and how every table fits the terminal.

Every table fits the terminal the same way, through ``fit_columns`` (pure, so the
layout is table-tested without a terminal): a row is one line, and columns are left
out in a fixed order until the rest fit; ids, times, counts and status words are never
wrapped or cut; only prose (a reason, a detail) is shortened, at a word, with ``…``;
the caption names the columns left out. ``-o wide`` (``WIDE``) shows every column and
wraps prose at words instead. What a table holds is its command's (the sweep report's
tables are orchestrator.cli.render's); nothing here knows a verdict from a name.
"""

from __future__ import annotations

from contextvars import ContextVar
from dataclasses import dataclass, field, replace
from typing import Mapping, Sequence

from rich import box
from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text


def styled(text: object, style: str) -> Text:
    """``text`` in ``style``: the one way orch colours a cell or a line, never markup in a
    string (which would read an AWS string's ``[...]`` as a tag)."""
    return Text(str(text), style=style)


def grid(title: str | None = None) -> Table:
    """orch's one table style: a rule under the header, two spaces between columns, no edges,
    so 80 columns hold what they can."""
    return Table(title=title, title_justify="left", box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, collapse_padding=True)


# -- fitting a table to the terminal ----------------------------------------------------

GAP = 2  # what grid() puts between two columns
# `-o wide` (kubectl's word): every column, prose wrapped at words instead of cut; rows may
# take several lines. Set once per command by the global options (orchestrator.cli.common).
WIDE: ContextVar[bool] = ContextVar("wide", default=False)
ELLIPSIS = "…"
Cell = str | Text  # a str is plain text, shown as given (AWS strings hold brackets); style with styled()


@dataclass(frozen=True, slots=True)
class Column:
    """One column of a table and how it gives way on a narrow terminal.

    ``drop``: the order in which columns leave when the terminal is too narrow (1 first);
    None: never left out. ``cut``: prose (a reason, a detail, a list of ids) that may be
    shortened at a word with ``…`` to the width left over, never below ``min_width`` (below
    that it is left out in its turn); any other column (ids, times, counts, status words)
    is shown whole or not at all. ``right``: numbers align right.
    """

    key: str
    heading: str
    drop: int | None = None
    cut: bool = False
    min_width: int = 12
    right: bool = False


@dataclass(frozen=True, slots=True)
class Fit:
    """What ``fit_columns`` chose: the columns shown with their widths, and those left out."""

    shown: tuple[Column, ...]
    dropped: tuple[Column, ...]
    widths: Mapping[str, int] = field(default_factory=dict)
    gap: int = GAP

    @property
    def total(self) -> int:
        return sum(self.widths[c.key] for c in self.shown) + self.gap * max(0, len(self.shown) - 1)


def plain(cell: Cell | int) -> str:
    return cell.plain if isinstance(cell, Text) else str(cell)


def cell_width(cell: Cell | int) -> int:
    """The longest line's width (a multi-line cell needs its longest line, not its length)."""
    return max((Text(line).cell_len for line in plain(cell).split("\n")), default=0)


def fit_columns(columns: Sequence[Column], rows: Sequence[Mapping[str, Cell | int]], width: int, gap: int = GAP) -> Fit:
    """Columns leave in their ``drop`` order until the rest fit ``width``; then the prose
    columns share what is left, each up to its longest line.

    A column needs its longest line (heading or cell); a prose one at most ``min_width``.
    When even the columns never left out do not fit, they are all shown and the table is
    wider than ``width``: cutting an id would be worse than a terminal that wraps.
    """
    natural = {c.key: max([cell_width(c.heading), *(cell_width(r.get(c.key, "")) for r in rows)]) for c in columns}
    need = {c.key: min(natural[c.key], c.min_width) if c.cut else natural[c.key] for c in columns}

    def total(shown: Sequence[Column]) -> int:
        return sum(need[c.key] for c in shown) + gap * max(0, len(shown) - 1)

    shown = list(columns)
    dropped: list[Column] = []
    for column in sorted((c for c in columns if c.drop is not None), key=lambda c: c.drop or 0):
        if total(shown) <= width:
            break
        shown.remove(column)
        dropped.append(column)
    widths = {c.key: need[c.key] for c in shown}
    spare = width - total(shown)
    growing = [c for c in shown if c.cut and widths[c.key] < natural[c.key]]
    while spare > 0 and growing:  # share alike, the narrowest filled first, none past its longest line
        share = max(1, spare // len(growing))
        for c in list(growing):
            add = min(share, natural[c.key] - widths[c.key], spare)
            widths[c.key] += add
            spare -= add
            if widths[c.key] >= natural[c.key]:
                growing.remove(c)
            if spare <= 0:
                break
    return Fit(tuple(shown), tuple(dropped), widths, gap)


def clip(cell: Cell, width: int) -> Text:
    """Each line of a prose cell shortened to ``width``: at the last space that keeps half
    of it, else mid-word, with ``…``; styles kept."""
    text = cell.copy() if isinstance(cell, Text) else Text(cell)
    lines = text.split("\n")
    out = Text()
    for n, line in enumerate(lines):
        if n:
            out.append("\n")
        if line.cell_len > width:
            keep = max(0, width - len(ELLIPSIS))
            space = line.plain.rfind(" ", 0, keep + 1)
            end = space if space >= keep // 2 else keep
            line = line[: end].copy()
            line.rstrip()
            line.append(ELLIPSIS)
        out.append_text(line)
    return out


def fitted_table(title: str | None, columns: Sequence[Column], rows: Sequence[Mapping[str, Cell]], width: int,
                 notes: Sequence[str] = (), wide: bool | None = None) -> RenderableType:
    """A grid() of ``rows`` fitted to ``width`` by ``fit_columns``, each row on one line
    (but for cells of several lines); the caption names what was left out or cut.

    ``wide`` (default: ``-o wide``): no column left out and prose wrapped at words, never
    cut, so every reason is read whole at any width."""
    if WIDE.get() if wide is None else wide:
        return _wide_table(title, columns, rows, width, notes)
    fit = fit_columns(columns, rows, width)
    table = grid(None)
    if title is not None:
        table.title = Text(title)  # plain: a title may name an AWS string
    for c in fit.shown:
        table.add_column(c.heading, width=fit.widths[c.key], no_wrap=True, overflow="ellipsis", justify="right" if c.right else "left")
    cut = False
    for row in rows:
        cells: list[RenderableType] = []
        for c in fit.shown:
            value = row.get(c.key, "-")
            if c.cut and cell_width(value) > fit.widths[c.key]:
                cut = True
                cells.append(clip(value, fit.widths[c.key]))
            else:
                cells.append(value if isinstance(value, Text) else Text(str(value)))
        table.add_row(*cells)
    caption = list(notes)
    if fit.dropped or cut:
        said = [f"left out to fit {width} columns: {', '.join(c.heading for c in fit.dropped)}"] if fit.dropped else []
        said += [f"{ELLIPSIS}: text cut to fit" + ("" if fit.dropped else f" {width} columns")] if cut else []
        caption.append("; ".join(said) + " (-o wide shows it all)")
    if caption:
        table.caption = Text("\n".join(caption))
        table.caption_justify = "left"
    return table


BLOCK_SHORT = 24  # in a block, a cut column never longer than this rides on the first line
WIDE_PROSE_MIN = 12  # below this a wrapped reason reads a word a line: each row becomes a block instead


def _wide_table(title: str | None, columns: Sequence[Column], rows: Sequence[Mapping[str, Cell]], width: int,
                notes: Sequence[str]) -> RenderableType:
    """Every column; ids and words whole, prose wrapped at spaces in what is left. When the
    columns that are never cut leave too little for the prose, each row is a block instead
    (``_blocks``: the short fields on a line, the prose under it), still every field whole."""
    natural = {c.key: max([cell_width(c.heading), *(cell_width(r.get(c.key, "")) for r in rows)]) for c in columns}
    prose = [c for c in columns if c.cut]
    fixed = sum(natural[c.key] for c in columns if not c.cut) + GAP * max(0, len(columns) - 1)
    if prose and width - fixed < WIDE_PROSE_MIN * len(prose):
        return _blocks(title, columns, rows, width, notes)
    share = max(WIDE_PROSE_MIN, (width - fixed) // max(1, len(prose)))
    fit = fit_columns([replace(c, drop=None, min_width=min(c.min_width, share)) for c in columns], rows, width)
    table = grid(title)
    for c in fit.shown:
        table.add_column(c.heading, width=fit.widths[c.key], no_wrap=not c.cut, overflow="fold" if c.cut else "ellipsis",
                         justify="right" if c.right else "left")
    for row in rows:
        table.add_row(*(row.get(c.key, "-") for c in fit.shown))
    if notes:
        table.caption = "\n".join(notes)
        table.caption_justify = "left"
    return table


def _blocks(title: str | None, columns: Sequence[Column], rows: Sequence[Mapping[str, Cell]], width: int,
            notes: Sequence[str]) -> RenderableType:
    """A row as `git log` shows a commit: the short fields on one line (ids, times, words
    whole), then each prose field under it, indented and wrapped at words."""
    # A cut column whose every value is short (a name) stays on the first line.
    prose = [c for c in columns if c.cut and max((cell_width(r.get(c.key, "")) for r in rows), default=0) > BLOCK_SHORT]
    short = [c for c in columns if c not in prose]
    label = max((cell_width(c.heading) for c in prose), default=0) + 1
    parts: list[RenderableType] = [Text(title, style="bold")] if title else []
    for row in rows:
        head = Text("  ").join(Text(v) if isinstance(v := row.get(c.key, "-"), str) else v for c in short)
        parts.append(head)
        block = Table.grid(padding=(0, 1))
        block.add_column(width=label + 2, no_wrap=True, style="dim")
        block.add_column(width=max(10, width - label - 3), overflow="fold")
        for c in prose:
            block.add_row(f"  {c.heading}:", row.get(c.key, "-"))
        parts.append(block)
    parts.extend(Text(note) for note in notes)
    return Group(*parts)

"""`orch top`'s keys, as htop and k9s taught them: what a key press does to what is shown. Pure.

``split_keys`` turns what the terminal sent (several keys may come in one read; arrows and
page keys are escape sequences) into key names; ``press`` turns the screen's state and one
key into the next state. The loop in orchestrator.cli.top_cmd only reads, calls these and
draws, so every key is table-tested without a terminal.

Keys: ``j``/``k`` or arrows move, PgUp/PgDn (or space/``b``) page, ``g``/``G`` (Home/End)
first and last, ``/`` filters by part of a name, id, AZ or verdict (Enter keeps it, Esc
drops it), Enter opens the selected instance, ``?`` help, ``s`` cycles the sort, ``u``
unhealthy only, ``r`` refreshes now, ``+``/``-`` the refresh interval, ``q`` quits (or
leaves the help or the instance screen, as Esc does).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, replace

from orchestrator.cli.top_layout import View

SEQUENCES = {
    "\x1b[A": "up", "\x1bOA": "up", "\x1b[B": "down", "\x1bOB": "down",
    "\x1b[5~": "pgup", "\x1b[6~": "pgdn", "\x1b[H": "home", "\x1b[1~": "home", "\x1bOH": "home",
    "\x1b[F": "end", "\x1b[4~": "end", "\x1bOF": "end", "\x1b[C": "right", "\x1b[D": "left",
}
INTERVALS = (1.0, 2.0, 5.0, 10.0, 15.0, 30.0, 60.0, 120.0, 300.0)


def split_keys(data: str) -> list[str]:
    """Key names from one read: escape sequences whole, Enter as "enter", a lone Esc as "esc"."""
    keys: list[str] = []
    i = 0
    while i < len(data):
        ch = data[i]
        if ch == "\x1b":
            match = next((seq for seq in SEQUENCES if data.startswith(seq, i)), None)
            if match is not None:
                keys.append(SEQUENCES[match])
                i += len(match)
                continue
            if data.startswith("\x1b[", i):  # a sequence we do not use: skip it whole
                j = i + 2
                while j < len(data) and not ("@" <= data[j] <= "~"):
                    j += 1
                i = j + 1
                continue
            keys.append("esc")
        elif ch in "\r\n":
            keys.append("enter")
        elif ch in "\x7f\x08":
            keys.append("backspace")
        elif ch == "\x03":
            keys.append("ctrl-c")
        else:
            keys.append(ch)
        i += 1
    return keys


class Screen(str, enum.Enum):
    TABLE = "table"
    FILTER = "filter"  # typing after `/`
    HELP = "help"
    DETAIL = "detail"  # one instance, opened with Enter


class Do(str, enum.Enum):
    """What the loop must do besides drawing."""

    NOTHING = "nothing"
    QUIT = "quit"
    REFRESH = "refresh"  # scan now
    OPEN = "open"  # read the selected instance's actions and draw its screen


@dataclass(frozen=True, slots=True)
class State:
    view: View
    screen: Screen = Screen.TABLE
    typed: str = ""  # the filter being typed
    page: int = 10  # rows on one screen, for PgUp/PgDn (the loop sets it from the terminal)


def press(state: State, key: str, count: int) -> tuple[State, Do]:
    """The next state after ``key``; ``count``: rows the table shows now (for moving)."""
    view = state.view
    if key == "ctrl-c":
        return state, Do.QUIT
    if state.screen is Screen.FILTER:
        if key == "enter":
            return replace(state, screen=Screen.TABLE, view=replace(view, needle=state.typed.strip(), selected=0, offset=0)), Do.NOTHING
        if key == "esc":
            return replace(state, screen=Screen.TABLE, typed=view.needle), Do.NOTHING
        if key == "backspace":
            return replace(state, typed=state.typed[:-1]), Do.NOTHING
        if len(key) == 1 and key.isprintable():
            return replace(state, typed=state.typed + key), Do.NOTHING
        return state, Do.NOTHING
    if state.screen in (Screen.HELP, Screen.DETAIL):
        if key in ("q", "esc", "enter", "?", "left", "backspace"):
            return replace(state, screen=Screen.TABLE), Do.NOTHING
        return state, Do.NOTHING
    moves = {"j": 1, "down": 1, "k": -1, "up": -1, "pgdn": state.page, " ": state.page, "pgup": -state.page, "b": -state.page}
    if key in moves:
        return replace(state, view=replace(view, selected=max(0, min(count - 1, view.selected + moves[key])))), Do.NOTHING
    if key in ("g", "home"):
        return replace(state, view=replace(view, selected=0)), Do.NOTHING
    if key in ("G", "end"):
        return replace(state, view=replace(view, selected=max(0, count - 1))), Do.NOTHING
    if key == "/":
        return replace(state, screen=Screen.FILTER, typed=view.needle), Do.NOTHING
    if key == "esc" and view.needle:
        return replace(state, view=replace(view, needle="", selected=0, offset=0)), Do.NOTHING
    if key in ("enter", "right") and count:
        return replace(state, screen=Screen.DETAIL), Do.OPEN
    if key == "?":
        return replace(state, screen=Screen.HELP), Do.NOTHING
    if key in ("s", "S"):
        return replace(state, view=replace(view, sort=view.sort.next())), Do.NOTHING
    if key in ("u", "U"):
        return replace(state, view=replace(view, only=view.only.toggled(), selected=0, offset=0)), Do.NOTHING
    if key in ("r", "R"):
        return state, Do.REFRESH
    if key in ("+", "=", "-"):
        return replace(state, view=replace(view, interval=next_interval(view.interval, key != "-"))), Do.NOTHING
    if key in ("q", "Q"):
        return state, Do.QUIT
    return state, Do.NOTHING


def next_interval(current: float, longer: bool) -> float:
    """The next step of INTERVALS up or down from ``current``."""
    if longer:
        return next((i for i in INTERVALS if i > current), INTERVALS[-1])
    return next((i for i in reversed(INTERVALS) if i < current), INTERVALS[0])

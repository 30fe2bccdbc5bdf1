"""`orch top`'s keys (orchestrator.cli.top_keys): what each press does, without a terminal."""

from __future__ import annotations

from dataclasses import replace

import pytest

from orchestrator.cli.top_keys import Do, Screen, State, next_interval, press, split_keys
from orchestrator.cli.top_layout import View, frame, plain_text
from orchestrator.cli.top_rows import Only, SortKey
from orchestrator.model import VerdictKind
from tests.builders import NOW
from tests.unit.test_top_layout import row

V = VerdictKind
FLEET = [row(n, V.UNREACHABLE if n % 7 == 0 else V.HEALTHY) for n in range(1, 41)]


@pytest.mark.parametrize("data,keys", [
    ("jjk", ["j", "j", "k"]),
    ("\x1b[A\x1b[B", ["up", "down"]),
    ("\x1b[5~\x1b[6~", ["pgup", "pgdn"]),
    ("\x1bOH\x1b[F", ["home", "end"]),
    ("/cra\r", ["/", "c", "r", "a", "enter"]),
    ("\x1b", ["esc"]),
    ("\x1b[200~x", ["x"]),  # a sequence orch does not use is skipped whole
    ("G?", ["G", "?"]),  # case kept: G is not g
    ("\x7f\x03", ["backspace", "ctrl-c"]),
])
def test_split_keys(data, keys):
    assert split_keys(data) == keys


def run(keys: list[str], state: State | None = None, count: int = 40) -> tuple[State, list[Do]]:
    state = state or State(View(now=NOW, live=True), page=10)
    done = []
    for key in keys:
        state, do = press(state, key, count)
        done.append(do)
    return state, done


def test_moving_paging_and_the_ends():
    state, _ = run(["j", "j", "down", "k"])
    assert state.view.selected == 2
    assert run(["pgdn", "pgdn", "pgup"])[0].view.selected == 10
    assert run(["G"])[0].view.selected == 39 and run(["G", "g"])[0].view.selected == 0
    assert run(["k", "up"])[0].view.selected == 0  # never above the first
    assert run(["end", "j", "pgdn"])[0].view.selected == 39  # nor below the last


def test_the_selected_row_is_always_on_screen_and_highlighted():
    state, _ = run(["pgdn"] * 3 + ["j"] * 5)
    lines = frame(FLEET, state.view, 80, 24)
    text = plain_text(lines)
    rows = [line for line in text if line.startswith("i-")]
    assert len(rows) == 19 and "rows " in text[0]
    chosen = [line for line in lines if any("reverse" in style for _, style in line)]
    assert len(chosen) == 1
    assert "".join(t for t, _ in chosen[0]).split()[0] == f"i-{36:017x}"  # the 36th of worst first: healthy ones by name


def test_filter_typed_kept_and_dropped():
    state, _ = run(["/", "c", "r", "a", "w", "l", "e", "r", "-", "1", "enter"])
    assert state.screen is Screen.TABLE and state.view.needle == "crawler-1"
    rows = [line for line in plain_text(frame(FLEET, state.view, 80, 40)) if line.startswith("i-")]
    assert sorted(r.split()[1] for r in rows) == sorted(["crawler-1"] + [f"crawler-{n}" for n in range(10, 20)])
    assert "/crawler-1" in plain_text(frame(FLEET, state.view, 80, 40))[0]
    by_verdict, _ = run(["/", *"unreach", "enter"])
    shown = [line for line in plain_text(frame(FLEET, by_verdict.view, 100, 40)) if line.startswith("i-")]
    assert len(shown) == 5 and all(" unreachable " in line for line in shown)
    cancelled, _ = run(["/", "x", "esc"], state)
    assert cancelled.view.needle == "crawler-1" and cancelled.screen is Screen.TABLE
    cleared, _ = run(["esc"], state)
    assert cleared.view.needle == ""
    backspaced, _ = run(["/", "backspace", "backspace", "enter"], state)
    assert backspaced.view.needle == "crawler"


def test_enter_opens_help_and_q_come_back():
    state, done = run(["j", "enter"])
    assert state.screen is Screen.DETAIL and done[-1] is Do.OPEN
    assert run(["q"], state)[0].screen is Screen.TABLE  # q leaves the instance, not orch top
    helped, _ = run(["?"])
    assert helped.screen is Screen.HELP and run(["esc"], helped)[0].screen is Screen.TABLE
    assert run(["enter"], count=0)[1] == [Do.NOTHING]  # nothing to open
    assert run(["q"])[1] == [Do.QUIT] and run(["ctrl-c"], helped)[1] == [Do.QUIT]


def test_sort_unhealthy_refresh_and_interval():
    state, done = run(["s", "s", "u", "r", "+", "+"], State(View(now=NOW, live=True, interval=5.0)))
    assert state.view.sort is SortKey.NAME and state.view.only is Only.UNHEALTHY and Do.REFRESH in done
    assert state.view.interval == 15.0
    assert next_interval(1.0, False) == 1.0 and next_interval(300.0, True) == 300.0 and next_interval(7.0, False) == 5.0


def test_name_sort_is_natural():
    view = replace(View(now=NOW), sort=SortKey.NAME)
    names = [line.split()[1] for line in plain_text(frame(FLEET, view, 80)) if line.startswith("i-")]
    assert names[:3] == ["crawler-1", "crawler-2", "crawler-3"] and names.index("crawler-9") < names.index("crawler-10")

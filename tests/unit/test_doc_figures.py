"""Every figure in the README and docs/ is what its command prints now (issue 21).

A figure is the block after ``<!-- figures: COMMAND -->`` (orchestrator/bench/doc_figures.py);
``scripts/figures`` makes them all again. Here the cheap ones are re-run whole, and each
expensive table (minutes of simulated days) has one row re-run: the same command on one
scenario, whose row must be in the page verbatim. Every marker in the docs is one or the
other, so a new figure cannot go unchecked. Each re-run takes a few seconds.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from orchestrator.bench import doc_figures
from orchestrator.bench.doc_figures import Command, FigureError, ScalingRun, figures, made, narrowed, simulate_table
from tests.docs_text import ROOT, pages

# Figures cheap enough to re-run whole: (page, command).
WHOLE = {("guard.md", "orch simulate --scenario chronic-leak-guard --hours 24")}
# Pages with one expensive table, and the row re-run here: a cheap scenario (about 9 s of
# simulated days on a loaded 2-core machine) whose figures move when the policy does
# (actions, a quarantine, SSH up beside the baselines).
SLICED = {"simulate.md": "flapping", "evidence.md": "slow-leak"}


def marked() -> list[doc_figures.Figure]:
    return [f for page in pages() for f in figures(page)]


def test_every_figure_is_rerun_here_whole_or_by_a_row():
    found = marked()
    assert found, "no <!-- figures: ... --> marker in the README or docs/"
    whole = {(f.page.name, f.command) for f in found if (f.page.name, f.command) in WHOLE}
    tables = {}
    for figure in found:
        if (figure.page.name, figure.command) in WHOLE:
            continue
        assert figure.page.name in SLICED and Command.parse(figure.command).table, (
            f"{figure.page.name}: '{figure.command}' is re-run by no test: add it to WHOLE (cheap) or SLICED (a table) here")
        tables.setdefault(figure.page.name, []).append(figure.command)
    assert whole == WHOLE, "a figure this test re-runs is no longer in the docs"
    assert {page: len(commands) for page, commands in tables.items()} == {page: 1 for page in SLICED}


def test_every_figure_says_its_command_where_a_reader_sees_it():
    """The marker is an HTML comment, invisible on a rendered page: the text says the command too."""
    for figure in marked():
        visible = " ".join(doc_figures.MARKER.sub("", figure.page.read_text()).split())
        assert f"`{figure.command}`" in visible, f"{figure.page.name} does not say `{figure.command}` outside its marker"


@pytest.mark.parametrize(("page", "command"), sorted(WHOLE))
def test_a_cheap_figure_is_what_its_command_prints(page: str, command: str):
    (figure,) = [f for f in figures(ROOT / "docs" / page) if f.command == command]
    assert made(command) == figure.text, f"docs/{page} is stale; make it again with: scripts/figures docs/{page}"


@pytest.mark.parametrize(("page", "scenario"), sorted(SLICED.items()))
def test_a_row_of_each_expensive_table_is_what_its_command_prints(page: str, scenario: str):
    (figure,) = [f for f in figures(ROOT / "docs" / page) if Command.parse(f.command).table]
    head, rule, row = made(narrowed(figure.command, scenario)).splitlines()
    lines = figure.text.splitlines()
    assert lines[:2] == [head, rule]
    assert row in lines, f"docs/{page}'s {scenario} row is stale; make the table again with: scripts/figures docs/{page}"


def test_the_scaling_simulations_are_what_their_runs_print():
    """One of docs/scaling/simulate.json's runs again (K = 6, seed 0, the slow leak): the rows the page's tables come from."""
    stored = json.loads((ROOT / "docs" / "scaling" / "simulate.json").read_text())
    assert ScalingRun(6, 0, ("slow-leak",)).rows() == [r for r in stored if (r["scenario"], r["full_read_every"], r["seed"]) == ("slow-leak", 6, 0)]
    runs = doc_figures.scaling_runs()
    assert {(r["scenario"], r["full_read_every"], r["seed"]) for r in stored} == {
        (s, run.full_read_every, run.seed) for run in runs for s in run.scenarios}


def test_the_scaling_page_is_rendered_from_its_data_in_place():
    """scripts/figures rewrites only docs/scaling.md's marked tables: from the stored data, the page stays as it is."""
    text = (ROOT / "docs" / "scaling.md").read_text()
    stored = json.loads((ROOT / "docs" / "scaling" / "simulate.json").read_text())
    assert doc_figures.scaling_page(text, ROOT / "docs" / "scaling" / "bench-2500.json", stored) == text
    changed = [dict(r, availability=0.5) if r["scenario"] == "slow-leak" else r for r in stored]
    rewritten = doc_figures.scaling_page(text, ROOT / "docs" / "scaling" / "bench-2500.json", changed)
    assert rewritten != text and "| slow-leak | 50.0%" in rewritten
    assert rewritten.split("<!-- scaling:simulate -->")[0] == text.split("<!-- scaling:simulate -->")[0]


def test_narrowed_keeps_everything_but_the_scenarios():
    command = "orch simulate --scenario all --scenario=x --hours 24 --seeds 3 --baselines -o json | python -m orchestrator.bench.doc_figures table"
    assert narrowed(command, "flapping") == (
        "orch simulate --scenario flapping --hours 24 --seeds 3 --baselines -o json | python -m orchestrator.bench.doc_figures table")
    assert narrowed("COLUMNS=100 orch simulate --hours 4", "acl") == "COLUMNS=100 orch simulate --scenario acl --hours 4"
    with pytest.raises(FigureError):
        narrowed("orch scan", "acl")


@pytest.mark.parametrize("command", ["rm -rf /", "orch scan | sh", "FOO=1", "python -m orchestrator.bench.doc_figures table"])
def test_a_marker_that_is_not_an_orch_command_is_refused(command: str):
    with pytest.raises(FigureError):
        Command.parse(command)


def _row(scenario: str, policy: str, availability: float, **more: object) -> dict[str, object]:
    return {"scenario": scenario, "policy": policy, "availability": availability, "actions": {}, "quarantined": 0,
            "violations": [], "not_judged": None, "conditions": "boot 1 min", **more}


def test_the_table_is_one_row_a_scenario_with_orch_first_and_its_verdict():
    document = [
        _row("a", "orch", 0.9583, actions={"reboot": 368}, conditions="boot 1-4 min, metric delay 1-3 min, 2% of points lost, "
             "agent on 50% of boxes, agent silent from 97.5%"),
        _row("a", "nobody", 0.0128), _row("a", "reactive", 0.8279), _row("a", "oracle", 0.9699),
        _row("b", "orch", 0.4, actions={"reboot": 1, "stop-start": 1}, quarantined=1, violations=["SSH up 40.0%", "1 | 2"],
             conditions="boot 8-10 min"),
        _row("b", "nobody", 0.3), _row("b", "reactive", 0.5), _row("b", "oracle", 0.6),
        _row("c", "orch", 1.0, not_judged="2 h of 24"), _row("c", "nobody", 1.0), _row("c", "reactive", 1.0), _row("c", "oracle", 1.0),
    ]
    assert simulate_table(document).splitlines() == [
        "| scenario | conditions | orch | reactive | oracle | nobody | orch actions | quar. | expectation |",
        "| --- | --- | ---: | ---: | ---: | ---: | --- | ---: | --- |",
        "| a | field, agent on 50% of boxes | **95.8%** | 82.8% | 97.0% | 1.3% | 368 reboot | 0 | met |",
        "| b | boot 8-10 min | **40.0%** | 50.0% | 60.0% | 30.0% | 1 reboot, 1 stop-start | 1 | SSH up 40.0%; 1 \\| 2 |",
        "| c | clean (boot 1 min) | **100.0%** | 100.0% | 100.0% | 100.0% | 0 | 0 | met so far (2 h of 24) |",
    ]


LIST = "orch simulate --list -o json --query '[0].scenario'"


def test_check_finds_a_drifted_figure_and_refresh_writes_what_the_command_prints(tmp_path: Path):
    page = tmp_path / "page.md"
    stale = f"# A page\n\n<!-- figures: {LIST} -->\n```text\n\"old\"\n```\n\nafter\n\n<!-- figures: COLUMNS=100 {LIST} -->\n\nend\n"
    page.write_text(stale)
    assert doc_figures.refresh(page, check=True) == [f"page.md: {LIST}", f"page.md: COLUMNS=100 {LIST}"]
    assert page.read_text() == stale  # --check writes nothing
    assert len(doc_figures.refresh(page, check=False)) == 2
    fresh = '```text\n"chronic-leak"\n```'
    assert page.read_text() == f"# A page\n\n<!-- figures: {LIST} -->\n{fresh}\n\nafter\n\n<!-- figures: COLUMNS=100 {LIST} -->\n{fresh}\n\nend\n"
    assert [f.text for f in figures(page)] == [fresh, fresh]  # what --check compares next time


def test_a_command_that_fails_is_an_error_not_a_figure(tmp_path: Path):
    page = tmp_path / "page.md"
    page.write_text("<!-- figures: orch simulate --scenario no-such-fleet -->\n```text\nkept\n```\n")
    with pytest.raises(FigureError, match="exited 2"):
        doc_figures.refresh(page, check=False)
    assert "kept" in page.read_text()


def test_the_callers_settings_do_not_reach_the_figure(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    """A figure is what the defaults print: the person running scripts/figures may have ORCH_* set or a config file."""
    monkeypatch.setenv("ORCH_SWEEP_INTERVAL_MINUTES", "10")
    monkeypatch.setenv("COLUMNS", "40")
    out = doc_figures.run_orch(["simulate", "--scenario", "plateau", "--hours", "0.5"])
    assert out.startswith("0.5 simulated hours, seed 0, sweeps every 5 min")
    assert max(len(line) for line in out.splitlines()) > 40


def test_the_markers_in_the_docs_parse_and_name_a_block():
    for figure in marked():
        if Command.parse(figure.command).table:
            assert re.match(r"\| scenario \|", figure.text), f"{figure.page.name}: no table after '{figure.command}'"
        else:
            assert figure.text.startswith("```text\n") and figure.text.endswith("\n```")

"""The docs' figures, made again by the command written beside each (``scripts/figures``).

Issue 21 found the README's simulate table no longer what ``orch simulate`` printed: a
figure copied by hand drifts as the code moves. So a figure in README.md or docs/*.md is
a block with the command that makes it in a marker just before it:

    <!-- figures: orch simulate --scenario chronic-leak-guard --hours 24 -->
    ```text
    what that command prints (each line's trailing spaces dropped)
    ```

or a markdown table made from the command's JSON by this module (the marker is a shell
pipeline a reader can paste; here its second half runs in-process):

    <!-- figures: orch simulate --scenario all --seeds 3 --baselines -o json | python -m orchestrator.bench.doc_figures table -->
    | scenario | conditions | orch | ... |

``scripts/figures`` re-runs every marked command and rewrites its block (``--check``:
rewrites nothing, exits 1 when a block is not what its command prints now), and makes
docs/scaling/simulate.json again from the ``orch simulate`` runs docs/scaling.md names,
with the page's tables from it (``orchestrator.bench.scaling``). The test suite re-runs the
cheap figures whole and one row of each expensive table (tests/unit/test_doc_figures.py),
so no figure drifts unseen. Benchmarks (docs/performance*.md) are timings of one machine:
not figures of this kind; their pages say the command, the machine and the date.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orchestrator
from orchestrator.bench import safe_cadence, scale_model, scaling
from orchestrator.simulate.conditions import FIELD, Conditions

ROOT = Path(__file__).resolve().parents[2]
TABLE = "python -m orchestrator.bench.doc_figures table"  # the pipeline's second half: JSON in, markdown out
MARKER = re.compile(r"^<!-- figures: (?P<command>.+?) -->\n", re.M)
SCALING_MARKER = re.compile(r"^<!-- scaling:(?P<name>[a-z]+) -->\n", re.M)
ASSIGNMENT = re.compile(r"^[A-Z_][A-Z0-9_]*=")
# Run orch with this process's interpreter and package (a worktree's, under PYTHONPATH), not
# whichever `orch` is first on PATH.
ORCH = [sys.executable, "-c", "from orchestrator.cli import main; main()"]
# The caller's settings and terminal are not the figure's: a figure is what the defaults print.
DROPPED_ENV = ("ORCH_", "AWS_")
DROPPED_NAMES = frozenset({"COLUMNS", "LINES", "FORCE_COLOR", "TERM"})
# Columns of SSH up: orch, then the baselines that bound it (reactive below, oracle above), then the rest.
POLICY_ORDER = ("orch", "reactive", "oracle", "nobody", "naive")


class FigureError(Exception):
    """A marker that cannot be run as written, or a command that failed (not a figure)."""


@dataclass(frozen=True)
class Figure:
    """One marked block of a page: its command, and the block as the page has it."""

    page: Path
    command: str
    start: int  # the block's first character in the page's text
    end: int  # one past its last (the newline after it is the page's, not the block's)
    text: str


def figures(page: Path, text: str | None = None) -> list[Figure]:
    """Every marked block of ``page``: a ``` block right after the marker, else the lines up to the first blank one."""
    text = page.read_text() if text is None else text
    found = []
    for match in MARKER.finditer(text):
        start = match.end()
        if text.startswith("```", start):
            close = text.find("\n```", start)
            if close < 0:
                raise FigureError(f"{page.name}: the ``` block after '{match.group('command')}' is never closed")
            end = close + len("\n```")
        elif text.startswith("\n", start) or start == len(text):
            end = start  # a new marker with no block yet: scripts/figures writes it
        else:
            blank = text.find("\n\n", start)
            end = len(text.rstrip("\n")) if blank < 0 else blank
        found.append(Figure(page, match.group("command"), start, end, text[start:end]))
    return found


@dataclass(frozen=True)
class Command:
    """A marker's command taken apart: ``[NAME=VALUE ...] orch ARGS [| python -m orchestrator.bench.doc_figures table]``."""

    env: dict[str, str]
    args: list[str]  # orch's, without "orch"
    table: bool

    @classmethod
    def parse(cls, command: str) -> Command:
        head, bar, tail = command.partition(" | ")
        if bar and tail.strip() != TABLE:
            raise FigureError(f"'{command}': the only pipe a figure takes is into '{TABLE}'")
        words = shlex.split(head)
        env = {}
        while words and ASSIGNMENT.match(words[0]):
            name, _, value = words.pop(0).partition("=")
            env[name] = value
        if not words or words[0] != "orch":
            raise FigureError(f"'{command}' is not an orch command (a figure is what orch prints)")
        return cls(env, words[1:], bool(bar))

    def __str__(self) -> str:
        words = [f"{k}={shlex.quote(v)}" for k, v in self.env.items()] + ["orch", *map(shlex.quote, self.args)]
        return " ".join(words) + (f" | {TABLE}" if self.table else "")


def narrowed(command: str, scenario: str) -> str:
    """The same ``orch simulate`` command on one scenario (a cheap row of an expensive table): its
    ``--scenario`` options replaced by ``--scenario SCENARIO``."""
    parsed = Command.parse(command)
    if parsed.args[:1] != ["simulate"]:
        raise FigureError(f"'{command}' is not orch simulate: it has no scenarios to narrow")
    kept, words = [], iter(parsed.args[1:])
    for word in words:
        if word == "--scenario":
            next(words, None)
        elif not word.startswith("--scenario="):
            kept.append(word)
    return str(Command(parsed.env, ["simulate", "--scenario", scenario, *kept], parsed.table))


def run_orch(args: Sequence[str], env: Mapping[str, str] | None = None, files: Mapping[str, str] | None = None) -> str:
    """What ``orch ARGS`` prints on stdout, run as a reader would on a machine of their own.

    A fresh process in an empty temporary directory (``files`` written into it first, for
    ``--config k6.toml``) with none of the caller's ``ORCH_*``, ``AWS_*``, terminal size or
    per-user config file. Exit 1 is a result (a scenario's expectation not met is a figure
    too); any other exit, or exit 1 with nothing printed, is an error.
    """
    with tempfile.TemporaryDirectory(prefix="orch-figures-") as tmp:
        for name, body in (files or {}).items():
            (Path(tmp) / name).write_text(body)
        clean = {k: v for k, v in os.environ.items() if not k.startswith(DROPPED_ENV) and k not in DROPPED_NAMES}
        package_root = str(Path(orchestrator.__file__).resolve().parents[1])
        clean.update(NO_COLOR="1", XDG_CONFIG_HOME=tmp,
                     PYTHONPATH=os.pathsep.join(p for p in (package_root, os.environ.get("PYTHONPATH", "")) if p), **(env or {}))
        done = subprocess.run([*ORCH, *args], cwd=tmp, env=clean, capture_output=True, text=True, check=False)
    if done.returncode not in (0, 1) or not done.stdout.strip():
        raise FigureError(f"orch {shlex.join(args)} exited {done.returncode}: {done.stderr.strip()[-2000:]}")
    return done.stdout


def made(command: str) -> str:
    """The block ``command`` makes now: its output in a ```text block, or the table from its JSON."""
    parsed = Command.parse(command)
    out = run_orch(parsed.args, parsed.env)
    if parsed.table:
        return simulate_table(json.loads(out))
    return "```text\n" + "\n".join(line.rstrip() for line in out.rstrip("\n").splitlines()) + "\n```"


def _percent(value: float) -> str:
    return f"{100 * value:.1f}%"


def conditions_label(described: str) -> str:
    """A scenario's conditions in a table cell: "clean (...)" for the box model's own, "field"
    plus what differs where most of the field's hold, else as ``orch simulate`` says them.

    The field conditions (boots of 1-4 minutes, points 1-3 minutes late, 1 in 50 lost, the
    agent starving at the top) are spelled out once in the page's text, not in every row.
    """
    if described == Conditions().describe():
        return f"clean ({described})"
    field = FIELD.describe().split(", ")
    parts = described.split(", ")
    if 2 * len([p for p in parts if p in field]) < len(field):
        return described
    return ", ".join(["field", *(p for p in parts if p not in field)])


def simulate_table(document: Sequence[Mapping[str, Any]]) -> str:
    """``orch simulate -o json`` as one row a scenario: SSH up by policy (orch's in bold), orch's actions, its verdict."""
    policies = sorted(dict.fromkeys(str(row["policy"]) for row in document),
                      key=lambda p: POLICY_ORDER.index(p) if p in POLICY_ORDER else len(POLICY_ORDER))
    by_scenario: dict[str, dict[str, Mapping[str, Any]]] = {}
    for row in document:
        by_scenario.setdefault(str(row["scenario"]), {})[str(row["policy"])] = row
    head = ["scenario", "conditions", *policies, "orch actions", "quar.", "expectation"]
    lines = ["| " + " | ".join(head) + " |", "| --- | --- | " + " | ".join("---:" for _ in policies) + " | --- | ---: | --- |"]
    for scenario, rows in by_scenario.items():
        orch = rows["orch"]
        ssh = [f"**{_percent(rows[p]['availability'])}**" if p == "orch" else _percent(rows[p]["availability"]) for p in policies]
        actions = ", ".join(f"{n} {kind}" for kind, n in orch["actions"].items()) or "0"
        if orch["violations"]:
            verdict = "; ".join(orch["violations"])
        elif orch.get("not_judged"):
            verdict = f"met so far ({orch['not_judged']})"
        else:
            verdict = "met"
        cells = [scenario, conditions_label(str(orch["conditions"])), *ssh, actions, str(orch["quarantined"]), verdict]
        lines.append("| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |")
    return "\n".join(lines)


# docs/scaling.md's simulations: each memory cadence K, the leaks over 6 seeds, the network faults over one.
SCALING_SEEDS = 6


@dataclass(frozen=True)
class ScalingRun:
    """One ``orch simulate`` run behind docs/scaling/simulate.json: a cadence, a seed, its scenarios."""

    full_read_every: int
    seed: int
    scenarios: tuple[str, ...]

    @property
    def config(self) -> tuple[str, str]:
        """The TOML file the run reads (its name, its text)."""
        return f"k{self.full_read_every}.toml", f"[memory]\nfull_read_every = {self.full_read_every}\n"

    @property
    def args(self) -> list[str]:
        scenarios = [w for s in self.scenarios for w in ("--scenario", s)]
        return ["simulate", "--config", self.config[0], *scenarios, "--hours", "24", "--seed", str(self.seed), "-o", "json"]

    def rows(self) -> list[dict[str, Any]]:
        """The run's rows as simulate.json keeps them: tagged with K and the seed, the fields the page uses."""
        name, text = self.config
        return [{
            "scenario": row["scenario"],
            "policy": row["policy"],
            "full_read_every": self.full_read_every,
            "seed": self.seed,
            "hours": row["hours"],
            "instances": row["instances"],
            "sweeps": row["sweeps"],
            "availability": row["availability"],
            "wedged_box_hours": row["wedged_box_hours"],
            "actions_total": row["actions_total"],
            "actions_on_fine_boxes": row["actions_on_fine_boxes"],
            "get_metric_data_calls": row["api_calls"].get("cloudwatch.GetMetricData", 0),
            "violations": row["violations"],
        } for row in json.loads(run_orch(self.args, files={name: text}))]


def scaling_runs() -> list[ScalingRun]:
    runs = []
    for k in scaling.CADENCES:
        runs += [ScalingRun(k, seed, safe_cadence.LEAK_SCENARIOS) for seed in range(SCALING_SEEDS)]
        runs.append(ScalingRun(k, 0, safe_cadence.NO_ACTION_SCENARIOS))
    return runs


def scaling_simulations(runs: Sequence[ScalingRun], progress: Callable[[str], None] = lambda line: None) -> list[dict[str, Any]]:
    rows = []
    for run in runs:
        progress(f"docs/scaling/simulate.json: orch {shlex.join(run.args)}")
        rows += run.rows()
    return sorted(rows, key=lambda r: (r["scenario"], r["full_read_every"], r["seed"]))


def scaling_page(text: str, bench: Path, sims: list[dict[str, Any]]) -> str:
    """docs/scaling.md with every ``<!-- scaling:NAME -->`` block as orchestrator.bench.scaling renders it from the data."""
    tables = scaling.render(scale_model.Estate(), scale_model.Measured.from_bench(json.loads(bench.read_text())[0]), sims)
    out, at = [], 0
    for match in SCALING_MARKER.finditer(text):
        start = match.end()
        blank = text.find("\n\n", start)
        end = len(text.rstrip("\n")) if blank < 0 else blank
        out += [text[at:start], tables[match.group("name")]]
        at = end
    return "".join(out) + text[at:]


def pages(root: Path = ROOT) -> list[Path]:
    return [root / "README.md", *sorted((root / "docs").glob("*.md"))]


def refresh(page: Path, check: bool, progress: Callable[[str], None] = lambda line: None) -> list[str]:
    """Re-run each figure of ``page``; rewrite the page unless ``check``. Returns what drifted."""
    text = page.read_text()
    drifted, out, at = [], [], 0
    for figure in figures(page, text):
        progress(f"{page.name}: {figure.command}")
        now = made(figure.command)
        if now != figure.text:
            drifted.append(f"{page.name}: {figure.command}")
        out += [text[at:figure.start], now + ("\n" if figure.start == figure.end else "")]
        at = figure.end
    if drifted and not check:
        page.write_text("".join(out) + text[at:])
    return drifted


def refresh_scaling(root: Path, check: bool, progress: Callable[[str], None] = lambda line: None) -> list[str]:
    """docs/scaling/simulate.json run again, and docs/scaling.md's tables from it; rewritten unless ``check``."""
    data, doc = root / "docs" / "scaling" / "simulate.json", root / "docs" / "scaling.md"
    sims = scaling_simulations(scaling_runs(), progress)
    stored = json.loads(data.read_text())
    text = doc.read_text()
    page = scaling_page(text, root / "docs" / "scaling" / "bench-2500.json", sims)
    drifted = []
    if sims != stored:
        drifted.append(str(data.relative_to(root)))
    if page != text:
        drifted.append(f"{doc.name}: the scaling tables")
    if not check:
        data.write_text(json.dumps(sims, indent=1) + "\n")
        doc.write_text(page)
    return drifted


def main(argv: list[str]) -> int:
    """``table``: JSON on stdin, the markdown table out; else ``[--check] [PAGE ...]`` (scripts/figures)."""
    if argv[:1] == ["table"]:
        print(simulate_table(json.load(sys.stdin)))
        return 0
    check = "--check" in argv
    named = [Path(a).resolve() for a in argv if a != "--check"]
    if any(a.startswith("-") and a != "--check" for a in argv):
        print("usage: scripts/figures [--check] [PAGE ...]", file=sys.stderr)
        return 2
    chosen = named or pages()

    def say(line: str) -> None:
        print(line, file=sys.stderr, flush=True)

    try:
        drifted = [d for page in chosen for d in refresh(page, check, say)]
        if ROOT / "docs" / "scaling.md" in chosen:
            drifted += refresh_scaling(ROOT, check, say)
    except FigureError as error:
        say(f"error: {error}")
        return 2
    for line in drifted:
        print(("drifted: " if check else "rewrote: ") + line)
    return 1 if check and drifted else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))

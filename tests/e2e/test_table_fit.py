"""Every table command in a real pseudo-terminal at 80, 100 and 120 columns, on a sandbox
fleet healed once (history, actions in flight, state to show).

Each instance id is printed whole on one line, and the ids are those of the same
command's ``-o json``; each verdict and status word is whole (compared with the JSON);
times are never cut; a row with an id is one line (orchestrator.cli.tables.fit_columns
leaves columns out or cuts prose at a word instead of folding it).
"""

from __future__ import annotations

import json
import re
import subprocess
from typing import Any, Iterator

import pytest

from orchestrator.sandbox import FleetSpec, Sandbox
from orchestrator.sandbox.demo import exports, stage
from tests.e2e.sandbox_env import in_second_vpc, quick_probes
from tests.e2e.test_terminal_fit import ORCH, on_terminal

pytestmark = pytest.mark.e2e

INSTANCE_ID = re.compile(r"\bi-[0-9a-f]{8,17}")
CUT_TIME = re.compile(r"\b\d{4}-\d\d-\d\d\b(?! \d\d:\d\d)")
CONTINUATION = re.compile(r"^\s{2,}\S")


@pytest.fixture(scope="module")
def healed_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """A sandbox fleet after one `orch heal --yes`: history, actions in flight and state to show."""
    spec = FleetSpec(instances=24, hung=2, refusing=1, leaking=2, opt_out=1, unmanaged=2, seed=6, port=0)
    with Sandbox(in_second_vpc(spec)) as sb:
        env = exports(sb, stage(sb, tmp_path_factory.mktemp("healed-state")))
        env = {"PATH": "/usr/bin:/bin", "TERM": "xterm-256color", "HOME": str(tmp_path_factory.mktemp("healed-home")), **quick_probes(env)}
        assert as_json("heal --yes", env) is not None
        yield env


def as_json(command: str, env: dict[str, str]) -> Any:
    """The same command's ``-o json``, off a terminal."""
    done = subprocess.run(["bash", "-c", f"{ORCH} {command} -o json"], env=env, capture_output=True, text=True, timeout=300)
    assert done.stdout.strip(), f"{command} -o json printed nothing: {done.stderr[-1000:]}"
    return json.loads(done.stdout)


def objects(document: Any) -> Iterator[dict[str, Any]]:
    """Every JSON object with an instance_id, however deep."""
    if isinstance(document, dict):
        if isinstance(document.get("instance_id"), str):
            yield document
        for value in document.values():
            yield from objects(value)
    elif isinstance(document, list):
        for value in document:
            yield from objects(value)


def acted_on(env: dict[str, str]) -> str:
    return as_json("history", env)[0]["instance_id"]


# Tables whose prose is wrapped whole, a row on several lines: every word of these JSON fields is on screen.
WRAPPED = {"history": ("reason",)}

# (command, every id of the JSON is in the table, JSON fields whose words a row with that id shows whole)
TABLE_COMMANDS = [
    ("scan", True, ("verdict",)),
    ("heal --dry-run", True, ("verdict",)),
    ("status", True, ()),
    ("history", True, ("action", "status")),
    ("report", False, ()),
    ("explain {acted} --no-console", False, ()),
    ("top --once", True, ("verdict",)),
    ("doctor", False, ()),
    ("agent check", True, ("memory",)),
]


def check_table_output(command: str, lines: list[str], columns: int, document: Any, every_id: bool, words: tuple[str, ...]) -> None:
    too_wide = [line for line in lines if len(line.rstrip()) > columns]
    assert not too_wide, f"{command} at {columns} columns: {too_wide[:3]}"
    known = {m.group(0) for m in INSTANCE_ID.finditer(json.dumps(document))}
    printed = [m.group(0) for line in lines for m in INSTANCE_ID.finditer(line)]
    assert printed, f"{command} printed no instance id:\n" + "\n".join(lines)
    assert not set(printed) - known, f"{command} at {columns}: an id cut or folded: {sorted(set(printed) - known)[:3]}"
    if every_id:
        assert set(printed) == known, f"{command} at {columns}: ids of -o json not shown: {sorted(known - set(printed))[:3]}"
    wrapped = WRAPPED.get(command.split()[0], ())
    for n, line in enumerate(lines[:-1]):
        if INSTANCE_ID.search(line) and not wrapped:
            assert not CONTINUATION.match(lines[n + 1]), f"{command} at {columns}: a row folded:\n{line}\n{lines[n + 1]}"
    on_screen = set(" ".join(lines).split())
    for obj in objects(document):
        for key in wrapped:
            missing = [w for w in str(obj.get(key) or "").split() if w not in on_screen]
            assert not missing, f"{command} at {columns}: {key} of {obj['instance_id']} not whole: {missing[:5]}"
    cut_times = [line for line in lines if CUT_TIME.search(line)]
    assert not cut_times, f"{command} at {columns}: a time cut or wrapped: {cut_times[:2]}"
    for obj in objects(document):
        rows = [line for line in lines if re.match(rf"\s*(?:\S+ \S+\s+)?{obj['instance_id']}\b", line)]
        for key in words:
            value = obj.get(key)
            if isinstance(value, str) and value:
                assert any(re.search(rf"(?<![\w-]){re.escape(value)}(?![\w-])", row) for row in rows), (
                    f"{command} at {columns}: {key} {value!r} of {obj['instance_id']} not whole in {rows}")


@pytest.mark.parametrize("columns", [80, 100, 120])
@pytest.mark.parametrize("command,every_id,words", TABLE_COMMANDS, ids=[c.split()[0] + ("-dry" if "dry" in c else "") for c, _, _ in TABLE_COMMANDS])
def test_table_commands_keep_ids_verdicts_and_rows_whole(healed_env, command, every_id, words, columns):
    if "{acted}" in command:
        command = command.format(acted=acted_on(healed_env))
    if command not in JSON_OF:  # the same fleet at every width: one JSON run a command (a sweep takes seconds)
        JSON_OF[command] = as_json(command, healed_env)
    check_table_output(command, on_terminal(command, healed_env, columns), columns, JSON_OF[command], every_id, words)


JSON_OF: dict[str, Any] = {}


@pytest.mark.parametrize("columns", [80, 100, 120])
def test_init_dry_run_keeps_ids_and_states_whole(healed_env, tmp_path, columns):
    """A selector no instance carries yet: init would adopt the fleet (one sandbox a process)."""
    env = {**healed_env, "XDG_CONFIG_HOME": str(tmp_path / "xdg")}
    command = "init --name-pattern 'crawler-*' --selector adopted:by=init --dry-run"
    check_table_output(command, on_terminal(command, env, columns), columns, as_json(command, env), True, ("state",))


@pytest.mark.parametrize("columns", [80, 100, 120])
def test_the_simulate_table_keeps_scenario_policy_and_expectation_whole(tmp_path, columns):
    env = {"PATH": "/usr/bin:/bin", "TERM": "xterm-256color", "HOME": str(tmp_path)}
    command = "simulate --hours 2 --baselines"
    lines = on_terminal(command, env, columns)
    too_wide = [line for line in lines if len(line.rstrip()) > columns]
    assert not too_wide, f"{command} at {columns} columns: {too_wide[:3]}"
    document = as_json(command, env)
    rows = [line for line in lines if line.startswith(document[0]["scenario"] + " ")]
    assert len(rows) == len(document), "\n".join(lines)  # one line a run, none folded
    for row, run in zip(rows, document):
        assert re.search(rf"(?<![\w-]){run['policy']}(?![\w-])", row), row
        assert re.search(r"\b(met|baseline)\s*$", row) or run["violations"], row  # the expectation, whole when it is a word
        assert re.search(rf"\b{100 * run['availability']:.1f}%", row), row  # SSH up: a figure is never cut

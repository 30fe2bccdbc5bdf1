"""The package layout holds: docs/architecture.md's floor table is the rule, these tests the check.

Every module's imports are read with ``ast`` (top level, inside functions and under
``TYPE_CHECKING`` alike: a late import is still a dependency), and the suite fails on
an import circle between modules, an import that climbs a floor or is not in its
package's "may import" list, a module at the root of ``orchestrator/`` that is not
ground, or ``decide/`` reaching for boto3 or the clock.
"""

from __future__ import annotations

import ast
import functools
import re
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "architecture.md"
GROUND_MODULES = frozenset({"orchestrator", "orchestrator.echo", "orchestrator.jsonable", "orchestrator.files"})
# Ground too big for one module is a package: it and every module under it are ground,
# held to ground's rule (they import only ground), and its __init__ re-exports the names.
GROUND_PACKAGES = frozenset({"orchestrator.model", "orchestrator.config"})
ROOT_ALLOWED = GROUND_MODULES | GROUND_PACKAGES | {"orchestrator.aws"}
AWS_SDK = ("boto3", "botocore")
CLOCK_CALLS = frozenset({("datetime", "now"), ("datetime", "utcnow"), ("datetime", "today"), ("date", "today"),
                         ("time", "time"), ("time", "time_ns"), ("time", "monotonic"), ("time", "perf_counter")})


@dataclass(frozen=True)
class Import:
    target: str  # the module (inside the project) or the top-level name (outside it)
    line: int


def module_files() -> dict[str, Path]:
    """Every module of orchestrator/ and lambdas/ by dotted name (a package by its own name)."""
    found = {}
    for top in ("orchestrator", "lambdas"):
        for path in sorted((ROOT / top).rglob("*.py")):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join(parts)] = path
    return found


MODULES = module_files()


def _resolve(name: str) -> str | None:
    """The project module an import names: the longest dotted prefix that is one."""
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name or None


def imports_of(module: str, source: str | None = None) -> list[Import]:
    """Every import in a module, project modules resolved, others by their top-level name."""
    path = MODULES.get(module)
    text = source if source is not None else path.read_text()  # type: ignore[union-attr]
    is_package = path is not None and path.name == "__init__.py"
    found = []
    for node in ast.walk(ast.parse(text)):
        if isinstance(node, ast.Import):
            for alias in node.names:
                found.append(Import(_resolve(alias.name) or alias.name.split(".")[0], node.lineno))
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.split(".") if is_package else module.split(".")[:-1]
                base = base[: len(base) - (node.level - 1)]
                name = ".".join(base + ([node.module] if node.module else []))
            else:
                name = node.module or ""
            if name.split(".")[0] not in ("orchestrator", "lambdas"):
                found.append(Import(name.split(".")[0], node.lineno))
                continue
            for alias in node.names:  # `from pkg import submodule` depends on the submodule
                target = _resolve(f"{name}.{alias.name}")
                if target:
                    found.append(Import(target, node.lineno))
    return [i for i in found if i.target != module]


def project_graph() -> dict[str, set[str]]:
    return {m: set(targets) for m, targets in _project_graph().items()}


@functools.cache
def _project_graph() -> dict[str, frozenset[str]]:
    """Parsed once per run: every test below reads the same tree."""
    return {m: frozenset(i.target for i in imports_of(m) if i.target in MODULES) for m in MODULES}


def package_of(module: str) -> str:
    """The row of the floor table a module belongs to."""
    if module in GROUND_MODULES or any(module == p or module.startswith(p + ".") for p in GROUND_PACKAGES):
        return "ground"
    parts = module.split(".")
    if parts[0] == "lambdas":
        return "lambdas"
    return parts[1]


@dataclass(frozen=True)
class Row:
    floor: int
    may_import: frozenset[str]


def floor_table(text: str | None = None) -> dict[str, Row]:
    """The table under "Floors and what each package may import" in docs/architecture.md."""
    text = DOC.read_text() if text is None else text
    rows = {}
    for line in text.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 4 and cells[0].isdigit():
            floor, package, _job, allowed = cells
            rows[package] = Row(int(floor), frozenset(a.strip() for a in allowed.split(",") if a.strip()))
    return rows


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.get(child, ())))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def floor_violations(graph: dict[str, set[str]], table: dict[str, Row]) -> list[str]:
    problems = []
    for module, targets in sorted(graph.items()):
        mine = package_of(module)
        if mine not in table:
            problems.append(f"{module}: package {mine!r} has no row in docs/architecture.md")
            continue
        for target in sorted(targets):
            theirs = package_of(target)
            if theirs == mine:
                continue
            if theirs not in table[mine].may_import:
                problems.append(f"{module} imports {target}: {mine} may import only {', '.join(sorted(table[mine].may_import))}")
            elif theirs in table and table[theirs].floor >= table[mine].floor and mine != "ground":
                problems.append(f"{module} imports {target}: floor {table[theirs].floor} is not below {mine}'s {table[mine].floor}")
    return problems


# -- the checks --------------------------------------------------------------------------


def test_there_is_no_import_circle():
    found = circles(project_graph())
    assert found == [], "import circles: " + "; ".join(" <-> ".join(c) for c in found)


def test_the_floor_table_only_lets_a_package_import_what_stands_below_it():
    table = floor_table()
    assert {"ground", "aws", "decide", "observe", "state", "act", "sweep", "cli", "lambdas"} <= set(table)
    for package, row in table.items():
        for allowed in row.may_import - {package}:
            assert allowed in table, f"{package} may import {allowed}, which has no row"
            assert package == "ground" or table[allowed].floor < row.floor, f"{package} (floor {row.floor}) may import {allowed} (floor {table[allowed].floor})"


def test_every_import_keeps_to_its_package_row():
    problems = floor_violations(project_graph(), floor_table())
    assert problems == [], "\n".join(problems)


def test_every_package_has_a_row():
    table = floor_table()
    packages = {package_of(m) for m in MODULES}
    assert packages - set(table) == set()


def test_only_ground_and_aws_sit_at_the_root_of_orchestrator():
    at_root = {m for m, path in MODULES.items() if path.parent == ROOT / "orchestrator"}
    assert at_root - ROOT_ALLOWED == set(), "modules at the root of orchestrator/ that are not ground: " + ", ".join(sorted(at_root - ROOT_ALLOWED))


def _decide_closure() -> set[str]:
    """Every project module that importing any decide/ module runs, parent packages included."""
    graph = project_graph()
    todo = [m for m in MODULES if package_of(m) == "decide"]
    seen: set[str] = set()
    while todo:
        module = todo.pop()
        if module in seen:
            continue
        seen.add(module)
        parents = [".".join(module.split(".")[:n]) for n in range(1, module.count(".") + 1)]
        todo.extend(t for t in (*graph[module], *parents) if t in MODULES)
    return seen


def test_decide_and_everything_it_imports_stays_away_from_boto3():
    reached = sorted((m, i.line) for m in _decide_closure() for i in imports_of(m) if i.target in AWS_SDK)
    assert reached == [], f"decide/ reaches boto3/botocore through {reached}"


def clock_reads(source: str) -> list[int]:
    """Lines that read the wall clock: datetime.now(), time.time() and their kin."""
    lines = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            owner = node.func.value
            name = owner.id if isinstance(owner, ast.Name) else owner.attr if isinstance(owner, ast.Attribute) else ""
            if (name, node.func.attr) in CLOCK_CALLS:
                lines.append(node.lineno)
        if isinstance(node, ast.ImportFrom) and node.module == "time" and any(a.name in {"time", "monotonic", "perf_counter", "time_ns"} for a in node.names):
            lines.append(node.lineno)
    return lines


def test_decide_never_reads_the_clock():
    found = {m: clock_reads(p.read_text()) for m, p in MODULES.items() if package_of(m) == "decide"}
    assert {m: lines for m, lines in found.items() if lines} == {}


# -- the checker itself catches what it is for ---------------------------------------------


def test_the_checker_finds_a_circle_and_a_late_import():
    assert circles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    late = "def f():\n    from orchestrator.iam.permissions import ALL\n    return ALL\n"
    assert [i.target for i in imports_of("orchestrator.aws", late)] == ["orchestrator.iam.permissions"]
    guarded = "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from orchestrator.sweep.pipeline import SweepReport\n"
    assert "orchestrator.sweep.pipeline" in [i.target for i in imports_of("orchestrator.sweep.aws_fleet", guarded)]


def test_the_checker_refuses_an_upward_import_and_one_off_the_list():
    table = floor_table()
    upward = {"orchestrator.decide.plan": {"orchestrator.sweep.pipeline"}}
    assert any("decide may import only ground" in p for p in floor_violations(upward, table))
    sideways = {"orchestrator.observe.inventory": {"orchestrator.state.store"}}
    assert floor_violations(sideways, table) != []
    allowed = {"orchestrator.sweep.pipeline": {"orchestrator.decide.plan", "orchestrator.model"}}
    assert floor_violations(allowed, table) == []


def test_a_ground_package_is_ground_all_the_way_down():
    """A module inside a ground package is held to ground's rule, and may be imported by anyone."""
    table = floor_table()
    assert package_of("orchestrator.config.sections") == package_of("orchestrator.model.facts") == "ground"
    assert package_of("orchestrator.configuration") != "ground"  # a prefix of the name is not the package
    climbing = {"orchestrator.config.sections": {"orchestrator.aws"}}
    assert any("ground may import only ground" in p for p in floor_violations(climbing, table))
    inside = {"orchestrator.config.loading": {"orchestrator.config.sections", "orchestrator.model.actions", "orchestrator.echo"}}
    assert floor_violations(inside, table) == []
    assert {p for p in GROUND_PACKAGES if p in MODULES and MODULES[p].name == "__init__.py"} == GROUND_PACKAGES


def test_the_checker_sees_the_clock_and_boto3():
    assert clock_reads("from datetime import datetime\nx = datetime.now()\n") == [2]
    assert clock_reads("import time\nx = time.time()\n") == [2]
    assert clock_reads("import datetime\nx = datetime.datetime.now(datetime.timezone.utc)\n") == [2]
    assert clock_reads("def f(now):\n    return now\n") == []
    assert [i.target for i in imports_of("orchestrator.decide.plan", "import botocore.config\n")] == ["botocore"]


def test_the_table_parses_as_written():
    text = "| floor | package | job | may import |\n| --- | --- | --- | --- |\n| 0 | ground | x | ground |\n| 3 | act | y, z | ground, aws |\n"
    assert floor_table(text) == {"ground": Row(0, frozenset({"ground"})), "act": Row(3, frozenset({"ground", "aws"}))}


@pytest.mark.parametrize("module", sorted(m for m in MODULES if package_of(m) == "decide"))
def test_each_decide_module_is_named_in_the_doc_or_its_package(module):
    """decide/'s row names its steps: a new pure step is added there, so a reader finds it."""
    name = module.rpartition(".")[2]
    assert module == "orchestrator.decide" or re.search(rf"\b{name}\b", DOC.read_text()), f"{name} is not in docs/architecture.md"


def test_imports_are_collected_per_module():
    graph = defaultdict(set, project_graph())
    assert "orchestrator.sweep.pipeline" in graph["lambdas.heal"]

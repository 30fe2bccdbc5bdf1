"""Move the flat modules of orchestrator/ into their wings and rewrite every import of them.

Idempotent: run it again after merging a branch written against the old layout and the
branch's imports follow. Kept in scripts/ for that reason (issue 22); no logic of orch's.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PKG = ROOT / "orchestrator"

MOVES: dict[str, str] = {
    "alerts": "alerting.news",
    "alert_formats": "alerting.formats",
    "notify": "alerting.notify",
    "webhook": "alerting.webhook",
    "audit": "state.audit",
    "historybook": "state.historybook",
    "awsfleet": "sweep.aws_fleet",
    "sweep": "sweep.pipeline",
    "boxconsole": "box.console",
    "boxmodel": "box.model",
    "deploy": "deploy.stack",
    "package": "deploy.package",
    "stackset": "deploy.stackset",
    "deploy_permissions": "iam.deploy",
    "iam_policy": "iam.policy",
    "permissions": "iam.permissions",
    "diagnose": "decide.diagnose",
    "history": "decide.history",
    "manual": "decide.manual",
    "memory": "decide.memory",
    "trend": "decide.trend",
    "rungs": "decide.rungs",
    "plan": "decide.plan",
    "pending_start": "decide.pending_start",
    "report": "decide.patterns",
    "report_html": "report.html",
    "report_page": "report.page",
    "svg_chart": "report.svg_chart",
    "estate": "estate.accounts",
    "registry": "estate.registry",
    "kernel_log": "observe.kernel_log",
}

PACKAGES = {
    "alerting": "Telling people: what is news, its formats, SNS and webhooks.",
    "box": "The one model of a crawler box; only the sandbox and the simulator use it.",
    "decide": "Pure decisions: diagnose, memory, history, rungs, plan, patterns. No boto3, no clock.",
    "deploy": "Deployment: the Lambda package, the stack, the stack set and the template.",
    "estate": "Regions, accounts and the healers deployed across them.",
    "iam": "The AWS actions each command needs, gathered from the adapters' declarations.",
    "report": "The HTML report and its charts: data in, text out.",
    "sweep": "One sweep: observe -> decide -> act -> record, and the fleets it runs on.",
}


def move_files() -> None:
    # report.py must leave before report/ can be made, and so for every name that becomes a package.
    for old, new in MOVES.items():
        src = PKG / f"{old}.py"
        if not src.exists():
            continue
        dest = PKG / (new.replace(".", "/") + ".py")
        dest.parent.mkdir(exist_ok=True)
        subprocess.run(["git", "mv", str(src), str(dest)], cwd=ROOT, check=True)
    for name, doc in PACKAGES.items():
        init = PKG / name / "__init__.py"
        if not init.exists():
            init.write_text(f'"""{doc}"""\n')
            subprocess.run(["git", "add", str(init)], cwd=ROOT, check=True)


def submodules(pkg: str) -> set[str]:
    d = PKG / pkg
    if not d.is_dir():
        return set()
    return {p.stem for p in d.glob("*.py") if p.stem != "__init__"} | {p.name for p in d.iterdir() if p.is_dir()}


def names_of(clause: str) -> list[tuple[str, str | None]]:
    out = []
    for part in clause.replace("(", " ").replace(")", " ").replace("\\", " ").split(","):
        part = part.strip()
        if not part or part.startswith("#"):
            continue
        bits = part.split()
        out.append((bits[0], bits[2] if len(bits) == 3 and bits[1] == "as" else None))
    return out


FROM_PKG = re.compile(r"^(?P<indent>[ \t]*)from orchestrator import (?P<names>\([^)]*\)|[^\n#]*)", re.M)
FROM_MOD = re.compile(r"^(?P<indent>[ \t]*)from orchestrator\.(?P<mod>\w+) import (?P<names>\([^)]*\)|[^\n#]*)", re.M)
IMPORT_LINE = re.compile(r"^\s*(from|import)\s")
DOTTED = re.compile(r"\borchestrator([./])(?P<mod>\w+)(?P<tail>(?:[./]\w+)*)")


def rewrite_python(text: str) -> str:
    def from_pkg(m: re.Match[str]) -> str:
        indent = m["indent"]
        kept: list[str] = []
        lines: list[str] = []
        for name, alias in names_of(m["names"]):
            if name in MOVES:
                parent, _, leaf = MOVES[name].rpartition(".")
                as_name = alias or name
                tail = f" as {as_name}" if as_name != leaf else ""
                lines.append(f"{indent}from orchestrator.{parent} import {leaf}{tail}")
            else:
                kept.append(f"{name} as {alias}" if alias else name)
        if kept:
            lines.insert(0, f"{indent}from orchestrator import {', '.join(kept)}")
        return "\n".join(lines)

    def from_mod(m: re.Match[str]) -> str:
        mod = m["mod"]
        if mod not in MOVES:
            return m.group(0)
        names = names_of(m["names"])
        subs = submodules(mod)
        if subs and all(n in subs for n, _ in names):
            return m.group(0)  # already the new package's submodules
        return m.group(0).replace(f"from orchestrator.{mod} import", f"from orchestrator.{MOVES[mod]} import", 1)

    text = FROM_PKG.sub(from_pkg, text)
    text = FROM_MOD.sub(from_mod, text)
    return "".join(line if IMPORT_LINE.match(line) else rewrite_dotted(line) for line in text.splitlines(keepends=True))


def rewrite_dotted(text: str) -> str:
    def dotted(m: re.Match[str]) -> str:
        sep, mod, tail = m.group(1), m["mod"], m["tail"]
        if mod not in MOVES:
            return m.group(0)
        first = re.match(r"[./](\w+)", tail)
        if first and first.group(1) in submodules(mod):
            return m.group(0)  # orchestrator.sweep.pipeline: already moved
        if sep == "/" and first and first.group(1) == "py":
            return f"orchestrator/{MOVES[mod].replace('.', '/')}.py" + tail[3:]
        if sep == "/":
            return m.group(0)
        return f"orchestrator.{MOVES[mod]}{tail}"

    return DOTTED.sub(dotted, text)


def main() -> int:
    move_files()
    roots = [ROOT / d for d in ("orchestrator", "lambdas", "tests", "scripts", "docs", "cfn")] + [ROOT / "README.md", ROOT / "pyproject.toml"]
    files: list[Path] = []
    for r in roots:
        if r.is_file():
            files.append(r)
        elif r.is_dir():
            files += [p for p in r.rglob("*") if p.is_file() and p.suffix in (".py", ".md", ".toml", ".yaml", ".txt", "")]
    me = Path(__file__).resolve()
    changed = 0
    for f in files:
        if f.resolve() == me or f.is_symlink():
            continue
        try:
            text = f.read_text()
        except UnicodeDecodeError:
            continue
        new = rewrite_python(text) if f.suffix == ".py" else rewrite_dotted(text)
        if new != text:
            f.write_text(new)
            changed += 1
    print(f"rewrote {changed} files", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())

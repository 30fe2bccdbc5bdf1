"""What the kernel said before the box went quiet: OOM kills, panics, hung tasks.

EC2's GetConsoleOutput is the one window into a box whose sshd can no longer fork, and
it is evidence both for the heal (why we rebooted) and for the humans after it (which
process leaked). This module reads that text; fetching it is an adapter's job.

Cause precedence: PANIC > OOM > HUNG_TASK > UNKNOWN. A panic is the terminal event:
whatever came before, the kernel stopped there, so it names the outcome, and OOM kills
before it (or an "Out of memory" panic message) are kept as its context. OOM beats
hung-task warnings because those are usually a symptom of the same memory pressure
(reclaim and swap stall tasks in D state), not a cause of their own.

The input is untrusted text (serial console output, with whatever bytes the guest
wrote): nothing here raises on it, only the last ``MAX_SCAN_CHARS`` are read, and each
line is cut to ``MAX_LINE_CHARS`` before any pattern runs, so the work is linear.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass

MAX_SCAN_CHARS = 256 * 1024  # EC2 keeps 64 KB; the rest is margin, not a promise
MAX_LINE_CHARS = 4096  # printk lines are at most 1024 bytes
MAX_SUMMARY_KILLS = 3

# Prefixes that precede the kernel's own text, stripped repeatedly in any order:
# syslog priority "<4>", a syslog/journal header "Nov 12 03:14:15 host kernel: ",
# the printk time "[ 1234.567890]" and the printk caller "[ T123]" / "[  C1]".
_PREFIX = re.compile(
    r"""\s*(?:
        <\d{1,3}>
      | [A-Z][a-z]{2}\s+\d{1,2}\s+\d{2}:\d{2}:\d{2}\s+\S+\s+kernel:
      | \d{4}-\d{2}-\d{2}T\S+\s+\S+\s+kernel:
      | \[\s*\d+\.\d+\]
      | \[\s*[TC]\d+\]
    )""",
    re.VERBOSE,
)
# "Kill process N (x) score S or sacrifice child" (old), "Killed process N (x) total-vm:..."
# (both), RHEL 6's "Killed process N, UID U, (x) total-vm:...". A name may hold spaces and
# parentheses, "(Web Content)" or "(a (b) c)", so it ends at the ")" that the kernel's own
# next token follows, not at the first ")".
_KILL = re.compile(
    r"\bKill(?P<past>ed)? process (?P<pid>\d+)(?:, UID \d+,)? \((?P<name>.*?)\)"
    r"(?=\s+score\b|\s+total-vm:|\s+vsz:|,|\s*$)"
)
_TOTAL_VM = re.compile(r"\b(?:total-vm|vsz):(\d+)kB")
_ANON_RSS = re.compile(r"\banon-rss:(\d+)kB")
_HUNG = re.compile(r"INFO: task .+ blocked for more than \d+ seconds")
_PANIC = "Kernel panic - "
_INVOKED = " invoked oom-killer"
_CGROUP = "Memory cgroup out of memory"
_NO_KILLABLE = "Out of memory and no killable processes"


class ConsoleCause(str, enum.Enum):
    OOM = "oom"
    PANIC = "panic"
    HUNG_TASK = "hung-task"
    UNKNOWN = "unknown"


@dataclass(frozen=True, slots=True)
class OomKill:
    """One process the OOM killer took, merged from the kernel's one or two lines about it."""

    process: str
    pid: int | None
    anon_rss_kb: int | None
    total_vm_kb: int | None
    invoker: str | None  # the task whose allocation failed, often not the victim
    line: str  # the most detailed line, as evidence
    cgroup: bool = False  # a container hit its limit: the host itself may have memory


@dataclass(frozen=True, slots=True)
class ConsoleFindings:
    cause: ConsoleCause
    oom_kills: tuple[OomKill, ...]
    panic_lines: tuple[str, ...]
    hung_task_lines: tuple[str, ...]
    invoked_oom_killer: tuple[str, ...]  # distinct invokers, first seen first
    summary: str


def parse_console(text: str) -> ConsoleFindings:
    """Find the kernel's memory and liveness events in console output; never raises."""
    if len(text) > MAX_SCAN_CHARS:
        text = text[-MAX_SCAN_CHARS:]
        _, newline, rest = text.partition("\n")
        if newline:
            text = rest  # the first line was cut: do not half-read it
    kills: list[OomKill] = []
    awaiting: dict[tuple[int | None, str], int] = {}  # kills still missing their sizes
    panics: list[str] = []
    hung: list[str] = []
    invokers: list[str] = []
    pending_invoker: str | None = None
    oom_seen = False
    for raw in text.splitlines():
        line = raw[:MAX_LINE_CHARS].strip()
        if not line:
            continue
        body = _strip_prefixes(line)
        if _PANIC in body:
            if not body.startswith("---[ end"):  # the kernel repeats the panic as a trailer
                panics.append(body)
            continue
        if _INVOKED in body:
            invoker = body.partition(_INVOKED)[0].strip() or None
            if invoker and invoker not in invokers:
                invokers.append(invoker)
            pending_invoker = invoker
            oom_seen = True
            continue
        if "process" in body and "Kill" in body:
            kill = _kill(body, line, pending_invoker)
            if kill is not None:
                oom_seen = True
                key = (kill.pid, kill.process)
                index = awaiting.pop(key, None)
                if index is None:
                    index = len(kills)
                    kills.append(kill)
                    pending_invoker = None
                else:
                    kills[index] = _merged(kills[index], kill)
                if kills[index].anon_rss_kb is None and kills[index].total_vm_kb is None:
                    awaiting[key] = index
            continue
        if _NO_KILLABLE in body:
            oom_seen = True
            continue
        if "blocked for more than" in body and _HUNG.search(body):
            hung.append(body)
    cause = _cause(panics, oom_seen, hung)
    return ConsoleFindings(
        cause=cause,
        oom_kills=tuple(kills),
        panic_lines=tuple(panics),
        hung_task_lines=tuple(hung),
        invoked_oom_killer=tuple(invokers),
        summary=_summary(cause, kills, panics, hung, invokers, empty=not text.strip()),
    )


def _strip_prefixes(line: str) -> str:
    position = 0
    while True:
        match = _PREFIX.match(line, position)
        if match is None or match.end() == position:
            return line[position:].strip()
        position = match.end()


def _kill(body: str, line: str, invoker: str | None) -> OomKill | None:
    match = _KILL.search(body)
    if match is None:
        return None
    rest = body[match.end() :]
    return OomKill(
        process=match.group("name"),
        pid=int(match.group("pid")),
        anon_rss_kb=_kb(_ANON_RSS, rest),
        total_vm_kb=_kb(_TOTAL_VM, rest),
        invoker=invoker,
        line=line,
        cgroup=_CGROUP in body,
    )


def _kb(pattern: re.Pattern[str], text: str) -> int | None:
    match = pattern.search(text)
    return int(match.group(1)) if match else None


def _merged(old: OomKill, new: OomKill) -> OomKill:
    """Fold "Killed process N (x) total-vm..." into the "Kill process N (x) score" before it.

    Only a record still missing its sizes is merged into (the caller tracks which), so
    a pid reused by a later victim becomes a kill of its own.
    """
    sized = new.anon_rss_kb is not None or new.total_vm_kb is not None
    return OomKill(
        process=old.process,
        pid=old.pid,
        anon_rss_kb=new.anon_rss_kb,
        total_vm_kb=new.total_vm_kb,
        invoker=old.invoker or new.invoker,
        line=new.line if sized else old.line,
        cgroup=old.cgroup or new.cgroup,
    )


def _cause(panics: list[str], oom_seen: bool, hung: list[str]) -> ConsoleCause:
    if panics:
        return ConsoleCause.PANIC
    if oom_seen:
        return ConsoleCause.OOM
    if hung:
        return ConsoleCause.HUNG_TASK
    return ConsoleCause.UNKNOWN


def _gib(kb: int) -> str:
    return f"{kb / 1024 / 1024:.1f} GiB"


def _describe_kill(kill: OomKill) -> str:
    text = kill.process if kill.pid is None else f"{kill.process} pid {kill.pid}"
    if kill.anon_rss_kb is not None:
        text += f", anon-rss {_gib(kill.anon_rss_kb)}"
    if kill.cgroup:
        text += " (memory cgroup limit)"
    return text


def _describe_kills(kills: list[OomKill]) -> str:
    shown = "; ".join(_describe_kill(k) for k in kills[:MAX_SUMMARY_KILLS])
    more = len(kills) - MAX_SUMMARY_KILLS
    return f"oom-killer killed {shown}" + (f" (+{more} more)" if more > 0 else "")


def _summary(
    cause: ConsoleCause,
    kills: list[OomKill],
    panics: list[str],
    hung: list[str],
    invokers: list[str],
    empty: bool,
) -> str:
    if cause is ConsoleCause.PANIC:
        message = panics[0].partition(_PANIC)[2] or panics[0]
        text = f"kernel panic - {message}"
        return text + (f" (after {_describe_kills(kills)})" if kills else "")
    if cause is ConsoleCause.OOM:
        if kills:
            return _describe_kills(kills)
        if invokers:
            return f"oom-killer invoked by {', '.join(invokers)}; no kill recorded in the console output"
        return "out of memory with no killable process"
    if cause is ConsoleCause.HUNG_TASK:
        plural = "s" if len(hung) > 1 else ""
        return f"{len(hung)} hung task warning{plural}, first: {hung[0].removeprefix('INFO: ')}"
    if empty:
        return "console output empty"
    return "no oom kill, kernel panic or hung task in the console output"


_STAMP = re.compile(r"^\s*(?:<\d{1,3}>)?\[\s*(\d+\.\d+)\]")
_BOOT_BANNER = "Linux version "


def current_boot(text: str) -> str:
    """The part of console output that belongs to the boot it ends with.

    EC2 keeps the last 64 KB of the serial console, so after a reboot the previous
    boot's last lines (the OOM kill that wedged it) sit above the new boot's log. A
    boot starts where the kernel prints its banner, or where its uptime stamps go back
    to a smaller number than the line before (a banner lost off the top of the
    buffer). Lines without a stamp belong to the boot around them.
    """
    if len(text) > MAX_SCAN_CHARS:
        text = text[-MAX_SCAN_CHARS:]
    lines = text.splitlines(keepends=True)
    start = 0
    previous: float | None = None
    for i, raw in enumerate(lines):
        line = raw[:MAX_LINE_CHARS]
        match = _STAMP.match(line)
        stamp = float(match.group(1)) if match else None
        if _BOOT_BANNER in line or (stamp is not None and previous is not None and stamp < previous):
            start = i
        if stamp is not None:
            previous = stamp
    return "".join(lines[start:])

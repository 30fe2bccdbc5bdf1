"""What a person sees: the commands in a real pseudo-terminal at 80, 100 and 120 columns.

Each command runs under pexpect with the terminal's size set, against a sandbox fleet,
exactly as after `source sandbox.env`. Every line of what it prints must fit the
terminal, the fleet table must be worst first with every verdict whole (columns are
dropped, verdicts never cut), and on a terminal the sweep shows its progress with n/N.
Every table command is checked the same way in tests/e2e/test_table_fit.py.
"""

from __future__ import annotations

import logging
import re
import sys
from typing import Iterator

import pexpect
import pytest

from orchestrator.model import VerdictKind
from orchestrator.sandbox import FleetSpec, Sandbox
from orchestrator.sandbox.demo import exports, stage
from tests.e2e.sandbox_env import in_second_vpc, quick_probes

pytestmark = pytest.mark.e2e

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b\][^\x07]*\x07")
ORCH = f"{sys.executable} -c 'from orchestrator.cli import main; main()'"
VERDICTS = [k.value for k in VerdictKind]


@pytest.fixture(scope="module")
def fleet_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    spec = FleetSpec(instances=24, hung=2, refusing=1, leaking=2, opt_out=1, unmanaged=2, seed=5, port=0)
    with Sandbox(in_second_vpc(spec)) as sb:
        env = exports(sb, stage(sb, tmp_path_factory.mktemp("state")))
        yield {"PATH": "/usr/bin:/bin", "TERM": "xterm-256color", "HOME": str(tmp_path_factory.mktemp("home")), **quick_probes(env)}


def on_terminal(command: str, env: dict[str, str], columns: int, stderr_too: bool = False) -> list[str]:
    """The lines a terminal of this width shows (stderr to a file unless ``stderr_too``).

    poll, not select: late in a full run this process's descriptors are numbered past 1024.
    """
    redirect = "" if stderr_too else " 2>/dev/null"
    child = pexpect.spawn("bash", ["-c", f"{ORCH} {command}{redirect}"], env=env, dimensions=(40, columns), encoding="utf-8", timeout=120, use_poll=True)
    child.expect(pexpect.EOF)
    child.close()
    text = ANSI.sub("", child.before or "")
    return [line for line in re.split(r"\r?\n|\r", text)]


COMMANDS = [
    "scan",
    "heal --dry-run",
    "status",
    "report",
    "explain crawler-1 --no-console",
    "history",
    "pause --reason 'change freeze'",
    "pause --reason again",
    "resume",
    "--help",
    "heal --help",
    "probe 127.0.0.1:1 --connect-timeout 0.5",
    "doctor",
    "doctor --help",
    "permissions heal --output table",
    "permissions --help",
    "agent check",
    "agent check --process ruby",
    "agent --help",
    "init --help",
    "help",
    "help top",
    "top --help",
    "simulate --help",
    "simulate --list",
    "permissions --output table",
    "probe --help",
    "history -o wide",
    "scan -o wide",
]  # init itself runs on an untagged fleet: tests/e2e/test_init_sandbox.py


@pytest.mark.parametrize("columns", [80, 120])
@pytest.mark.parametrize("command", COMMANDS)
def test_every_line_fits_the_terminal(fleet_env, command, columns):
    lines = on_terminal(command, fleet_env, columns)
    assert any(line.strip() for line in lines), f"{command} printed nothing"
    too_wide = [line for line in lines if len(line.rstrip()) > columns]
    assert not too_wide, f"{command} at {columns} columns: {too_wide[:3]}"


@pytest.mark.parametrize("columns", [80, 120])
def test_the_fleet_table_is_worst_first_with_whole_verdicts(fleet_env, columns):
    lines = on_terminal("scan", fleet_env, columns)
    rows = [line for line in lines if re.match(r"\s*i-[0-9a-f]{17}\b", line)]
    assert any(line.startswith(f"{len(rows)} instances, worst first") for line in lines)
    assert len(rows) == 24  # the managed ones (the opted-out one among them); the unmanaged are not selected
    verdicts = [next(v for v in VERDICTS if re.search(rf"\b{re.escape(v)}\b", row)) for row in rows]
    order = [VerdictKind(v) for v in verdicts]
    severity = [VerdictKind.UNREACHABLE, VerdictKind.AWS_IMPAIRED, VerdictKind.MEMORY_CRITICAL, VerdictKind.MEMORY_FORECAST,
                VerdictKind.METRICS_STALE, VerdictKind.UNKNOWN, VerdictKind.HEALTHY]
    assert order == sorted(order, key=severity.index) and order[0] is VerdictKind.UNREACHABLE
    assert not [row for row in rows if "…" in row.split()[-1]], "a verdict was cut"
    opted = [row for row in rows if row.rstrip().endswith("*")]
    assert len(opted) == 1 and any("opted out by tag orch:skip" in line for line in lines)
    if columns >= 120:
        assert any("crawler-" in row for row in rows)  # the name column is there when it fits


def test_a_sweep_on_a_terminal_shows_progress_with_counts(fleet_env):
    text = "\n".join(on_terminal("scan", fleet_env, 120, stderr_too=True))
    assert "probing SSH" in text and re.search(r"\b\d+/\d+\b", text), text[-2000:]


def test_no_color_means_no_colour_codes(fleet_env):
    env = {**fleet_env, "NO_COLOR": "1"}
    child = pexpect.spawn("bash", ["-c", f"{ORCH} status"], env=env, dimensions=(40, 100), encoding="utf-8", timeout=120, use_poll=True)
    child.expect(pexpect.EOF)
    assert "\x1b[3" not in (child.before or "") and "selected instances" in (child.before or "")
    flagged = pexpect.spawn("bash", ["-c", f"{ORCH} status --no-color"], env=fleet_env, dimensions=(40, 100), encoding="utf-8", timeout=120, use_poll=True)
    flagged.expect(pexpect.EOF)
    assert "\x1b[3" not in (flagged.before or "")


# -- across regions: `status|history|scan --regions` against a moto server -----------------

ESTATE_REGIONS = "us-east-1,eu-west-1"
STATUS_WORDS = {"done", "failed", "intent", "uncertain", "reboot", "stop-start", "free", "no"}


@pytest.fixture(scope="module")
def estate_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """Two accounts in two regions, each a loopback VPC with a registered healer, on a
    moto server reached as a person would: AWS_ENDPOINT_URL (tests/aws/test_estate.py)."""
    from moto.server import ThreadedMotoServer

    from tests.aws.test_estate import OTHER, OWN, build_fleet, record_reboot

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    env = {
        "AWS_ENDPOINT_URL": f"http://{host}:{port}",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }
    try:
        with pytest.MonkeyPatch.context() as patch:
            for key, value in env.items():
                patch.setenv(key, value)
            fleets = {}
            for n, (account, region, size) in enumerate([(OWN, "us-east-1", 2), (OWN, "eu-west-1", 3), (OTHER, "us-east-1", 4), (OTHER, "eu-west-1", 1)]):
                fleets[(account, region)] = build_fleet(account, region, size, 40 + n)
            for minutes, (account, region) in enumerate(fleets):
                record_reboot(account, region, fleets[(account, region)][1][0], minutes, reason=LONG_REASON)
        yield {
            "PATH": "/usr/bin:/bin",
            "TERM": "xterm-256color",
            "HOME": str(tmp_path_factory.mktemp("estate-home")),
            "ORCH_PROBE_CONNECT_TIMEOUT": "0.2",
            "ORCH_PROBE_BANNER_TIMEOUT": "0.2",
            "ORCH_PROBE_RETRY_WINDOW": "0.5",
            **env,
        }
    finally:
        server.stop()


LONG_REASON = "SSH banner timeout on 3 of 3 attempts over 90 s while AWS status checks pass; corroborated by memory 97% rising 1.2%/min"
ESTATE = f"--regions {ESTATE_REGIONS} --accounts 123456789012,222222222222 --role-arn 'arn:aws:iam::{{account}}:role/orch-operator'"
ESTATE_COMMANDS = [f"status {ESTATE}", f"history {ESTATE}", f"scan {ESTATE}"]


ID = re.compile(r"\b(?:vpc|i)-[0-9a-f]+")
WHOLE_ID = re.compile(r"^(?:vpc|i)-[0-9a-f]{17}$")


def table_rows(lines: list[str]) -> list[str]:
    return [line for line in lines if re.match(r"(?:\d{12}  )?\s*(?:us-east-1|eu-west-1)\b", line.strip())]


@pytest.mark.parametrize("columns", [80, 100, 120])
@pytest.mark.parametrize("command", ESTATE_COMMANDS, ids=["status", "history", "scan"])
def test_estate_tables_fit_the_terminal_with_ids_and_words_whole(estate_env, command, columns):
    lines = on_terminal(command, estate_env, columns)
    too_wide = [line for line in lines if len(line.rstrip()) > columns]
    assert not too_wide, f"{command} at {columns} columns: {too_wide[:3]}"
    rows = table_rows(lines)
    assert len(rows) == 4, "\n".join(lines)  # two accounts in two regions, one row each, none folded onto a second line
    cut = [m.group(0) for line in lines for m in ID.finditer(line) if not WHOLE_ID.match(m.group(0))]
    assert not cut, f"an id was cut: {cut[:3]}"
    kind = command.split()[0]
    cut = [row for row in rows if "…" in row and not (kind == "history" and row.rstrip().endswith("…"))]
    assert not cut, f"a cell other than the reason (the last column, prose) was cut: {cut[:2]}"
    if kind == "history":
        assert all(re.search(r"\breboot\s+done\b", row) for row in rows)
        assert all(WHOLE_ID.match(word) for row in rows for word in row.split() if word.startswith("i-"))
    elif kind == "scan":
        assert all(re.search(r"\bunreachable \d+$", row.rstrip()) for row in rows)
    else:
        assert all(re.search(r"\bno$", row.rstrip()) for row in rows)  # paused: no
    left_out = [line for line in lines if line.startswith("left out to fit")]
    if kind != "history" or columns >= 160:
        assert all("vpc-" in row for row in rows)  # the fleet's VPC, left out only where the instance id says enough
    if kind == "history" and columns >= 120:
        assert any("SSH banner timeout" in line for line in lines)  # the reason is there when it fits
    if kind == "history" and columns == 80:
        assert left_out and "reason" in left_out[0]  # and, when it does not, the table says it left it out




@pytest.mark.parametrize("columns", [80, 120])
def test_permissions_keep_every_arn_and_action_whole(fleet_env, columns):
    """An ARN or an action is one word: on its own line or between spaces, never split."""
    import json
    import subprocess

    lines = on_terminal("permissions heal --output table", fleet_env, columns)
    words = set(" ".join(lines).split())
    document = json.loads(subprocess.run(["bash", "-c", f"{ORCH} permissions heal"], env=fleet_env, capture_output=True,
                                         text=True, timeout=120).stdout)
    for statement in document["Statement"]:
        for value in ("Resource", "Action"):
            wanted = [statement[value]] if isinstance(statement[value], str) else statement[value]
            assert set(wanted) <= words, (columns, sorted(set(wanted) - words))


@pytest.mark.parametrize("columns", [80, 120])
def test_simulate_list_names_every_scenario_and_fits(fleet_env, columns):
    from orchestrator.simulate import SCENARIOS

    lines = on_terminal("simulate --list", fleet_env, columns)
    assert not [line for line in lines if len(line.rstrip()) > columns]
    assert [s.name for s in SCENARIOS] == [line.split()[0] for line in lines if line.split() and line.split()[0] in
                                           {s.name for s in SCENARIOS}]

"""Does fail2ban on the boxes exempt the prober? Read through SSM, judged here (pure).

A probe that stops before authentication is a failure to fail2ban's sshd filter in its
ddos and aggressive modes (measured: tests/e2e/test_fail2ban.py). With the default
``maxretry = 5`` in ``findtime = 10m``, a few sweeps' probes ban the prober, and a banned
prober sees a healthy box as dead. The fix is the prober's address in the jail's
``ignoreip``. ``SCRIPT`` asks fail2ban-client for each jail's ignoreip (read-only); ``parse``
reads its output; ``checks`` says, per instance, whether the address the probes come
from is ignored by every ssh jail, and how to make it so.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from typing import Mapping

from orchestrator.doctor.checks import CheckResult, Status

CHECK = "fail2ban"
ABSENT = "orch-fail2ban: absent"
JAIL = "orch-jail: "
IGNORE = "orch-ignore: "
PRESENT = "orch-fail2ban: present"
SCRIPT = (
    f"if ! command -v fail2ban-client >/dev/null 2>&1; then echo '{ABSENT}'; exit 0; fi\n"
    f"echo '{PRESENT}'\n"
    "for jail in $(fail2ban-client status | sed -n 's/.*Jail list:[[:space:]]*//p' | tr ',' ' '); do\n"
    f"  echo '{JAIL}'\"$jail\"\n"
    f"  fail2ban-client get \"$jail\" ignoreip | sed -n 's/^[|`]- */{IGNORE}/p'\n"
    "done\n"
)
PERMISSIONS = frozenset({"ssm:DescribeInstanceInformation", "ssm:SendCommand", "ssm:GetCommandInvocation"})
SAMPLE = 3  # fail2ban's config is usually the fleet's image's: a few boxes tell


@dataclass(frozen=True, slots=True)
class Jails:
    """One instance's fail2ban: absent, or its jails and what each ignores; or why it could not be read."""

    instance_id: str
    present: bool = True
    ignored: Mapping[str, tuple[str, ...]] = field(default_factory=dict)  # jail -> ignoreip entries
    error: str | None = None


def parse(instance_id: str, output: str) -> Jails:
    if ABSENT in output:
        return Jails(instance_id, present=False)
    if PRESENT not in output:
        return Jails(instance_id, error="the command printed nothing of the script's (did it run?)")
    ignored: dict[str, list[str]] = {}
    jail: str | None = None
    for line in output.splitlines():
        if line.startswith(JAIL):
            jail = line[len(JAIL):].strip()
            ignored.setdefault(jail, [])
        elif line.startswith(IGNORE) and jail is not None:
            ignored[jail].append(line[len(IGNORE):].strip())
    return Jails(instance_id, ignored={k: tuple(v) for k, v in ignored.items()})


def covers(entries: tuple[str, ...], address: str) -> bool:
    """Is ``address`` in one of the ignoreip entries (addresses or CIDRs; a host name cannot be told, so no)?"""
    ip = ipaddress.ip_address(address)
    for entry in entries:
        try:
            if ip in ipaddress.ip_network(entry, strict=False):
                return True
        except ValueError:
            continue
    return False


def fix(jail: str, entries: tuple[str, ...], network: str) -> str:
    kept = " ".join(entries) or "127.0.0.1/8 ::1"
    return (f"fail2ban-client set {jail} addignoreip {network}; and to keep it, in /etc/fail2ban/jail.d/orch-prober.local: "
            f"[{jail}] ignoreip = {kept} {network} (docs/deploy.md#fail2ban)")


def checks(found: list[Jails], sources: Mapping[str, str | None], names: Mapping[str, str]) -> list[CheckResult]:
    """One row per instance read: ok (absent, no ssh jail, or the prober ignored), FAIL with the fix, or cannot tell."""
    rows = []
    for jails in found:
        who = f"{jails.instance_id} ({names[jails.instance_id]})" if names.get(jails.instance_id) else jails.instance_id
        if jails.error is not None:
            rows.append(CheckResult(CHECK, who, Status.UNKNOWN, f"could not read fail2ban through SSM: {jails.error}"))
            continue
        if not jails.present:
            rows.append(CheckResult(CHECK, who, Status.OK, "no fail2ban"))
            continue
        ssh = {j: e for j, e in jails.ignored.items() if "ssh" in j.lower()}
        if not ssh:
            rows.append(CheckResult(CHECK, who, Status.OK, f"no ssh jail ({', '.join(sorted(jails.ignored)) or 'no jail'})"))
            continue
        source = sources.get(jails.instance_id)
        if not source:
            rows.append(CheckResult(CHECK, who, Status.UNKNOWN, f"jail(s) {', '.join(sorted(ssh))}: the probes' source address is unknown",
                                    "pass --source IP"))
            continue
        missing = sorted(j for j, entries in ssh.items() if not covers(entries, source))
        if not missing:
            rows.append(CheckResult(CHECK, who, Status.OK, f"{source} is in ignoreip of {', '.join(sorted(ssh))}"))
            continue
        network = f"{source}/32" if ":" not in source else f"{source}/128"
        rows.append(CheckResult(
            CHECK, who, Status.FAIL,
            f"jail {', '.join(missing)} does not ignore {source}: each probe counts as a failure in the sshd filter's ddos and "
            "aggressive modes, and a banned prober sees the box as dead",
            fix(missing[0], ssh[missing[0]], network),
        ))
    return rows

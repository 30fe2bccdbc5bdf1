"""Serial console text, as GetConsoleOutput would show it for a crawler box.

orch collects the console as evidence before it acts: on a hung instance the kernel's
OOM-killer lines prove the memory story independently of the prober's network path.
Moto returns one fixed Xen boot log for every instance; the sandbox serves these
instead (see ``sandbox.hooks``), and the simulator reads them too, so both parse the
same text. Deterministic for a given ``random.Random``.
"""

from __future__ import annotations

import random

KERNEL = "6.1.0-18-cloud-amd64"


def boot_log(rng: random.Random, hostname: str) -> str:
    """A quiet Debian 12 cloud boot up to the login prompt."""
    lines = [
        (0.0, f"Linux version {KERNEL} (debian-kernel@lists.debian.org) (gcc-12 (Debian 12.2.0-14) 12.2.0, GNU ld (GNU Binutils for Debian) 2.40) #1 SMP PREEMPT_DYNAMIC Debian 6.1.76-1 (2024-02-01)"),
        (0.0, f"Command line: BOOT_IMAGE=/boot/vmlinuz-{KERNEL} root=PARTUUID=6b1c5e8a-01 ro console=tty0 console=ttyS0,115200 earlyprintk=ttyS0,115200 consoleblank=0"),
        (0.0, "BIOS-provided physical RAM map:"),
        (0.0, "DMI: Amazon EC2 t3.large/, BIOS 1.0 10/16/2017"),
        (0.004, "Hypervisor detected: KVM"),
        (0.412, "Memory: 7998512K/8388152K available (12288K kernel code, 2156K rwdata)"),
        (1.118, "EXT4-fs (nvme0n1p1): mounted filesystem with ordered data mode. Quota mode: none."),
        (2.407, "systemd[1]: systemd 252.22-1~deb12u1 running in system mode"),
        (2.981, f"systemd[1]: Set hostname to <{hostname}>."),
        (3.512, "ena 0000:00:05.0 eth0: renamed from ens5"),
        (5.230, "cloud-init[512]: Cloud-init v. 22.4.2 running 'modules:final'"),
    ]
    text = "".join(f"[{_stamp(at + rng.uniform(0, 0.0009))}] {line}\n" for at, line in lines)
    return text + f"\nDebian GNU/Linux 12 {hostname} ttyS0\n\n{hostname} login: \n"


def oom_log(
    rng: random.Random, uptime: float | None = None, process: str = "ruby", command: str = "ucrawler.rb", rss_kb: int = 15310180
) -> str:
    """The kernel's account of the leak winning: OOM-killer, then sshd stuck."""
    at = uptime if uptime is not None else rng.uniform(20_000.0, 900_000.0)
    pid = rng.randint(20_000, 40_000)
    sshd = rng.randint(600, 900)
    total_vm = rss_kb + 977_544  # the rest of the process's address space
    lines = [
        (0.0, f"{command}:213 invoked oom-killer: gfp_mask=0x201da, order=0, oom_score_adj=0"),
        (0.00005, f"CPU: 1 PID: {pid} Comm: {command} Not tainted {KERNEL} #1 Debian 6.1.76-1"),
        (0.00008, "Mem-Info:"),
        (0.00009, "active_anon:3827545 inactive_anon:0 isolated_anon:0 free:21393 free_pcp:62"),
        (0.0001, f"Out of memory: Killed process {pid} ({process}) total-vm:{total_vm}kB, anon-rss:{rss_kb}kB, file-rss:0kB, shmem-rss:0kB, UID:1000 pgtables:31000kB oom_score_adj:0"),
        (1.2, "systemd-journald[231]: Under memory pressure, flushing caches."),
        (121.4, f"INFO: task sshd:{sshd} blocked for more than 120 seconds."),
        (121.40002, "\"echo 0 > /proc/sys/kernel/hung_task_timeout_secs\" disables this message."),
    ]
    return "".join(f"[{_stamp(at + offset)}] {line}\n" for offset, line in lines)


def _stamp(seconds: float) -> str:
    return f"{seconds:12.6f}"

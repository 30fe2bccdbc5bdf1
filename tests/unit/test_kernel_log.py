"""parse_console on the kernel's own words, old and new, buried in boot noise."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import settings as hyp_settings
from hypothesis import strategies as st

from orchestrator.observe.kernel_log import MAX_SCAN_CHARS, ConsoleCause, OomKill, parse_console

NOISE = """\
[    0.000000] Linux version 5.10.205-195.807.amzn2.x86_64 (mockbuild@ip-10-0-40-94) (gcc10-gcc (GCC) 10.5.0)
[    0.000000] Command line: BOOT_IMAGE=/boot/vmlinuz root=UUID=55da5202 ro console=tty0 console=ttyS0,115200n8
[    2.118034] systemd[1]: Started Journal Service.
cloud-init[2214]: Cloud-init v. 19.3 running 'modules:final' at Tue, 12 Nov 2024 03:01:02 +0000.
ci-info: +++++++++++++++++++++++Net device info++++++++++++++++++++++++
Amazon Linux 2
Kernel 5.10.205 on an x86_64

ip-172-31-5-5 login: 
"""

OLD_INVOKED = "ucrawler.rb:213 invoked oom-killer: gfp_mask=0x201da, order=0, oom_score_adj=0"
OLD_KILL = "Out of memory: Kill process 25910 (ruby) score 979 or sacrifice child"
OLD_KILLED = "Killed process 25910 (ruby) total-vm:16287724kB, anon-rss:15310180kB, file-rss:0kB"
NEW_KILLED = (
    "Out of memory: Killed process 1234 (java) total-vm:8123456kB, anon-rss:7900000kB, file-rss:0kB, "
    "shmem-rss:0kB, UID:1000 pgtables:15800kB oom_score_adj:0"
)


def console(*lines: str, prefix: str = "") -> str:
    body = "\n".join(prefix + line for line in lines)
    return NOISE + body + "\n" + NOISE


# --- OOM kills ------------------------------------------------------------------------------------


PREFIXES = [
    "",
    "[ 1234.567890] ",
    "[12345678.123456] ",
    "Nov 12 03:14:15 ip-172-31-5-5 kernel: ",
    "Nov  2 03:14:15 host kernel: [ 1234.567890] ",
    "<4>[  321.000001] ",
    "[  321.000001][ T2214] ",
]


@pytest.mark.parametrize("prefix", PREFIXES)
def test_old_kernel_sequence_merges_into_one_kill(prefix):
    findings = parse_console(console(OLD_INVOKED, "Mem-Info:", OLD_KILL, OLD_KILLED, prefix=prefix))
    assert findings.cause is ConsoleCause.OOM
    assert findings.oom_kills == (
        OomKill(
            process="ruby",
            pid=25910,
            anon_rss_kb=15310180,
            total_vm_kb=16287724,
            invoker="ucrawler.rb:213",
            line=prefix.strip() + (" " if prefix else "") + OLD_KILLED,
        ),
    )
    assert findings.invoked_oom_killer == ("ucrawler.rb:213",)
    assert findings.summary == "oom-killer killed ruby pid 25910, anon-rss 14.6 GiB"


@pytest.mark.parametrize("prefix", PREFIXES)
def test_new_kernel_single_line(prefix):
    findings = parse_console(console("java invoked oom-killer: gfp_mask=0x100cca(GFP_HIGHUSER_MOVABLE), order=0", NEW_KILLED, prefix=prefix))
    assert findings.cause is ConsoleCause.OOM
    (kill,) = findings.oom_kills
    assert (kill.process, kill.pid, kill.anon_rss_kb, kill.total_vm_kb, kill.invoker) == ("java", 1234, 7900000, 8123456, "java")
    assert findings.summary == "oom-killer killed java pid 1234, anon-rss 7.5 GiB"


@pytest.mark.parametrize(
    "line, process, pid, anon_kb, vm_kb, cgroup",
    [
        ("Out of memory: Kill process 25910 (ruby) score 979 or sacrifice child", "ruby", 25910, None, None, False),
        (OLD_KILLED, "ruby", 25910, 15310180, 16287724, False),
        (NEW_KILLED, "java", 1234, 7900000, 8123456, False),
        (
            "Memory cgroup out of memory: Killed process 4242 (node) total-vm:1200000kB, anon-rss:1048576kB, "
            "file-rss:0kB, shmem-rss:0kB, UID:0 pgtables:2400kB oom_score_adj:0",
            "node", 4242, 1048576, 1200000, True,
        ),
        ("Memory cgroup out of memory: Kill process 77 (php-fpm) score 1000 or sacrifice child", "php-fpm", 77, None, None, True),
        (
            "Out of memory: Killed process 3141 (Web Content) total-vm:3000000kB, anon-rss:2097152kB, file-rss:0kB",
            "Web Content", 3141, 2097152, 3000000, False,
        ),
        ("Killed process 99 (a (b) c) total-vm:10kB, anon-rss:5kB, file-rss:0kB", "a (b) c", 99, 5, 10, False),
        ("Out of memory: Kill process 98 (x) y) score 1 or sacrifice child", "x) y", 98, None, None, False),
        ("Killed process 2592, UID 27, (mysqld) total-vm:2097152kB, anon-rss:1048576kB, file-rss:0kB", "mysqld", 2592, 1048576, 2097152, False),
        ("Killed process 11 (truncated)", "truncated", 11, None, None, False),
    ],
)
def test_kill_line_formats(line, process, pid, anon_kb, vm_kb, cgroup):
    (kill,) = parse_console(console(line)).oom_kills
    assert (kill.process, kill.pid, kill.anon_rss_kb, kill.total_vm_kb, kill.cgroup) == (process, pid, anon_kb, vm_kb, cgroup)
    assert kill.line == line


def test_process_name_with_spaces_in_invoker():
    findings = parse_console(console("[ 5.1] Web Content invoked oom-killer: gfp_mask=0x140dca, order=0", NEW_KILLED))
    assert findings.invoked_oom_killer == ("Web Content",)
    assert findings.oom_kills[0].invoker == "Web Content"


def test_several_kills_each_keep_their_invoker_and_the_summary_caps():
    text = console(
        OLD_INVOKED, OLD_KILL, OLD_KILLED,
        "sidekiq invoked oom-killer: gfp_mask=0x201da, order=0, oom_score_adj=0",
        "Out of memory: Kill process 25911 (ruby) score 900 or sacrifice child",
        "Killed process 25911 (ruby) total-vm:9000000kB, anon-rss:8388608kB, file-rss:0kB",
        "Out of memory: Killed process 3 (a) total-vm:2kB, anon-rss:1kB, file-rss:0kB",
        "Out of memory: Killed process 4 (b) total-vm:2kB, anon-rss:1kB, file-rss:0kB",
    )
    findings = parse_console(text)
    assert [(k.pid, k.invoker) for k in findings.oom_kills] == [
        (25910, "ucrawler.rb:213"), (25911, "sidekiq"), (3, None), (4, None)
    ]
    assert findings.invoked_oom_killer == ("ucrawler.rb:213", "sidekiq")
    assert findings.summary == (
        "oom-killer killed ruby pid 25910, anon-rss 14.6 GiB; ruby pid 25911, anon-rss 8.0 GiB; "
        "a pid 3, anon-rss 0.0 GiB (+1 more)"
    )


def test_a_reused_pid_after_a_complete_record_is_a_new_kill():
    findings = parse_console(console(OLD_KILL, OLD_KILLED, OLD_KILL, OLD_KILLED))
    assert len(findings.oom_kills) == 2


def test_kill_without_sizes_then_different_pid_does_not_merge():
    findings = parse_console(console(OLD_KILL, NEW_KILLED))
    assert [(k.pid, k.anon_rss_kb) for k in findings.oom_kills] == [(25910, None), (1234, 7900000)]


def test_invoked_without_a_kill_is_still_oom():
    findings = parse_console(console(OLD_INVOKED))
    assert findings.cause is ConsoleCause.OOM
    assert findings.oom_kills == ()
    assert findings.summary == "oom-killer invoked by ucrawler.rb:213; no kill recorded in the console output"


def test_oom_reaper_and_oom_kill_constraint_lines_are_not_kills():
    findings = parse_console(
        console(
            "oom-kill:constraint=CONSTRAINT_NONE,nodemask=(null),cpuset=/,mems_allowed=0,task=java,pid=1234,uid=1000",
            NEW_KILLED,
            "oom_reaper: reaped process 1234 (java), now anon-rss:0kB, file-rss:0kB, shmem-rss:0kB",
        )
    )
    assert len(findings.oom_kills) == 1
    assert findings.oom_kills[0].anon_rss_kb == 7900000


# --- panics and hung tasks ---------------------------------------------------------------------


def test_panic_wins_and_keeps_the_oom_context():
    text = console(
        OLD_INVOKED, OLD_KILL, OLD_KILLED,
        "[ 1240.000001] Kernel panic - not syncing: Out of memory: system-wide panic_on_oom is enabled",
        "[ 1240.000002] ---[ end Kernel panic - not syncing: Out of memory: system-wide panic_on_oom is enabled ]---",
    )
    findings = parse_console(text)
    assert findings.cause is ConsoleCause.PANIC
    assert findings.panic_lines == ("Kernel panic - not syncing: Out of memory: system-wide panic_on_oom is enabled",)
    assert len(findings.oom_kills) == 1
    assert findings.summary == (
        "kernel panic - not syncing: Out of memory: system-wide panic_on_oom is enabled "
        "(after oom-killer killed ruby pid 25910, anon-rss 14.6 GiB)"
    )


@pytest.mark.parametrize(
    "line",
    [
        "Kernel panic - not syncing: VFS: Unable to mount root fs on unknown-block(0,0)",
        "Nov 12 03:14:15 host kernel: [   12.1] Kernel panic - not syncing: Attempted to kill init! exitcode=0x00000009",
        "Kernel panic - not syncing: Out of memory and no killable processes...",
    ],
)
def test_panic_formats(line):
    findings = parse_console(console(line))
    assert findings.cause is ConsoleCause.PANIC
    assert findings.panic_lines[0].startswith("Kernel panic - not syncing: ")
    assert findings.summary.startswith("kernel panic - not syncing: ")


def test_hung_tasks():
    findings = parse_console(
        console(
            "[  363.412421] INFO: task kworker/0:1:123 blocked for more than 120 seconds.",
            '[  363.412500] "echo 0 > /proc/sys/kernel/hung_task_timeout_secs" disables this message.',
            "Nov 12 03:14:15 host kernel: INFO: task jbd2/nvme0n1p1-:245 blocked for more than 122 seconds.",
        )
    )
    assert findings.cause is ConsoleCause.HUNG_TASK
    assert findings.hung_task_lines == (
        "INFO: task kworker/0:1:123 blocked for more than 120 seconds.",
        "INFO: task jbd2/nvme0n1p1-:245 blocked for more than 122 seconds.",
    )
    assert findings.summary == "2 hung task warnings, first: task kworker/0:1:123 blocked for more than 120 seconds."


def test_oom_outranks_hung_tasks():
    text = console("INFO: task kworker/0:1:123 blocked for more than 120 seconds.", NEW_KILLED)
    findings = parse_console(text)
    assert findings.cause is ConsoleCause.OOM
    assert len(findings.hung_task_lines) == 1


# --- nothing found, garbage, huge ----------------------------------------------------------------


@pytest.mark.parametrize(
    "text, summary",
    [
        ("", "console output empty"),
        ("\n\n   \n", "console output empty"),
        (NOISE, "no oom kill, kernel panic or hung task in the console output"),
        ("java.lang.OutOfMemoryError: Java heap space\nKilled\n", "no oom kill, kernel panic or hung task in the console output"),
    ],
)
def test_nothing_to_report(text, summary):
    findings = parse_console(text)
    assert findings.cause is ConsoleCause.UNKNOWN
    assert (findings.oom_kills, findings.panic_lines, findings.hung_task_lines, findings.invoked_oom_killer) == ((), (), (), ())
    assert findings.summary == summary


def test_garbage_bytes_around_a_kill_do_not_hide_it():
    raw = b"\x00\xff\xfe\x1b[2J\x80\x81 binary junk\r\n" + NEW_KILLED.encode() + b"\r\n\xc3\x28\xa0\xa1\x00"
    findings = parse_console(raw.decode("utf-8", errors="replace"))
    assert findings.cause is ConsoleCause.OOM
    assert findings.oom_kills[0].pid == 1234


def test_only_the_tail_of_huge_output_is_read():
    head_kill = "Out of memory: Killed process 1 (early) total-vm:2kB, anon-rss:1kB, file-rss:0kB\n"
    filler = "x" * 80 + "\n"
    text = head_kill + filler * (MAX_SCAN_CHARS // len(filler) + 10) + NEW_KILLED + "\n"
    findings = parse_console(text)
    assert [k.process for k in findings.oom_kills] == ["java"]


@pytest.mark.parametrize(
    "text",
    [
        "Killed process 1 (" * 6_000 + ") total-vm:1kB",
        "INFO: task " * 9_000 + " blocked for more than",
        "x" * 100_000 + " invoked oom-killer: gfp_mask=0x0",
        "[ 1.0]" * 50_000,
        "Kill process 1 (" * 20_000,  # one line longer than the scan limit
    ],
)
def test_pathological_lines_are_cut_not_crawled(text):
    # Each line is cut to MAX_LINE_CHARS before any pattern runs; this would take
    # minutes with backtracking over the whole line.
    findings = parse_console(text)
    assert findings.summary


@hyp_settings(max_examples=300, deadline=None)
@given(st.text())
def test_parse_console_never_raises_on_any_text(text):
    findings = parse_console(text)
    assert isinstance(findings.summary, str) and findings.summary
    assert (findings.cause is ConsoleCause.OOM) <= (bool(findings.oom_kills) or bool(findings.invoked_oom_killer) or "Out of memory" in text)


_fragments = st.sampled_from(
    [OLD_INVOKED, OLD_KILL, OLD_KILLED, NEW_KILLED, "Kernel panic - not syncing: x", "INFO: task a:1 blocked for more than 1 seconds.",
     "[ 1.0] ", "Nov 12 03:14:15 h kernel: ", "(", ")", "Kill process ", "Killed process 5 (", "\n", "\r", "\x00", "\ufffd"]
)


@hyp_settings(max_examples=300, deadline=None)
@given(st.lists(_fragments, max_size=40).map("".join))
def test_parse_console_never_raises_on_shuffled_kernel_fragments(text):
    findings = parse_console(text)
    for kill in findings.oom_kills:
        assert kill.pid is None or kill.pid >= 0
        assert kill.line

"""The shell script the guard runs on a box: apply, status or remove. Pure text from a ``GuardSpec``.

POSIX sh (AWS-RunShellScript runs it with ``sh``, which is dash on Debian and Ubuntu).
Idempotent: a second apply changes nothing and a file is written only when its text
differs. Everything apply writes is listed in a manifest (/var/lib/orch-guard/manifest):
files and directories it created, oom_score_adj values it changed (with the old value),
cgroups it created and the processes it moved (with where from), limits it wrote into a
unit's cgroup. ``remove`` walks the manifest backwards and undoes exactly those lines;
a file already there that apply did not write is never touched (apply refuses instead).

Status goes to stdout as lines ``ORCH_GUARD <kind> key=value ...`` (values without spaces)
that ``parse_status`` reads; anything else on stdout is ignored.
"""

from __future__ import annotations

import enum
import shlex
from dataclasses import dataclass, field

from orchestrator.guard.plan import DROPIN, SHIELDED_PROCESSES, SHIELDED_UNITS, GuardSpec, bound_dropin, earlyoom_dropin, shield_dropin

MARK = "ORCH_GUARD"
STATE_DIR = "/var/lib/orch-guard"
VERSION = 1


class Action(str, enum.Enum):
    APPLY = "apply"
    STATUS = "status"
    REMOVE = "remove"


_LIB = r"""
say() { echo "ORCH_GUARD $*"; }
has_systemd() { [ -d "$SYSTEMD_RUN" ] && command -v systemctl >/dev/null 2>&1; }
v2() { [ -f "$CGROOT/cgroup.controllers" ]; }
recorded() { [ -f "$MANIFEST" ] && grep -qxF "$1" "$MANIFEST"; }
recorded_prefix() { [ -f "$MANIFEST" ] && grep -q "^$1" "$MANIFEST"; }
record() { recorded "$1" || echo "$1" >> "$MANIFEST"; }
mkdirs() {  # create a directory, recording each level it creates
  [ -d "$1" ] && return 0
  mkdirs "$(dirname "$1")"
  mkdir "$1" && record "dir $1"
}
put() {  # put PATH: stdin to PATH when it differs; never over a file orch did not write
  _p=$1
  if [ -e "$_p" ] && ! recorded "file $_p"; then
    say error path=$_p reason=exists-not-written-by-orch; cat >/dev/null; return 1
  fi
  mkdirs "$(dirname "$_p")"
  cat > "$_p.orch-tmp"
  if [ -f "$_p" ] && cmp -s "$_p.orch-tmp" "$_p"; then rm -f "$_p.orch-tmp"; say file path=$_p changed=no
  else mv "$_p.orch-tmp" "$_p"; CHANGED=1; say file path=$_p changed=yes; fi
  record "file $_p"
}
unit_of() {  # the .service a pid runs in (empty: none)
  grep -E '^(0::|[0-9]+:name=systemd:)' "$PROC/$1/cgroup" 2>/dev/null | grep -o '[^/]*\.service' | tail -n 1
}
memcg_of() {  # the memory cgroup directory of a pid
  if v2; then _c=$(sed -n 's/^0:://p' "$PROC/$1/cgroup"); echo "$CGROOT${_c%/}"
  else _c=$(grep -E '^[0-9]+:([^:]*,)?memory(,[^:]*)?:' "$PROC/$1/cgroup" | cut -d: -f3); echo "$CGROOT/memory${_c%/}"; fi
}
limit_file() { if v2; then echo memory.max; else echo memory.limit_in_bytes; fi; }
read_limit() { cat "$1/$(limit_file)" 2>/dev/null || echo unknown; }
oom_kills() {  # kills by the memory controller in cgroup $1
  if v2; then _k=$(awk '$1=="oom_kill"{print $2}' "$1/memory.events" 2>/dev/null)
  else _k=$(awk '$1=="oom_kill"{print $2}' "$1/memory.oom_control" 2>/dev/null); fi
  echo "${_k:-unknown}"
}
prop() { systemctl show -p "$2" "$1" 2>/dev/null | sed -n "s/^$2=//p"; }
systemd_version() { systemctl --version 2>/dev/null | awk 'NR==1{print $2+0}'; }
leaker() { pgrep -xo "$PROCESS" 2>/dev/null; }
parent_comm() { _pp=$(awk '{print $4}' "$PROC/$1/stat" 2>/dev/null); cat "$PROC/$_pp/comm" 2>/dev/null; }
parent_of() { awk '{print $4}' "$PROC/$1/stat" 2>/dev/null; }
mem_total_bytes() { awk '/^MemTotal:/{print $2 * 1024}' "$PROC/meminfo"; }
share_bytes() { awk -v t="$(mem_total_bytes)" -v p="$1" 'BEGIN{printf "%.0f", int(t * p / 100 / 4096) * 4096}'; }
set_oom() {  # set_oom PID: -1000 now, old value recorded once
  [ -r "$PROC/$1/oom_score_adj" ] || return 0
  _old=$(cat "$PROC/$1/oom_score_adj"); _comm=$(cat "$PROC/$1/comm")
  [ "$_old" = -1000 ] && { say shield pid=$1 process=$_comm oom_score_adj=-1000 changed=no; return 0; }
  if (echo -1000 > "$PROC/$1/oom_score_adj") 2>/dev/null; then
    recorded_prefix "oom $1 " || record "oom $1 $_old $_comm"
    say shield pid=$1 process=$_comm oom_score_adj=-1000
  else
    say error pid=$1 process=$_comm reason=cannot-set-oom_score_adj; return 1
  fi
}
"""

_APPLY = r"""
apply_shields() {
  if has_systemd; then
    _seen=""
    for u in $SHIELD_UNITS; do
      [ "$(prop "$u" LoadState)" = loaded ] || continue
      _id=$(prop "$u" Id); case " $_seen " in *" $_id "*) continue;; esac; _seen="$_seen $_id"
      put "$UNITDIR/$_id.d/$DROPIN" <<'ORCH_EOF' || { FAILED=1; continue; }
__SHIELD__ORCH_EOF
      _pid=$(prop "$_id" MainPID); [ "${_pid:-0}" -gt 0 ] && set_oom "$_pid"
      say shield unit=$_id oom_score_adj=-1000
    done
  else
    for p in $SHIELD_PROCESSES; do for pid in $(pgrep -x "$p"); do set_oom "$pid"; done; done
  fi
}
own_cgroup() {  # own_cgroup PID...: the supervisor and its children in a cgroup of their own
  if v2; then
    CG="$CGROOT$CGPARENT/$CGNAME"
    if ! grep -qw memory "$CGROOT$CGPARENT/cgroup.subtree_control"; then
      echo +memory > "$CGROOT$CGPARENT/cgroup.subtree_control" && record "subtree $CGROOT$CGPARENT"
    fi
  else
    CG="$CGROOT/memory$CGPARENT/$CGNAME"
  fi
  [ -d "$CG" ] || { mkdir "$CG" && record "cgroup $CG"; } || { say error reason=cannot-create-cgroup path=$CG; return 1; }
  if v2; then echo "$HIGH_BYTES" > "$CG/memory.high"; echo "$MAX_BYTES" > "$CG/memory.max"
  else echo "$MAX_BYTES" > "$CG/memory.limit_in_bytes"; echo "$HIGH_BYTES" > "$CG/memory.soft_limit_in_bytes"; fi
  for pid in "$@"; do
    _from=$(memcg_of "$pid"); [ "$_from" = "$CG" ] && continue
    recorded_prefix "moved $pid " || record "moved $pid $_from"
    echo "$pid" > "$CG/cgroup.procs"
  done
  say bound process=$PROCESS cgroup=$CG limit_bytes=$(read_limit "$CG") how=own-cgroup
}
apply_bound() {
  [ -n "$PROCESS" ] || { say note reason=no-process-shields-only; return 0; }
  _pid=$(leaker)
  [ -n "$_pid" ] || { say error reason=process-not-running process=$PROCESS; return 1; }
  MAX_BYTES=$(share_bytes "$LIMIT_PERCENT"); HIGH_BYTES=$(share_bytes "$HIGH_PERCENT")
  _unit=$(unit_of "$_pid"); _parent=$(parent_of "$_pid")
  if has_systemd && [ -n "$_unit" ] && [ "$(parent_comm "$_pid")" != supervise ]; then
    if [ "$(systemd_version)" -ge 231 ]; then
      put "$UNITDIR/$_unit.d/$DROPIN" <<ORCH_EOF || return 1
__BOUND__ORCH_EOF
    else
      put "$UNITDIR/$_unit.d/$DROPIN" <<ORCH_EOF || return 1
__LEGACY__ORCH_EOF
    fi
    _cg=$(memcg_of "$_pid")
    if [ -d "$_cg" ] && [ "$(read_limit "$_cg")" != "$MAX_BYTES" ]; then
      _oldhigh=-; v2 && _oldhigh=$(cat "$_cg/memory.high")
      recorded_prefix "limit $_cg " || record "limit $_cg $(read_limit "$_cg") $_oldhigh"
      echo "$MAX_BYTES" > "$_cg/$(limit_file)"
      v2 && echo "$HIGH_BYTES" > "$_cg/memory.high"
    fi
    say bound process=$PROCESS unit=$_unit cgroup=$_cg limit_bytes=$(read_limit "$_cg") how=systemd
  elif [ "$(parent_comm "$_pid")" = supervise ]; then
    own_cgroup "$_parent" $(pgrep -P "$_parent")
  else
    own_cgroup "$_pid"
  fi
}
apply_earlyoom() {
  [ "$EARLYOOM" = 1 ] && has_systemd && [ -x /usr/bin/earlyoom ] || return 0
  put "$UNITDIR/earlyoom.service.d/$DROPIN" <<'ORCH_EOF'
__EARLYOOM__ORCH_EOF
  RESTART_EARLYOOM=1
}
do_apply() {
  mkdir -p "$STATE"; touch "$MANIFEST"; chmod 600 "$MANIFEST"
  grep -q '^version ' "$MANIFEST" || echo "version $VERSION" >> "$MANIFEST"
  grep -q '^since ' "$MANIFEST" || echo "since $(date +%s)" >> "$MANIFEST"  # when the guard began: what status judges from
  CHANGED=0; RESTART_EARLYOOM=0; FAILED=0
  apply_shields || FAILED=1
  apply_bound || FAILED=1
  apply_earlyoom || FAILED=1
  if has_systemd && [ "$CHANGED" = 1 ]; then systemctl daemon-reload; fi
  [ "$RESTART_EARLYOOM" = 1 ] && [ "$CHANGED" = 1 ] && systemctl try-restart earlyoom.service
  say state applied=yes changed=$([ "$CHANGED" = 1 ] && echo yes || echo no) version=$VERSION
  do_status_lines
  return $FAILED
}
"""

_STATUS = r"""
do_status_lines() {
  if [ -f "$MANIFEST" ]; then say state applied=yes entries=$(grep -vc '^version \|^since ' "$MANIFEST") since=$(sed -n 's/^since //p' "$MANIFEST")
  else say state applied=no; fi
  [ -n "$PROCESS" ] || return 0
  _pid=$(leaker)
  if [ -z "$_pid" ]; then say service process=$PROCESS running=no; return 0; fi
  _cg=$(memcg_of "$_pid"); _unit=$(unit_of "$_pid")
  _restarts=unknown; _result=unknown
  if [ -n "$_unit" ] && has_systemd; then _restarts=$(prop "$_unit" NRestarts); _result=$(prop "$_unit" Result); fi
  say service process=$PROCESS running=yes pid=$_pid unit=${_unit:-none} cgroup=$_cg limit_bytes=$(read_limit "$_cg") \
    oom_kills=$(oom_kills "$_cg") restarts=${_restarts:-unknown} last_stop=${_result:-unknown}
  for p in $SHIELD_PROCESSES; do for pid in $(pgrep -x "$p"); do
    say shielded process=$p pid=$pid oom_score_adj=$(cat "$PROC/$pid/oom_score_adj" 2>/dev/null)
  done; done
}
do_status() { do_status_lines; }
"""

_REMOVE = r"""
undo() {  # one manifest line
  set -- $1
  case "$1" in
    file) rm -f "$2" && say removed path=$2 ;;
    dir) rmdir "$2" 2>/dev/null && say removed path=$2 ;;
    oom) if [ "$(cat "$PROC/$2/comm" 2>/dev/null)" = "$4" ]; then echo "$3" > "$PROC/$2/oom_score_adj" && say restored pid=$2 oom_score_adj=$3; fi ;;
    moved) ;;  # handled with its cgroup
    limit) echo "$3" > "$2/$(limit_file)"; [ "$4" = - ] || echo "$4" > "$2/memory.high"
           say restored cgroup=$2 limit_bytes=$3 ;;
    cgroup)
      for pid in $(cat "$2/cgroup.procs" 2>/dev/null); do
        _to=$(sed -n "s#^moved $pid ##p" "$MANIFEST" | head -n 1)
        if [ -z "$_to" ]; then _pp=$(parent_of "$pid"); _to=$(sed -n "s#^moved $_pp ##p" "$MANIFEST" | head -n 1); fi
        [ -n "$_to" ] || _to=$(sed -n 's#^moved [0-9]* ##p' "$MANIFEST" | head -n 1)
        echo "$pid" > "$_to/cgroup.procs"
      done
      rmdir "$2" && say removed cgroup=$2 ;;
    subtree) ;;  # the memory controller stays enabled: other cgroups may use it by now
  esac
}
do_remove() {
  if [ ! -f "$MANIFEST" ]; then say state applied=no removed=nothing; return 0; fi
  sed '1!G;h;$!d' "$MANIFEST" | while IFS= read -r line; do undo "$line"; done
  rm -f "$MANIFEST"; rmdir "$STATE" 2>/dev/null
  if has_systemd; then systemctl daemon-reload; [ -x /usr/bin/earlyoom ] && systemctl try-restart earlyoom.service; fi
  say state applied=no removed=yes
}
"""

_MAIN = r"""
case "$ACTION" in
  apply) do_apply ;;
  status) do_status ;;
  remove) do_remove ;;
esac
"""


@dataclass(frozen=True, slots=True)
class Paths:
    """Where the script looks; every one moves for tests only (a fake /proc, cgroup tree and systemctl)."""

    state: str = STATE_DIR
    cgroup_root: str = "/sys/fs/cgroup"
    cgroup_parent: str = ""  # the guard's own cgroup is made under this one ("" = the root), e.g. "/process_api/x"
    proc: str = "/proc"
    unit_dir: str = "/etc/systemd/system"
    systemd_run: str = "/run/systemd/system"
    bin_path: str = "/usr/sbin:/usr/bin:/sbin:/bin"
    shield_processes: tuple[str, ...] = SHIELDED_PROCESSES


def _settings(spec: GuardSpec, action: Action, paths: Paths) -> str:
    values = {
        "ACTION": action.value,
        "PROCESS": spec.process,
        "LIMIT_PERCENT": f"{spec.limit_percent:g}",
        "HIGH_PERCENT": f"{spec.high_percent:g}",
        "EARLYOOM": "1" if spec.earlyoom else "0",
        "CGNAME": spec.cgroup_name,
        "SHIELD_UNITS": " ".join(SHIELDED_UNITS),
        "SHIELD_PROCESSES": " ".join(paths.shield_processes),
        "DROPIN": DROPIN,
        "STATE": paths.state,
        "MANIFEST": f"{paths.state}/manifest",
        "CGROOT": paths.cgroup_root,
        "CGPARENT": paths.cgroup_parent,
        "PROC": paths.proc,
        "UNITDIR": paths.unit_dir,
        "SYSTEMD_RUN": paths.systemd_run,
        "PATH": paths.bin_path,
        "VERSION": str(VERSION),
    }
    return "\n".join(f"{k}={shlex.quote(v)}" for k, v in values.items())


def render(spec: GuardSpec, action: Action, paths: Paths = Paths()) -> str:
    """The whole script for one action."""
    apply = (
        _APPLY.replace("__SHIELD__", shield_dropin())
        .replace("__BOUND__", bound_dropin(spec, "$MAX_BYTES", "$HIGH_BYTES"))
        .replace("__LEGACY__", bound_dropin(spec, "$MAX_BYTES", "$HIGH_BYTES", legacy=True))
        .replace("__EARLYOOM__", earlyoom_dropin(spec))
    )
    head = f"#!/bin/sh\n# orch guard {action.value} (version {VERSION}): written by orch, see docs/guard.md\nset -u\n"
    body = {Action.APPLY: apply, Action.STATUS: "", Action.REMOVE: _REMOVE}[action]
    return head + _settings(spec, action, paths) + _LIB + _STATUS + body + _MAIN


def commands(spec: GuardSpec, action: Action) -> list[str]:
    """AWS-RunShellScript's ``commands`` parameter: the script's lines (the plugin joins them with newlines)."""
    return render(spec, action).splitlines()


# -- what the box said ------------------------------------------------------------------------


@dataclass
class BoxStatus:
    """The status lines of one run, read back."""

    applied: bool | None = None  # None: the script said nothing (did not run)
    since: int | None = None  # epoch seconds the guard was first applied (the manifest's "since" line)
    changed: bool | None = None
    removed: bool = False
    files: list[str] = field(default_factory=list)
    shields: list[dict[str, str]] = field(default_factory=list)
    bound: dict[str, str] = field(default_factory=dict)
    service: dict[str, str] = field(default_factory=dict)
    errors: list[dict[str, str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def parse_line(line: str) -> tuple[str, dict[str, str]] | None:
    parts = line.strip().split()
    if len(parts) < 2 or parts[0] != MARK:
        return None
    fields = dict(p.split("=", 1) for p in parts[2:] if "=" in p)
    return parts[1], fields


def parse_status(stdout: str) -> BoxStatus:
    status = BoxStatus()
    for line in stdout.splitlines():
        parsed = parse_line(line)
        if parsed is None:
            continue
        kind, fields = parsed
        if kind == "state":
            status.applied = fields.get("applied") == "yes"
            if "changed" in fields:
                status.changed = fields["changed"] == "yes"
            status.removed = status.removed or fields.get("removed") == "yes"
            if fields.get("since", "").isdigit():
                status.since = int(fields["since"])
        elif kind == "file":
            status.files.append(fields.get("path", ""))
        elif kind in ("shield", "shielded"):
            status.shields.append(fields)
        elif kind == "bound":
            status.bound = fields
        elif kind == "service":
            status.service = fields
        elif kind == "error":
            status.errors.append(fields)
        elif kind == "note":
            status.notes.append(fields.get("reason", ""))
    return status

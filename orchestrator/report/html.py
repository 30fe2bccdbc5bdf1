"""`orch report --html`: one self-contained page from a `ReportPage`. Pure: data in, text out.

The page must open anywhere, offline, from an e-mail attachment or a ticket: CSS and SVG
are inline, there is no script and no URL, and a Content-Security-Policy forbids loading
anything at all. Every string that came from AWS (Name tags, reasons, tag values) is
untrusted and escaped; ids are reduced to safe characters before they become attributes.
Laid out for 3 a.m.: the boxes that need a look lead, in red, with their memory drawn
against the critical line; the healthy rest follow as small charts; the timeline is last.
"""

from __future__ import annotations

import re
from datetime import timedelta
from html import escape
from typing import Iterable

from orchestrator.decide.patterns import PatternRow
from orchestrator.report.page import InstanceView, ReportPage, TimelineEvent
from orchestrator.report.svg_chart import Frame, memory_chart

MAX_CHARTS = 300  # per section; the rest are rows of a table
CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"
_UNSAFE_ID = re.compile(r"[^A-Za-z0-9_-]")

CSS = """
:root { color-scheme: dark; }
* { box-sizing: border-box; }
body { margin: 0; padding: 20px 28px 40px; background: #0e1217; color: #d6dde6;
  font: 14px/1.45 -apple-system, "Segoe UI", "DejaVu Sans", Helvetica, Arial, sans-serif; }
h1 { font-size: 22px; margin: 0 0 4px; }
h2 { font-size: 17px; margin: 28px 0 10px; padding-bottom: 4px; border-bottom: 1px solid #28313c; }
.meta, .dim { color: #8b96a5; }
code, .mono { font-family: "DejaVu Sans Mono", Menlo, Consolas, monospace; font-size: 12.5px; }
.headline { display: flex; align-items: baseline; gap: 18px; flex-wrap: wrap; margin: 14px 0 6px; }
.headline .big { font-size: 30px; font-weight: 700; }
.headline .big.bad { color: #ff5c5c; }
.headline .big.good { color: #3ecf8e; }
.chips { display: flex; gap: 8px; flex-wrap: wrap; }
.chip { border-radius: 12px; padding: 2px 10px; font-weight: 600; font-size: 13px; background: #1b222b; border: 1px solid var(--c); color: var(--c); }
nav a { color: #7fb4ff; margin-right: 14px; text-decoration: none; }
.verdict-unreachable { --c: #ff5c5c; }
.verdict-aws-impaired { --c: #ff8a4c; }
.verdict-memory-critical { --c: #e06cf7; }
.verdict-memory-exhaustion-forecast { --c: #f7c948; }
.verdict-metrics-stale { --c: #e8b34a; }
.verdict-unknown { --c: #9aa5b4; }
.verdict-healthy { --c: #3ecf8e; }
.cards { display: grid; gap: 14px; }
.attention { grid-template-columns: repeat(auto-fill, minmax(min(560px, 100%), 1fr)); }
.healthy-grid { grid-template-columns: repeat(auto-fill, minmax(min(290px, 100%), 1fr)); gap: 10px; }
.card { background: #161c24; border: 1px solid #262f3a; border-left: 5px solid var(--c); border-radius: 6px; padding: 10px 12px; }
.attention .card { background: #1c1a20; }
.card .top { display: flex; justify-content: space-between; gap: 10px; align-items: baseline; }
.card .name { font-weight: 700; font-size: 15px; overflow-wrap: anywhere; }
.badge { color: #0e1217; background: var(--c); border-radius: 4px; padding: 1px 7px; font-weight: 700; font-size: 12px; white-space: nowrap; }
.flags { margin: 4px 0; display: flex; gap: 6px; flex-wrap: wrap; }
.flag { font-size: 11.5px; border: 1px solid #46505c; border-radius: 4px; padding: 0 6px; color: #c2cad4; }
.flag.warn { border-color: #ff8a4c; color: #ffb38a; }
.facts { display: grid; grid-template-columns: auto 1fr; gap: 0 10px; font-size: 13px; margin: 6px 0; }
.facts dt { color: #8b96a5; }
.facts dd { margin: 0; }
.reasons { margin: 6px 0 0; padding-left: 18px; font-size: 13px; color: #e4c9c9; }
.healthy-grid .card { padding: 6px 8px; }
.healthy-grid .name { font-size: 13px; }
.memory-chart { display: block; width: 100%; height: auto; margin-top: 4px; }
.memory-chart .grid { stroke: #2a333e; stroke-width: 1; }
.memory-chart .axis { fill: #7d8896; font-size: 9px; }
.memory-chart .critical { stroke: #ff5c5c; stroke-width: 1.2; stroke-dasharray: 5 3; }
.memory-chart .critical-label { fill: #ff7b7b; font-size: 9px; }
.memory-chart .exhaustion { stroke: #ff9f43; stroke-width: 0.8; stroke-dasharray: 1 3; opacity: 0.8; }
.memory-chart .memory { fill: none; stroke: var(--c); stroke-width: 1.8; stroke-linejoin: round; }
.memory-chart .area { fill: var(--c); opacity: 0.16; }
.memory-chart .now { fill: var(--c); }
.memory-chart .no-data { fill: #8b96a5; font-size: 11px; }
.memory-chart .action-mark line { stroke: #7fb4ff; stroke-width: 1.2; }
.memory-chart .action-mark text { fill: #7fb4ff; font-size: 9px; font-weight: 700; }
table { border-collapse: collapse; width: 100%; font-size: 13px; }
th { text-align: left; color: #8b96a5; font-weight: 600; border-bottom: 1px solid #2c3540; padding: 4px 8px; }
td { border-bottom: 1px solid #1e252e; padding: 3px 8px; vertical-align: top; overflow-wrap: anywhere; }
tr.severe td { color: #ffb0b0; }
tr.severe td.kind { color: #ff5c5c; font-weight: 700; }
td.kind { white-space: nowrap; font-weight: 600; }
tr.kind-action td.kind, tr.kind-verified td.kind { color: #7fb4ff; }
tr.kind-sweep td { color: #9aa5b4; }
td.when { white-space: nowrap; }
td.who { width: 190px; } td.who .id { white-space: nowrap; } .who-name { color: #aab4c0; }
.groups { display: grid; grid-template-columns: repeat(auto-fill, minmax(min(560px, 100%), 1fr)); gap: 14px 20px; }
.groups h3 { margin: 6px 0 2px; font-size: 14px; }
.groups td.value { overflow-wrap: normal; white-space: nowrap; }
.groups .id { white-space: nowrap; display: inline-block; margin-right: 8px; }
.legend { font-size: 12.5px; color: #8b96a5; margin: -4px 0 10px; }
.legend .k-critical { color: #ff7b7b; } .legend .k-exhaustion { color: #ff9f43; } .legend .k-action { color: #7fb4ff; }
.groups tr.trouble td { color: #ffb0b0; font-weight: 600; }
.chronic { background: #211a14; border: 1px solid #5c4020; border-left: 5px solid #ff9f43; border-radius: 6px; padding: 8px 12px; margin-bottom: 8px; }
.empty { color: #3ecf8e; }
/* A phone (420 px): one column, smaller margins, the timeline's instance column as wide as
   its text; a table wider than the screen scrolls inside itself, never the page. */
@media (max-width: 640px) {
  body { padding: 12px 10px 28px; }
  .headline .big { font-size: 24px; }
  td.who { width: auto; }
  th, td { padding: 3px 4px; }
  table { display: block; overflow-x: auto; max-width: 100%; }
  .groups td.value { white-space: normal; overflow-wrap: anywhere; }
  nav a { display: inline-block; margin: 2px 10px 2px 0; }
}
"""


def safe_id(value: str) -> str:
    """An HTML id from an untrusted string: only letters, digits, '-' and '_'."""
    return _UNSAFE_ID.sub("_", value) or "_"


def _e(value: object) -> str:
    return escape(str(value), quote=True)


def _verdict_class(view: InstanceView) -> str:
    return "verdict-" + safe_id(view.verdict.value)


def _flags(view: InstanceView) -> str:
    flags: list[tuple[str, bool]] = []
    if view.quarantined is not None:
        flags.append((f"quarantined: {view.quarantined}", True))
    if view.chronic:
        flags.append(("chronic", True))
    if view.in_flight:
        flags.append(("action in flight", False))
    if view.opted_out:
        flags.append(("opted out: orch will not act", False))
    if view.rung:
        flags.append((f"ladder rung {view.rung}", False))
    if not flags:
        return ""
    return (
        '<div class="flags">' + "".join(f'<span class="flag{" warn" if warn else ""}">{_e(text)}</span>' for text, warn in flags) + "</div>"
    )


def _memory_text(view: InstanceView) -> str:
    if view.memory_percent is None:
        return "no data"
    text = f"{view.memory_percent:.0f}%"
    if view.slope_per_min is not None and abs(view.slope_per_min) >= 0.05:
        text += f", {view.slope_per_min:+.1f}%/min"
    if view.minutes_to_exhaustion is not None:
        text += ", out of memory now" if view.minutes_to_exhaustion < 1 else f", runs out in about {view.minutes_to_exhaustion:.0f} min"
    return text


def _chart(view: InstanceView, page: ReportPage, frame: Frame) -> str:
    label = f"memory of {view.name or view.instance_id} over the last {page.window_minutes} minutes"
    return memory_chart(
        view.memory_points,
        frame,
        chart_id=f"mem-{safe_id(view.instance_id)}",
        css_class=_verdict_class(view),
        critical_percent=page.critical_percent,
        exhaustion_percent=page.exhaustion_percent,
        marks=view.actions,
        title=label,
    )


def _heading(view: InstanceView) -> str:
    name = _e(view.name) if view.name else '<span class="dim">(no Name)</span>'
    return (
        f'<div class="top"><span class="name">{name}</span><span class="badge">{_e(view.verdict.value)}</span></div>'
        f'<div class="meta mono">{_e(view.instance_id)}'
        + (f" · {_e(view.availability_zone)}" if view.availability_zone else "")
        + (f" · {_e(view.instance_type)}" if view.instance_type else "")
        + "</div>"
    )


def _attention_card(view: InstanceView, page: ReportPage, frame: Frame) -> str:
    reasons = "".join(f"<li>{_e(r)}</li>" for r in view.reasons)
    return (
        f'<article class="card instance-card needs-look {_verdict_class(view)}" id="card-{safe_id(view.instance_id)}" '
        f'data-instance="{_e(view.instance_id)}">'
        + _heading(view)
        + _flags(view)
        + f'<dl class="facts"><dt>SSH</dt><dd>{_e(view.probe)}</dd><dt>memory</dt><dd>{_e(_memory_text(view))}</dd></dl>'
        + _chart(view, page, frame)
        + (f'<ul class="reasons">{reasons}</ul>' if reasons else "")
        + "</article>"
    )


def _healthy_card(view: InstanceView, page: ReportPage, frame: Frame) -> str:
    return (
        f'<article class="card instance-card {_verdict_class(view)}" id="card-{safe_id(view.instance_id)}" data-instance="{_e(view.instance_id)}">'
        + _heading(view)
        + _flags(view)
        + f'<div class="meta">SSH {_e(view.probe)} · memory {_e(_memory_text(view))}</div>'
        + _chart(view, page, frame)
        + "</article>"
    )


def _header(page: ReportPage) -> str:
    sick = [v for v in page.instances if v.needs_a_look]
    total = len(page.instances)
    if not total:
        big = '<span class="big">no instances</span>'
    elif sick:
        big = f'<span class="big bad">{len(sick)} of {total} need a look</span>'
    else:
        big = f'<span class="big good">all {total} healthy</span>'
    chips = "".join(f'<span class="chip verdict-{safe_id(kind)}">{n} {_e(kind)}</span>' for kind, n in page.verdict_counts.items())
    return (
        "<header><h1>orch fleet report</h1>"
        f'<div class="meta">generated {page.generated_at:%Y-%m-%d %H:%M:%S} UTC · region {_e(page.region or "-")} · '
        f"selector <code>{_e(page.selector or '-')}</code> · memory window {page.window_minutes} min · "
        f"critical {page.critical_percent:g}%, exhaustion {page.exhaustion_percent:g}%</div>"
        f'<div class="headline">{big}<div class="chips">{chips}</div></div>'
        '<nav><a href="#attention">needs a look</a><a href="#chronic">chronic</a><a href="#changed">what changed</a>'
        '<a href="#fleet">healthy</a><a href="#timeline">timeline</a></nav></header>'
    )


def _frame(page: ReportPage, width: int, height: int) -> Frame:
    return Frame(page.generated_at - timedelta(minutes=page.window_minutes), page.generated_at, width=width, height=height)


def _uncharted(views: list[InstanceView]) -> str:
    """Past MAX_CHARTS a section goes on as rows: a 10,000-instance page still opens (about 3 KB a chart)."""
    if not views:
        return ""
    rows = "".join(
        f'<tr class="uncharted {_verdict_class(v)}" data-instance="{_e(v.instance_id)}"><td class="mono">{_e(v.instance_id)}</td>'
        f"<td>{_e(v.name)}</td><td>{_e(v.verdict.value)}</td><td>{_e(v.probe)}</td><td>{_e(_memory_text(v))}</td></tr>"
        for v in views
    )
    return (
        f'<p class="dim">{len(views)} more, without a chart:</p><table><thead><tr><th>instance</th><th>name</th><th>verdict</th>'
        f"<th>SSH</th><th>memory</th></tr></thead><tbody>{rows}</tbody></table>"
    )


def _attention(page: ReportPage) -> str:
    sick = [v for v in page.instances if v.needs_a_look]
    body = (
        '<div class="cards attention">'
        + "".join(_attention_card(v, page, _frame(page, 540, 150)) for v in sick[:MAX_CHARTS])
        + "</div>"
        + _uncharted(sick[MAX_CHARTS:])
        if sick
        else '<p class="empty">Every instance is healthy.</p>'
    )
    legend = (
        f'<p class="legend">memory used over the last {page.window_minutes} min, 0-100%: '
        f'<span class="k-critical">dashed red</span> critical {page.critical_percent:g}%, '
        f'<span class="k-exhaustion">dotted orange</span> exhaustion {page.exhaustion_percent:g}%, '
        '<span class="k-action">blue marks</span> orch\'s actions</p>'
    )
    return f'<section id="attention"><h2>Needs a look ({len(sick)})</h2>{legend}{body}</section>'


def _healthy(page: ReportPage) -> str:
    fine = [v for v in page.instances if not v.needs_a_look]
    body = (
        '<div class="cards healthy-grid">'
        + "".join(_healthy_card(v, page, _frame(page, 300, 90)) for v in fine[:MAX_CHARTS])
        + "</div>"
        + _uncharted(fine[MAX_CHARTS:])
        if fine
        else '<p class="dim">None.</p>'
    )
    return f'<section id="fleet"><h2>Healthy ({len(fine)})</h2>{body}</section>'


def _chronic(page: ReportPage) -> str:
    if not page.chronic:
        return '<section id="chronic"><h2>Chronic patterns</h2><p class="dim">None: no instance keeps coming back to the same trouble.</p></section>'
    items = "".join(
        f'<div class="chronic"><div>{_e(c.text)}</div><div class="meta mono">{_e(" ".join(c.members))}</div></div>' for c in page.chronic
    )
    return f'<section id="chronic"><h2>Chronic patterns ({len(page.chronic)})</h2>{items}</section>'


def _group_table(name: str, rows: Iterable[PatternRow]) -> str:
    body = []
    for r in rows:
        trouble = r.unhealthy + r.leaking > 0
        which = " ".join(f'<span class="id">{_e(i)}</span>' for i in r.instance_ids[:6]) + (" …" if len(r.instance_ids) > 6 else "")
        body.append(
            f'<tr class="{"trouble" if trouble else ""}"><td class="mono value">{_e(r.value)}</td><td>{r.total}</td>'
            f'<td>{r.unhealthy}</td><td>{r.leaking}</td><td class="mono">{which}</td></tr>'
        )
    return (
        f'<div class="group"><h3 class="meta">{_e(name)}</h3><table><thead><tr><th>value</th><th>instances</th><th>unhealthy</th>'
        f"<th>leaking</th><th>which</th></tr></thead><tbody>{''.join(body)}</tbody></table></div>"
    )


def _changed(page: ReportPage) -> str:
    tables = "".join(_group_table(name, rows) for name, rows in page.groups.items())
    return (
        '<section id="changed"><h2>What changed: what the troubled instances have in common</h2>'
        '<p class="dim">unhealthy: unreachable, aws-impaired, memory-critical or metrics-stale; leaking: memory-exhaustion-forecast. '
        "Values shared by most troubled instances come first.</p>"
        f'<div class="groups">{tables or "<p class=dim>No instances.</p>"}</div></section>'
    )


def _event_row(e: TimelineEvent) -> str:
    who = ""
    if e.instance_id:
        who = f'<span class="mono id">{_e(e.instance_id)}</span>' + (f'<div class="who-name">{_e(e.name)}</div>' if e.name else "")
    classes = f"event kind-{safe_id(e.kind.value)}" + (" severe" if e.severe else "")
    return (
        f'<tr class="{classes}"><td class="when mono">{e.at:%Y-%m-%d %H:%M:%S}</td><td class="kind">{_e(e.kind.value)}</td>'
        f'<td class="who">{who}</td><td>{_e(e.text)}</td></tr>'
    )


def _timeline(page: ReportPage) -> str:
    rows = "".join(_event_row(e) for e in page.timeline)
    dropped = f'<p class="dim">{page.timeline_dropped} older event(s) left off.</p>' if page.timeline_dropped else ""
    body = (
        f'<table id="timeline-table"><thead><tr><th>when (UTC)</th><th>what</th><th>instance</th><th>detail</th></tr></thead>'
        f"<tbody>{rows}</tbody></table>{dropped}"
        if rows
        else '<p class="dim">Nothing recorded yet.</p>'
    )
    return f'<section id="timeline"><h2>Timeline: probes, verdicts, actions (newest first)</h2>{body}</section>'


def render_html(page: ReportPage) -> str:
    """The whole page as one string."""
    sick = sum(1 for v in page.instances if v.needs_a_look)
    title = f"orch: {sick} of {len(page.instances)} need a look" if sick else f"orch: {len(page.instances)} instances healthy"
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{_e(title)} ({page.generated_at:%Y-%m-%d %H:%M} UTC)</title><style>{CSS}</style></head><body>"
        + _header(page)
        + _attention(page)
        + _chronic(page)
        + _changed(page)
        + _healthy(page)
        + _timeline(page)
        + "</body></html>\n"
    )

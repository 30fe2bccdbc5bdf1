"""The HTML report from literal facts and records: what is on the page, in which order, escaped.

Pure: `build_page` gathers, `render_html` draws; the page is parsed back with the standard
library's HTMLParser, so the tests check elements, not substrings that could match by luck.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta
from html.parser import HTMLParser

import pytest

from orchestrator.decide.patterns import ChronicPattern, patterns
from orchestrator.model import ActionAttempt, ActionKind, InstanceHistory, MemorySeries, ProbeOutcome, VerdictKind
from orchestrator.report.html import render_html, safe_id
from orchestrator.report.page import EventKind, ReportPage, build_page, timeline
from orchestrator.report.svg_chart import Frame, Mark, memory_chart
from orchestrator.state.store import ActionRecord, ActionStatus, SweepRecord
from tests.builders import NOW, facts, instance, verdict

HOSTILE = '"><script>alert(1)</script><img src=x onerror=alert(2)>'


class Elements(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.elements: list[tuple[str, dict[str, str]]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.elements.append((tag, {k: v or "" for k, v in attrs}))

    def handle_data(self, data: str) -> None:
        self.text.append(data)

    def having(self, tag: str, css_class: str | None = None) -> list[dict[str, str]]:
        return [a for t, a in self.elements if t == tag and (css_class is None or css_class in a.get("class", "").split())]


def parse(html: str) -> Elements:
    parser = Elements()
    parser.feed(html)
    return parser


def page_of(fleet, kinds, *, histories=None, actions=(), sweeps=(), chronic=(), now=NOW) -> ReportPage:
    verdicts = [verdict(f, k) for f, k in zip(fleet, kinds)]
    return build_page(
        facts=fleet,
        verdicts=verdicts,
        histories=histories or {},
        actions=actions,
        sweeps=sweeps,
        chronic=chronic,
        groups=patterns(fleet, {v.instance_id: v for v in verdicts}),
        now=now,
        region="us-east-1",
        selector="orch:managed=true",
        opt_out_tag="orch:skip",
        critical_percent=95.0,
        exhaustion_percent=97.0,
        window_minutes=60,
    )


def test_a_hostile_name_tag_is_shown_as_text_and_never_becomes_markup():
    hostile = facts(instance(1, tags={"Name": HOSTILE, "app": HOSTILE}))
    html = render_html(page_of([hostile], [VerdictKind.UNREACHABLE]))
    found = parse(html)
    assert not found.having("script") and not found.having("img")
    assert not any(k.startswith("on") for _, attrs in found.elements for k in attrs)
    assert HOSTILE in "".join(found.text)  # the name is there, as the text it is
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html


def test_a_hostile_instance_id_cannot_break_out_of_an_attribute():
    inst = replace(instance(1), instance_id=HOSTILE)
    html = render_html(page_of([facts(inst)], [VerdictKind.HEALTHY]))
    found = parse(html)
    assert not found.having("script") and not found.having("img")
    (chart,) = found.having("svg", "memory-chart")
    assert chart["id"] == f"mem-{safe_id(HOSTILE)}" and set(chart["id"]) <= set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_")
    (card,) = found.having("article", "instance-card")
    assert card["data-instance"] == HOSTILE  # escaped in the attribute, read back whole


def test_one_chart_per_instance_each_with_the_critical_line():
    fleet = [facts(instance(n)) for n in range(1, 6)]
    found = parse(render_html(page_of(fleet, [VerdictKind.HEALTHY] * 5)))
    charts = found.having("svg", "memory-chart")
    assert [c["id"] for c in charts] == [f"mem-{f.instance.instance_id}" for f in fleet]
    assert len(found.having("line", "critical")) == 5 and len(found.having("polyline", "memory")) == 5


def test_the_sick_lead_worst_first_and_the_busy_healthy_lead_the_healthy():
    fleet = [facts(instance(n)) for n in range(1, 7)]
    kinds = [VerdictKind.HEALTHY, VerdictKind.MEMORY_FORECAST, VerdictKind.HEALTHY, VerdictKind.UNREACHABLE, VerdictKind.HEALTHY, VerdictKind.HEALTHY]
    in_flight = InstanceHistory(fleet[4].instance.instance_id, in_flight_key="k", rung=1)
    page = page_of(fleet, kinds, histories={in_flight.instance_id: in_flight})
    order = [v.instance_id for v in page.instances]
    ids = [f.instance.instance_id for f in fleet]
    assert order == [ids[3], ids[1], ids[4], ids[0], ids[2], ids[5]]
    found = parse(render_html(page))
    cards = found.having("article", "instance-card")
    assert [c["data-instance"] for c in cards] == order
    assert [("needs-look" in c["class"].split()) for c in cards] == [True, True, False, False, False, False]
    assert "verdict-unreachable" in cards[0]["class"].split()


def test_past_the_chart_limit_a_section_goes_on_as_rows(monkeypatch):
    monkeypatch.setattr("orchestrator.report.html.MAX_CHARTS", 2)
    fleet = [facts(instance(n)) for n in range(1, 8)]
    kinds = [VerdictKind.UNREACHABLE] * 3 + [VerdictKind.HEALTHY] * 4
    found = parse(render_html(page_of(fleet, kinds)))
    assert len(found.having("svg", "memory-chart")) == 4  # two sick, two healthy
    rows = found.having("tr", "uncharted")
    assert [r["data-instance"] for r in rows] == [fleet[n].instance.instance_id for n in (2, 5, 6)]


def test_names_sort_naturally_within_a_verdict():
    fleet = [facts(instance(n)) for n in (10, 2, 1)]
    page = page_of(fleet, [VerdictKind.HEALTHY] * 3)
    assert [v.name for v in page.instances] == ["crawler-1", "crawler-2", "crawler-10"]


def test_an_empty_fleet_renders_a_page_with_no_charts():
    html = render_html(page_of([], []))
    found = parse(html)
    assert not found.having("svg")
    assert "no instances" in html and "Nothing recorded yet." in html
    assert html.startswith("<!doctype html>") and html.rstrip().endswith("</html>")


def test_the_page_has_no_url_no_script_and_a_policy_that_loads_nothing():
    fleet = [facts(instance(n)) for n in range(1, 4)]
    html = render_html(page_of(fleet, [VerdictKind.UNREACHABLE, VerdictKind.HEALTHY, VerdictKind.HEALTHY]))
    assert "://" not in html and "<script" not in html and "<link" not in html and "url(" not in html
    (policy,) = [a for a in parse(html).having("meta") if a.get("http-equiv") == "Content-Security-Policy"]
    assert "default-src 'none'" in policy["content"]


def test_chronic_patterns_and_what_changed_are_on_the_page():
    fleet = [facts(instance(n)) for n in range(1, 4)]
    pattern = ChronicPattern(
        shared=(("ami", "ami-0bad"),), members=(fleet[0].instance.instance_id,), alike=3, since=NOW - timedelta(hours=5),
        exhaustion_minutes=50.0, growth_per_min=1.5, process="crawler", process_rss_kb=None, actions_24h=4, ahead_24h=0,
    )
    html = render_html(page_of(fleet, [VerdictKind.UNREACHABLE, VerdictKind.HEALTHY, VerdictKind.HEALTHY], chronic=[pattern]))
    found = parse(html)
    assert "chronic memory leak on 1 of 3 instances (ami-0bad" in html
    assert len(found.having("div", "chronic")) == 1
    groups = found.having("div", "group")
    assert len(groups) == 5  # ami, launch template, instance type, group, AZ
    assert len(found.having("tr", "trouble")) == 5  # every dimension has the one unreachable box


def test_the_timeline_holds_probes_verdicts_sweeps_actions_and_outcomes_newest_first():
    sick = facts(instance(1), ProbeOutcome.BANNER_TIMEOUT)
    well = [facts(instance(n)) for n in (2, 3)]
    fleet = [sick, *well]
    verdicts = {f.instance.instance_id: verdict(f, k) for f, k in zip(fleet, [VerdictKind.UNREACHABLE, VerdictKind.HEALTHY, VerdictKind.HEALTHY])}
    sid = sick.instance.instance_id
    acted_at = NOW - timedelta(minutes=30)
    history = InstanceHistory(sid, actions=(ActionAttempt(at=acted_at, kind=ActionKind.REBOOT, verified_at=acted_at + timedelta(minutes=5)),))
    record = ActionRecord("k1", "s1", sid, ActionKind.REBOOT, "ssh banner-timeout", ActionStatus.DONE, acted_at, acted_at,
                          evidence={"console_summary": "oom-killer killed crawler"})
    opted = {"instance_id": "i-opted", "action": "reboot", "why": "opted out by tag orch:skip", "rule": "opt-out"}
    sweeps = [
        SweepRecord(f"s{n}", NOW - timedelta(minutes=10 * n), "heal", "x", summary={"instances": 3, "verdicts": {"unreachable": 1}, "blocked": [opted]})
        for n in (1, 2, 3)
    ] + [SweepRecord("old", NOW - timedelta(hours=30), "heal", "x", summary={"instances": 3})]
    events, dropped = timeline(fleet, verdicts, {sid: history}, [record], sweeps, NOW)
    assert dropped == 0
    assert [e.at for e in events] == sorted((e.at for e in events), reverse=True)
    kinds = [e.kind for e in events]
    assert kinds.count(EventKind.PROBE) == 3 + 1  # each failed attempt of the sick one, one row for the answering two
    assert kinds.count(EventKind.VERDICT) == 1 and kinds.count(EventKind.SWEEP) == 3  # not the one 30 hours ago
    assert kinds.count(EventKind.BLOCKED) == 1  # once per instance and rule, its latest
    (blocked,) = [e for e in events if e.kind is EventKind.BLOCKED]
    assert blocked.at == NOW - timedelta(minutes=10)
    (action,) = [e for e in events if e.kind is EventKind.ACTION]
    assert action.instance_id == sid and action.name == "crawler-1" and "oom-killer killed crawler" in action.text
    assert kinds.count(EventKind.VERIFIED) == 1
    (answered,) = [e for e in events if e.kind is EventKind.PROBE and not e.instance_id]
    assert answered.text.startswith("2 healthy instance(s) answered SSH")
    assert all(e.severe for e in events if e.kind is EventKind.PROBE and e.instance_id == sid)


def test_the_timeline_keeps_the_newest_and_says_how_many_it_left_off():
    fleet = [facts(instance(1))]
    verdicts = {fleet[0].instance.instance_id: verdict(fleet[0], VerdictKind.HEALTHY)}
    sweeps = [SweepRecord(f"s{n}", NOW - timedelta(minutes=n), "scan", "x", summary={"instances": 1}) for n in range(1, 21)]
    events, dropped = timeline(fleet, verdicts, {}, [], sweeps, NOW, limit=5)
    assert len(events) == 5 and dropped == 16  # 20 sweeps and the probe row
    assert events[0].at == max(e.at for e in events)
    page = replace(page_of(fleet, [VerdictKind.HEALTHY]), timeline=tuple(events), timeline_dropped=dropped)
    assert "16 older event(s) left off." in render_html(page)
    assert len(parse(render_html(page)).having("tr", "event")) == 5


def test_actions_in_the_window_are_marked_on_the_chart():
    f = facts(instance(1))
    iid = f.instance.instance_id
    history = InstanceHistory(
        iid,
        actions=(
            ActionAttempt(at=NOW - timedelta(minutes=20), kind=ActionKind.REBOOT),
            ActionAttempt(at=NOW - timedelta(hours=3), kind=ActionKind.REBOOT),  # before the window
            ActionAttempt(at=NOW - timedelta(minutes=10), kind=ActionKind.STOP_START, taken=False),  # the call failed
        ),
    )
    found = parse(render_html(page_of([f], [VerdictKind.HEALTHY], histories={iid: history})))
    assert len(found.having("g", "action-mark")) == 1


# -- the chart itself -------------------------------------------------------------------


def chart(points, marks=(), start: datetime = NOW - timedelta(minutes=60)) -> Elements:
    frame = Frame(start, NOW, width=420, height=130)
    return parse(memory_chart(points, frame, chart_id="c", critical_percent=95.0, exhaustion_percent=97.0, marks=marks, title=HOSTILE))


def test_the_critical_line_sits_at_its_level_on_a_fixed_0_to_100_scale():
    frame = Frame(NOW - timedelta(minutes=60), NOW)
    found = chart(MemorySeries("i", ((NOW - timedelta(minutes=5), 50.0),)).points)
    (line,) = found.having("line", "critical")
    assert float(line["y1"]) == pytest.approx(frame.y(95.0), abs=0.1)
    assert frame.y(100) < frame.y(95) < frame.y(50) < frame.y(0)  # up is more memory
    assert frame.y(150) == frame.y(100) and frame.y(-5) == frame.y(0)  # clamped


def test_points_outside_the_window_are_not_drawn_and_no_data_is_said():
    assert chart([(NOW - timedelta(hours=2), 40.0)]).having("text", "no-data")
    found = chart([(NOW - timedelta(hours=2), 40.0), (NOW - timedelta(minutes=30), 60.0), (NOW, 70.0)])
    (line,) = found.having("polyline", "memory")
    assert len(line["points"].split()) == 2


def test_the_chart_escapes_its_title_and_mark_labels():
    found = chart([(NOW, 10.0)], marks=[Mark(NOW - timedelta(minutes=1), HOSTILE)])
    assert not found.having("script") and not found.having("img")
    assert found.having("svg", "memory-chart")[0]["aria-label"] == HOSTILE

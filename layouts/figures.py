"""Plotly figures from plain data. Pure functions: records in, figure out.

Every chart speaks the same visual language: one colour per channel and per status on
every tab, units on the value axis, exact values on hover, rates with one decimal.

A figure is the plain dict Plotly.js draws ({"data": [traces], "layout": {...}}), built
directly: Plotly's figure objects validate every property and copy every list as they are
built, 8-25 ms a chart, most of a chart callback. The tests read each figure through
`go.Figure`, which validates it.
"""
from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

import plotly.io as pio
from plotly.colors import diverging, make_colorscale, sequential

from services.analysis.compare import PeriodComparison
from services.analysis.correlation_report import CorrelationReport
from services.query.format import number, unit_suffix
from services.query.timerange import iso_z
from services.store.schema import CHANNELS, channel_label

CHANNEL_COLOURS = {"email": "#4C78A8", "sms": "#F58518", "push": "#54A24B"}
STATUS_COLOURS = {"sent": "#9D9DA1", "delivered": "#54A24B", "failed": "#E45756", "bounced": "#B279A2",
                  "opened": "#4C78A8", "clicked": "#72B7B2"}
FALLBACK = "#7F7F7F"
ANOMALY_COLOUR = "#E45756"
ANOMALY_SHADE = {"low": "rgba(228,87,86,0.10)", "medium": "rgba(228,87,86,0.18)", "high": "rgba(228,87,86,0.28)"}
INCIDENT_SHADE = "rgba(245,133,24,0.13)"
INCIDENT_TEXT = "#B35C00"
FILLING_NOTE = "<br><i>this bucket is still filling</i>"
WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
FONT = "system-ui, -apple-system, Segoe UI, Roboto, sans-serif"


def axis_title(label: str, unit: str) -> str:
    """The label with its unit once: "Delivery rate (%)", "Sent (events)", "Events"."""
    if unit == "count" and label.strip().lower() == "events" or unit == "%" and label.rstrip().endswith("%"):
        return label  # "Events", "Undelivered %": the unit is already in the name
    return {"%": f"{label} (%)", "ms": f"{label} (ms)", "count": f"{label} (events)"}.get(unit, label)


def value_format(unit: str) -> str:
    """d3 format for hover and ticks: one decimal for rates and times, thousands for counts."""
    return ",.0f" if unit == "count" else ",.1f"


def in_channel_order(keys) -> list:
    """Channels in the one order every chart and control uses (email, SMS, push), anything
    else after them as it came."""
    keys = list(keys)
    return sorted(keys, key=lambda k: (CHANNELS.index(k) if k in CHANNELS else len(CHANNELS), keys.index(k)))


def _lean_template(name: str = "plotly_white") -> dict:
    """Plotly's `name` template with the defaults of the trace types these charts draw, and
    no others: the same look, without the defaults of some forty trace types in every
    figure (about 6 KB)."""
    full = pio.templates[name]
    return {"layout": full.layout.to_plotly_json(),
            "data": {kind: [t.to_plotly_json() for t in full.data[kind]] for kind in ("scatter", "bar", "heatmap")}}


TEMPLATE = _lean_template()  # shared by every figure, never changed
# Plotly.js has colour scales of its own under these names, drawn differently: given in full
BLUES, RED_BLUE = make_colorscale(sequential.Blues), make_colorscale(diverging.RdBu)
SPIKES = dict(showspikes=True, spikemode="across", spikesnap="data", spikethickness=1, spikedash="dot",
              spikecolor="#6c757d")


def _figure(traces: Sequence[dict], revision: str, height: int = 320, **layout) -> dict:
    """A figure in the product's template and look; `layout` adds to the common layout."""
    return {"data": list(traces), "layout": {
        "template": TEMPLATE, "height": height, "margin": dict(l=60, r=20, t=10, b=40),
        "font": dict(family=FONT, size=12), "uirevision": revision,
        "legend": dict(orientation="h", y=1.02, yanchor="bottom", x=0), "hoverlabel": dict(font=dict(family=FONT)),
        **layout}}


def _title(text: str) -> dict:
    return {"text": text}  # Plotly.js takes a title as an object (a bare string was dropped in v3)


def blank_figure(height: int = 320) -> dict:
    """What a chart shows until its first answer: nothing (no axes, whose ticks cost a draw of
    their own on a page load), not even the template, so it is the cheapest draw there is."""
    return {"data": [], "layout": {"height": height, "xaxis": {"visible": False}, "yaxis": {"visible": False},
                                   "paper_bgcolor": "rgba(0,0,0,0)", "plot_bgcolor": "rgba(0,0,0,0)"}}


def empty_figure(message: str, height: int = 320) -> dict:
    note = dict(text=message, showarrow=False, font=dict(size=14, color="#6c757d"), x=0.5, y=0.5, xref="paper",
                yref="paper")
    return _figure([], "empty", height, annotations=[note], xaxis=dict(visible=False), yaxis=dict(visible=False))


def time_series(records: Sequence[dict], label: str, unit: str, revision: str, split: str = "channel",
                volume_of: str | None = None, filling: str | None = None, marks: dict | None = None) -> dict:
    """One line per value of `split` (or a single line when records have none). A rate's axis
    is scaled to its values (a dip from 98 % to 91 % is visible), and its hover names the
    events behind each point (`volume_of`: "sent", from each record's "volume") and says so
    of the bucket still filling (`filling`: its time as the records write it). `marks`
    (from time_marks) are drawn over it."""
    if not any(r["value"] for r in records):
        return empty_figure("No events in this range")
    groups: dict[str, list[dict]] = {}
    for r in records:
        groups.setdefault(r.get(split, "all"), []).append(r)
    fmt = value_format(unit)
    behind = f"<br>of %{{customdata[1]:,.0f}} {volume_of}" if volume_of else ""
    traces = []
    for key in in_channel_order(groups):
        rows = groups[key]
        name = channel_label(str(key))
        traces.append(dict(
            type="scatter", x=[r["time"] for r in rows], y=[r["value"] for r in rows], mode="lines", name=name,
            line=dict(color=CHANNEL_COLOURS.get(key, FALLBACK), width=2),
            customdata=[[key, r.get("volume"), FILLING_NOTE if r["time"] == filling else ""] for r in rows],
            connectgaps=False,
            hovertemplate=f"{name}<br>%{{x|%Y-%m-%d %H:%M}} UTC<br>%{{y:{fmt}}}{unit_suffix(unit)}{behind}"
                          "%{customdata[2]}<extra></extra>"))
    # a crosshair through the point under the pointer (the hover stays on the closest line, so
    # a click still drills into that line's channel)
    layout = dict(xaxis=dict(**SPIKES),
                  yaxis=dict(title=_title(axis_title(label, unit)), tickformat=fmt,
                             rangemode="normal" if unit == "%" else "tozero", **SPIKES))
    if marks:
        layout.update(shapes=marks["shapes"], annotations=marks["annotations"])
    return _figure(traces, revision, **layout)


def time_marks(anomalies: Sequence[dict], incidents: Sequence, first: str, last: str, step: timedelta,
               label: str, unit: str) -> dict:
    """Anomalies (from the trend report) and alert incidents (FiringSpan) over a time chart
    whose points run from `first` to `last`: a shaded band for each, clipped to the chart so
    its axis does not move, and a marker at the top whose hover says what it was, in the
    report's numbers. Plain dicts: the drawn figure is patched with them, and the next draw
    of the same view starts with them."""
    lo, hi = datetime.fromisoformat(first), datetime.fromisoformat(last)
    shapes, notes = [], []

    def band(start: datetime, end: datetime, colour: str) -> tuple[str, str] | None:
        x0, x1 = max(start, lo), min(end, hi)
        if x1 < x0:
            return None
        shapes.append(dict(type="rect", xref="x", yref="paper", x0=iso_z(x0), x1=iso_z(x1), y0=0, y1=1,
                           fillcolor=colour, line=dict(width=0), layer="below"))
        return iso_z(x0), iso_z(x1)

    for incident in incidents:
        end = incident.end or hi + step
        drawn = band(incident.start, end, INCIDENT_SHADE)
        if drawn is None:
            continue
        until = f"to {incident.end:%Y-%m-%d %H:%M} UTC" if incident.end else "and still fires"
        name = incident.name if len(incident.name) <= 32 else incident.name[:31] + "…"
        # the name reads into the chart from the band's nearer edge (Plotly widens an axis to
        # fit an annotation's text, so text running past the last point would stretch it)
        right = datetime.fromisoformat(drawn[0]) > lo + (hi - lo) / 2
        notes.append(dict(x=drawn[1] if right else drawn[0], y=1, xref="x", yref="paper",
                          xanchor="right" if right else "left", yanchor="top", showarrow=False,
                          text=f"⚠ {name}", font=dict(size=10, color=INCIDENT_TEXT),
                          hovertext=f"Alert “{incident.name}” fired from {incident.start:%Y-%m-%d %H:%M} UTC {until}"))
    for run in _runs(anomalies, step):  # neighbouring anomalous buckets: one band, one marker
        starts = [datetime.fromisoformat(a["time"]) for a in run]
        drawn = band(starts[0] - step / 2, starts[-1] + step / 2, ANOMALY_SHADE[_worst(run)])
        if drawn is None:
            continue
        lines = [f"{when:%Y-%m-%d %H:%M} UTC: {number(a['value'], unit)} against an expected "
                 f"{number(a['expected'], unit)} ({a['severity']} severity)" for when, a in zip(starts, run)]
        below = sum(a["value"] < a["expected"] for a in run) * 2 >= len(run)
        title = f"Anomaly: {label}" if len(run) == 1 else f"{len(run)} anomalous buckets in a row: {label}"
        notes.append(dict(x=run[len(run) // 2]["time"], y=1, xref="x", yref="paper", yanchor="top", showarrow=False,
                          text="▼" if below else "▲",
                          font=dict(size=14 if _worst(run) == "high" else 11, color=ANOMALY_COLOUR),
                          hovertext="<br>".join([title, *lines])))
    return {"shapes": shapes, "annotations": notes}


def _runs(anomalies: Sequence[dict], step: timedelta) -> list[list[dict]]:
    runs: list[list[dict]] = []
    for a in sorted(anomalies, key=lambda a: a["time"]):
        if runs and datetime.fromisoformat(a["time"]) - datetime.fromisoformat(runs[-1][-1]["time"]) <= step:
            runs[-1].append(a)
        else:
            runs.append([a])
    return runs


def _worst(run: Sequence[dict]) -> str:
    return max((a["severity"] or "low" for a in run), key=("low", "medium", "high").index)


def bars(records: Sequence[dict], dimension: str, label: str, unit: str, revision: str,
         labels: dict | None = None, height: int = 320) -> dict:
    """One bar per value of `dimension`, coloured like that value everywhere else."""
    rows = [r for r in records if r["value"] is not None]
    if dimension == "channel":
        order = in_channel_order([r["channel"] for r in rows])
        rows.sort(key=lambda r: order.index(r["channel"]))
    if not rows or not any(r["value"] for r in rows):
        return empty_figure("No events for this selection", height)
    colours = CHANNEL_COLOURS if dimension == "channel" else STATUS_COLOURS if dimension == "status" else {}
    names = [(labels or {}).get(r[dimension]) or channel_label(str(r[dimension]))
             for r in rows]
    fmt = value_format(unit)
    bar = dict(type="bar", x=names, y=[r["value"] for r in rows], customdata=[r[dimension] for r in rows],
               marker=dict(color=[colours.get(r[dimension], "#4C78A8") for r in rows]),
               text=[number(r["value"], unit) for r in rows], textposition="outside", cliponaxis=False,
               hovertemplate=f"%{{x}}<br>%{{y:{fmt}}}{unit_suffix(unit)}<extra></extra>")
    return _figure([bar], revision, height, showlegend=False,
                   yaxis=dict(title=_title(axis_title(label, unit)), tickformat=fmt, rangemode="tozero"))


def heatmap(matrix: Sequence[Sequence[float]], revision: str) -> dict:
    """Events by weekday (rows, Monday first) × hour of day (columns, UTC)."""
    if not any(any(row) for row in matrix):
        return empty_figure("No events in this range")
    cells = dict(type="heatmap", z=[list(row) for row in matrix], x=[f"{h:02d}:00" for h in range(24)],
                 y=list(WEEKDAYS), colorscale=BLUES, colorbar=dict(title=_title("events")),
                 hovertemplate="%{y} %{x} UTC<br>%{z:,.0f} events<extra></extra>")
    return _figure([cells], revision, yaxis=dict(autorange="reversed"),
                   xaxis=dict(title=_title("hour of day (UTC)"), dtick=2))


def trend_chart(report: dict, label: str, revision: str) -> dict:
    """The series inside its expected band, the moving average, anomalies in red with
    their explanation on hover."""
    series = report["series"]
    if not any(p["value"] for p in series):
        return empty_figure("No events in this range")
    unit, fmt = report["unit"], value_format(report["unit"])
    times = [p["time"] for p in series]
    traces = [
        dict(type="scatter", x=times, y=[p["upper"] for p in series], mode="lines", line=dict(width=0),
             hoverinfo="skip", showlegend=False),
        dict(type="scatter", x=times, y=[p["lower"] for p in series], mode="lines", line=dict(width=0),
             fill="tonexty", fillcolor="rgba(76,120,168,0.15)", name="expected band", hoverinfo="skip"),
        dict(type="scatter", x=times, y=[p["value"] for p in series], mode="lines", name=label,
             line=dict(color="#4C78A8", width=2),
             hovertemplate=f"%{{x|%Y-%m-%d %H:%M}} UTC<br>%{{y:{fmt}}}{unit_suffix(unit)}<extra></extra>"),
        dict(type="scatter", x=[p["time"] for p in report["moving_average"]],
             y=[p["value"] for p in report["moving_average"]], mode="lines", name="moving average",
             line=dict(color="#9D9DA1", width=1.5, dash="dash"), hoverinfo="skip"),
    ]
    anomalies = report["anomalies"]
    if anomalies:
        traces.append(dict(
            type="scatter", x=[a["time"] for a in anomalies], y=[a["value"] for a in anomalies], mode="markers",
            name="anomaly",
            marker=dict(color="#E45756", size=[14 if a["severity"] == "high" else 10 for a in anomalies],
                        line=dict(color="white", width=1)),
            customdata=[[a["severity"], a["expected"], a["explanation"] or "", a.get("drilldown") or ""]
                        for a in anomalies],
            hovertemplate=(f"%{{x|%Y-%m-%d %H:%M}} UTC · %{{customdata[0]}} severity<br>%{{y:{fmt}}}{unit_suffix(unit)} "
                           f"against an expected %{{customdata[1]:{fmt}}}{unit_suffix(unit)}<br>"
                           "%{customdata[2]}<extra></extra>")))
    return _figure(traces, revision, 380, yaxis=dict(title=_title(axis_title(label, unit)), tickformat=fmt))


def profile_bars(values: Sequence[float | None], labels: Sequence[str], label: str, unit: str,
                 peaks: Sequence[int], revision: str) -> dict:
    """A seasonal profile (mean by hour or weekday) with its peaks highlighted."""
    if not any(v for v in values if v is not None):
        return empty_figure("Not enough data for a profile", 260)
    fmt = value_format(unit)
    bar = dict(type="bar", x=list(labels), y=list(values),
               marker=dict(color=["#F58518" if i in peaks else "#4C78A8" for i in range(len(values))]),
               hovertemplate=f"%{{x}}<br>mean %{{y:{fmt}}}{unit_suffix(unit)}<extra></extra>")
    return _figure([bar], revision, 260, showlegend=False,
                   yaxis=dict(title=_title(axis_title(label, unit)), tickformat=fmt))


def period_chart(period: PeriodComparison | None, label: str, unit: str, revision: str) -> dict:
    """This period and the shifted one on the same axis, aligned bucket by bucket."""
    points = period.points if period else ()
    if not any(p.value or p.previous_value for p in points):
        return empty_figure("No events in either period")
    fmt = value_format(unit)
    times = [p.time for p in points]
    traces = [
        dict(type="scatter", x=times, y=[p.previous_value for p in points], mode="lines", name="compared period",
             line=dict(color="#9D9DA1", width=1.5, dash="dot"), customdata=[p.previous_time for p in points],
             hovertemplate=f"%{{customdata|%Y-%m-%d %H:%M}} UTC<br>%{{y:{fmt}}}{unit_suffix(unit)}"
                           "<extra>compared period</extra>"),
        dict(type="scatter", x=times, y=[p.value for p in points], mode="lines", name="this period",
             line=dict(color="#4C78A8", width=2), customdata=[[p.difference, p.percent_difference] for p in points],
             hovertemplate=f"%{{x|%Y-%m-%d %H:%M}} UTC<br>%{{y:{fmt}}}{unit_suffix(unit)}<br>"
                           f"difference %{{customdata[0]:+{fmt}}}<extra>this period</extra>"),
    ]
    return _figure(traces, revision, yaxis=dict(title=_title(axis_title(label, unit)), tickformat=fmt))


def correlation_matrix(report: CorrelationReport, revision: str) -> dict:
    """r for every pair on a diverging scale; pairs that are not significant, or related by
    definition (marked "def."), are grey."""
    labels = report.matrix.labels
    r, q = report.matrix.r, report.matrix.q
    related = report.matrix.related_by_definition
    n = len(labels)
    shown = [[r[i][j] if i != j and r[i][j] is not None and not related[i][j] and q[i][j] is not None
              and q[i][j] < 0.05 else None for j in range(n)] for i in range(n)]
    grey = [[0 if shown[i][j] is None and i != j else None for j in range(n)] for i in range(n)]
    lag = report.matrix.lag
    text = [["" if i == j or r[i][j] is None else f"{r[i][j]:.2f}" + (f" (lag {lag[i][j]:+d})" if lag[i][j] else "")
             + (" def." if related[i][j] else "") for j in range(n)] for i in range(n)]
    keys = report.matrix.metrics
    # a click event keeps only plain values of a point, so each cell carries its pair as "a|b"
    pair_keys = [[f"{keys[i]}|{keys[j]}" for j in range(n)] for i in range(n)]
    labels = list(labels)
    traces = []
    # every cell carries its pair, grey ones included, so any click opens that pair; a layer
    # that would be nothing but gaps is left out (Plotly draws it as garbage)
    if any(v is not None for row in grey for v in row):
        traces.append(dict(type="heatmap", z=grey, x=labels, y=labels, colorscale=[[0, "#e9ecef"], [1, "#e9ecef"]],
                           showscale=False, customdata=pair_keys,
                           hovertemplate="%{y} × %{x}<extra>click for details</extra>"))
    if any(v is not None for row in shown for v in row):
        traces.append(dict(
            type="heatmap", z=shown, x=labels, y=labels, zmin=-1, zmax=1, colorscale=RED_BLUE, reversescale=True,
            customdata=pair_keys, colorbar=dict(title=_title("r")),
            hovertemplate="%{y} × %{x}<br>r = %{z:.2f}<extra>click for details</extra>"))
    # the values on top of both, on a transparent layer of zeros
    traces.append(dict(type="heatmap", z=[[0] * n for _ in range(n)], x=labels, y=labels, text=text,
                       texttemplate="%{text}", zmin=0, zmax=1, showscale=False, hoverinfo="skip",
                       colorscale=[[0, "rgba(0,0,0,0)"], [1, "rgba(0,0,0,0)"]]))
    return _figure(traces, revision, 120 + 60 * n, yaxis=dict(autorange="reversed", showgrid=False),
                   xaxis=dict(showgrid=False))


def pair_overlay(times: list, a: list, b: list, name_a: str, name_b: str, revision: str) -> dict:
    traces = [dict(type="scatter", x=times, y=a, name=name_a, mode="lines", line=dict(color="#4C78A8")),
              dict(type="scatter", x=times, y=b, name=name_b, mode="lines", line=dict(color="#F58518"), yaxis="y2")]
    return _figure(traces, revision, 300, yaxis=dict(title=_title(name_a)),
                   yaxis2=dict(title=_title(name_b), overlaying="y", side="right"))


def pair_scatter(a: list, b: list, name_a: str, name_b: str, revision: str) -> dict:
    """Residuals of b against a with the least-squares line."""
    import numpy as np

    points = [(x, y) for x, y in zip(a, b) if x is not None and y is not None]
    if len(points) < 3:
        return empty_figure("Not enough points", 300)
    xs, ys = np.array(points).T
    slope, intercept = np.polyfit(xs, ys, 1)
    line_x = np.array([xs.min(), xs.max()])
    traces = [dict(type="scatter", x=xs.tolist(), y=ys.tolist(), mode="markers",
                   marker=dict(size=5, color="#4C78A8", opacity=0.6), name="buckets"),
              dict(type="scatter", x=line_x.tolist(), y=(slope * line_x + intercept).tolist(), mode="lines",
                   name="fit", line=dict(color="#E45756"))]
    return _figure(traces, revision, 300, xaxis=dict(title=_title(name_a)), yaxis=dict(title=_title(name_b)))


def lag_chart(lags: list[tuple[int, float, int]], best: int, unit: str, revision: str) -> dict:
    if not lags:
        return empty_figure("No lag could be measured", 300)
    bar = dict(type="bar", x=[lag for lag, _, _ in lags], y=[r for _, r, _ in lags],
               marker=dict(color=["#E45756" if lag == best else "#9D9DA1" for lag, _, _ in lags]),
               hovertemplate=f"lag %{{x}} {unit}s<br>r = %{{y:.2f}}<extra></extra>")
    return _figure([bar], revision, 300, xaxis=dict(title=_title(f"lag ({unit}s; positive: the first metric leads)")),
                   yaxis=dict(title=_title("r"), range=[-1, 1]))


def lifecycle_timeline(notes: Sequence[dict], revision: str, height: int | None = None) -> dict:
    """Notifications on a time axis, one row each (newest on top): a grey line through
    their steps and a marker per event, coloured by status. Each point carries its
    notification id, so a click can open it."""
    if not notes:
        return empty_figure("No notifications in this range")
    rows = [f"{n.get('template_name') or channel_label(n['channel'])} · {n['notification_id'] or 'no id'}"
            for n in notes]
    line_x, line_y = [], []
    for note, row in zip(notes, rows):
        for step in note["steps"]:
            line_x.append(step["time"])
            line_y.append(row)
        line_x.append(None)
        line_y.append(None)
    traces = [dict(type="scatter", x=line_x, y=line_y, mode="lines", line=dict(color="#ced4da", width=2),
                   hoverinfo="skip", showlegend=False)]
    for status, colour in STATUS_COLOURS.items():
        points = [(step, note, row) for note, row in zip(notes, rows) for step in note["steps"]
                  if step["status"] == status]
        if not points:
            continue
        traces.append(dict(
            type="scatter", x=[p[0]["time"] for p in points], y=[p[2] for p in points], mode="markers",
            name=status.capitalize(), marker=dict(color=colour, size=10, line=dict(color="white", width=1)),
            customdata=[[p[1]["notification_id"], p[0]["after_seconds"]] for p in points],
            hovertemplate=f"{status.capitalize()}<br>%{{x|%Y-%m-%d %H:%M:%S}} UTC<br>"
                          "%{customdata[1]:,.1f} s after the first event<extra>%{y}</extra>"))
    return _figure(traces, revision, height or max(220, 40 + 26 * len(notes)),
                   yaxis=dict(autorange="reversed", type="category"), xaxis=dict(title=_title("Time (UTC)")))

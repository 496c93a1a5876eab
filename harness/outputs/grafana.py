"""A provisionable Grafana dashboard of the series the alerts watch, thresholds drawn.

Drop `dashboard.json` into a folder a Grafana dashboard provider reads (or
import it): the uid is stable (`UID`), so a re-export replaces the same
dashboard; the Prometheus datasource is the templating variable
`DS_PROMETHEUS` (type `datasource`), which every panel and target reference as
`${DS_PROMETHEUS}`, so no datasource uid of one installation is baked in.

Panels (time series, one per SLO and threshold alert, from the same
`Thresholds` as the rules):

* per endpoint, the latency SLI (share of requests faster than T over 5 min)
  with the objective drawn, and the 5xx ratio with the error budget drawn;
* each threshold alert's query (`Threshold.query`) with its threshold drawn.

Thresholds are drawn with `fieldConfig.defaults.thresholds` (absolute steps)
and `custom.thresholdsStyle.mode = "line+area"`: for what is worse higher the
step at the threshold is red, for what is worse lower (shares of good
requests, hit ratios) the base is red and the threshold's step green.
"""

from __future__ import annotations

import json
from typing import Any

from harness.analysis.slo import Slo, Threshold, Thresholds, duration, number

UID = "harness-dashboard-api"
DATASOURCE = {"type": "prometheus", "uid": "${DS_PROMETHEUS}"}
WINDOW = "5m"
WIDTH, HEIGHT = 12, 8

_UNITS = {"share": "percentunit", "ratio": "none", "seconds": "s", "count": "short",
          "state": "short"}


def _steps(value: float, worse_higher: bool) -> list[dict[str, Any]]:
    if worse_higher:
        return [{"color": "green", "value": None}, {"color": "red", "value": value}]
    return [{"color": "red", "value": None}, {"color": "green", "value": value}]


def _panel(pid: int, title: str, description: str, expr: str, legend: str, unit: str,
           value: float, worse_higher: bool, bounds: tuple[float | None, float | None]
           ) -> dict[str, Any]:
    low, high = bounds
    defaults: dict[str, Any] = {
        "unit": unit,
        "color": {"mode": "palette-classic"},
        "thresholds": {"mode": "absolute", "steps": _steps(value, worse_higher)},
        "custom": {"thresholdsStyle": {"mode": "line+area"}, "lineWidth": 1,
                   "fillOpacity": 10, "spanNulls": False},
    }
    if low is not None:
        defaults["min"] = low
    if high is not None:
        defaults["max"] = high
    return {
        "id": pid, "type": "timeseries", "title": title, "description": description,
        "datasource": DATASOURCE,
        "gridPos": {"h": HEIGHT, "w": WIDTH, "x": 0, "y": 0},  # placed by _layout
        "fieldConfig": {"defaults": defaults, "overrides": []},
        "options": {"legend": {"displayMode": "list", "placement": "bottom", "showLegend": True},
                    "tooltip": {"mode": "multi", "sort": "none"}},
        "targets": [{"refId": "A", "datasource": DATASOURCE, "expr": expr,
                     "legendFormat": legend, "range": True}],
    }


def _slo_panel(pid: int, slo: Slo) -> dict[str, Any]:
    if slo.kind == "latency":
        return _panel(
            pid, f"{slo.endpoint}: share faster than {slo.le} s",
            f"Latency SLO: {number(slo.objective * 100)}% of requests faster than {slo.le} s "
            f"(the line). Baseline: {slo.baseline_text}; {slo.derivation}.",
            slo.good_ratio_query(WINDOW), "faster than " + (slo.le or ""), "percentunit",
            slo.objective, worse_higher=False, bounds=(None, 1))
    return _panel(
        pid, f"{slo.endpoint}: 5xx ratio",
        f"Error SLO: {number(slo.objective * 100)}% of requests without a 5xx; the line is "
        f"the budget ({number(slo.budget * 100)}%). Baseline: {slo.baseline_text}.",
        slo.ratio_query(WINDOW), "5xx ratio", "percentunit", slo.budget, worse_higher=True,
        bounds=(0, None))


def _threshold_panel(pid: int, t: Threshold) -> dict[str, Any]:
    subject = "".join(f" {v}" for v in t.labels.values())
    bounds = (0.0, 1.0) if t.unit == "share" else (0.0, None)
    return _panel(
        pid, f"{t.title}{subject}",
        f"{t.alert}: alerts when {t.op} {number(t.value)} for {duration(t.for_s)} "
        f"({t.derivation}). Baseline: {t.baseline_text}.",
        t.query, "{{instance}}" if t.by_instance else t.alert, _UNITS[t.unit], t.value,
        worse_higher=t.op != "<", bounds=bounds)


def _row(pid: int, title: str) -> dict[str, Any]:
    return {"id": pid, "type": "row", "title": title, "collapsed": False, "panels": [],
            "gridPos": {"h": 1, "w": 24, "x": 0, "y": 0}}


def _layout(panels: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rows full width; other panels two a line under them."""
    y, col = 0, 0
    for p in panels:
        pos = p["gridPos"]
        if p["type"] == "row":
            if col:
                y, col = y + HEIGHT, 0
            pos["y"] = y
            y += 1
            continue
        pos["x"], pos["y"] = col * WIDTH, y
        col += 1
        if col == 2:
            y, col = y + HEIGHT, 0
    return panels


def dashboard(th: Thresholds) -> dict[str, Any]:
    panels: list[dict[str, Any]] = []
    pid = 1
    panels.append(_row(pid, "SLOs per endpoint"))
    for slo in th.slos:
        pid += 1
        panels.append(_slo_panel(pid, slo))
    pid += 1
    panels.append(_row(pid, "Causes: caches, ElevenLabs, database pool, KPI view"))
    for t in th.thresholds:
        pid += 1
        panels.append(_threshold_panel(pid, t))
    return {
        "uid": UID,
        "title": "Dashboard API: SLOs and alert thresholds",
        "description": f"Generated by `harness alerts grafana` from baseline {th.baseline}; "
                       "the same thresholds as `harness alerts export`.",
        "tags": ["harness", "slo", "dashboard-api"],
        "timezone": "browser",
        "editable": True,
        "graphTooltip": 1,
        "schemaVersion": 39,
        "version": 1,
        "refresh": "30s",
        "time": {"from": "now-6h", "to": "now"},
        "templating": {"list": [{
            "name": "DS_PROMETHEUS", "label": "Prometheus", "type": "datasource",
            "query": "prometheus", "current": {}, "hide": 0, "refresh": 1, "regex": "",
            "options": [], "includeAll": False, "multi": False,
        }]},
        "annotations": {"list": [{
            "builtIn": 1, "datasource": {"type": "grafana", "uid": "-- Grafana --"},
            "enable": True, "hide": True, "iconColor": "rgba(0, 211, 255, 1)",
            "name": "Annotations & Alerts", "type": "dashboard",
        }]},
        "links": [{"title": "Runbook", "type": "link", "url": th.runbook.split("#", 1)[0],
                   "targetBlank": True}],
        "panels": _layout(panels),
    }


def grafana(th: Thresholds) -> str:
    """The dashboard as JSON (indented, stable key order, final newline)."""
    return json.dumps(dashboard(th), indent=2, ensure_ascii=False) + "\n"

"""`scaling.svg`: the scaling table as a chart, one panel per profile.

x is the dataset (its calls, log scale: the presets grow by 4 to 10 times), y the
p95 in ms on a log scale shared by the panels, so a flat line is an endpoint
that does not care how much data there is, a steep one grows with it, and the
two profiles can be read against each other. A static SVG (no script), so it
shows where Markdown shows images: docs/scaling.md embeds it.
"""

from __future__ import annotations

import math
from html import escape

from harness.model.endpoint import short_label
from harness.outputs.numbers import ms
from harness.outputs.scaling_markdown import TOTAL, Scaling, endpoints
from target_service.db.seed_data import PRESETS

PANEL_W, PANEL_H = 420, 300
LEFT, TOP, BOTTOM, GAP = 60, 40, 50, 30
LEGEND_H = 18
COLORS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2",
          "#7f7f7f", "#bcbd22", "#17becf")


def _x_positions(s: Scaling) -> list[float]:
    """Each dataset's x in [0, 1]: log of its calls, or evenly spaced if unknown."""
    calls = [PRESETS[d].calls if d in PRESETS else None for d in s.datasets]
    if None in calls or len(set(calls)) < 2:
        n = len(s.datasets)
        return [i / (n - 1) for i in range(n)]
    logs = [math.log10(c) for c in calls]  # type: ignore[arg-type]
    return [(v - logs[0]) / (logs[-1] - logs[0]) for v in logs]


def _decades(lo: float, hi: float) -> list[float]:
    """Gridlines at 1, 2, 5 times powers of ten between lo and hi."""
    out = []
    for e in range(math.floor(math.log10(lo)), math.ceil(math.log10(hi)) + 1):
        out += [m * 10 ** e for m in (1, 2, 5) if lo <= m * 10 ** e <= hi]
    return out


def render(s: Scaling) -> str:
    profiles = sorted(s.cells)
    keys = sorted({k for p in profiles for k in endpoints(s, p)},
                  key=lambda k: (k == TOTAL, k))
    color = {k: COLORS[i % len(COLORS)] for i, k in enumerate(keys)}
    values = [v for p in profiles for k in keys if k in s.cells[p]
              for v in s.series(p, k) if v is not None and v > 0]
    lo, hi = min(values) / 1.3, max(values) * 1.3
    xs = _x_positions(s)
    legend_rows = math.ceil(len(keys) / 3)
    width = LEFT + len(profiles) * (PANEL_W + GAP)
    height = TOP + PANEL_H + BOTTOM + legend_rows * LEGEND_H + 10

    def y(v: float) -> float:
        return TOP + PANEL_H * (1 - (math.log10(v) - math.log10(lo))
                                / (math.log10(hi) - math.log10(lo)))

    parts = [(f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
             f'viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="11">'),
             f'<rect width="{width}" height="{height}" fill="white"/>']
    for i, profile in enumerate(profiles):
        x0 = LEFT + i * (PANEL_W + GAP)

        def x(f: float, x0: float = x0) -> float:
            return x0 + 10 + f * (PANEL_W - 20)

        parts.append(f'<text x="{x0 + PANEL_W / 2}" y="{TOP - 15}" text-anchor="middle" '
                     f'font-size="13" font-weight="bold">{escape(profile)}: p95 (ms, log '
                     f'scale) of `{escape(s.scenario)}`</text>')
        parts.append(f'<rect x="{x0}" y="{TOP}" width="{PANEL_W}" height="{PANEL_H}" '
                     'fill="none" stroke="#999"/>')
        for g in _decades(lo, hi):
            parts.append(f'<line x1="{x0}" x2="{x0 + PANEL_W}" y1="{y(g):.1f}" '
                         f'y2="{y(g):.1f}" stroke="#eee"/>')
            if i == 0:
                parts.append(f'<text x="{x0 - 5}" y="{y(g) + 4:.1f}" text-anchor="end">'
                             f'{ms(g)}</text>')
        for d, f in zip(s.datasets, xs, strict=True):
            parts.append(f'<text x="{x(f):.1f}" y="{TOP + PANEL_H + 16}" '
                         f'text-anchor="middle">{escape(d)}</text>')
        for k in keys:
            if k not in s.cells[profile]:
                continue
            points = [(x(f), y(v)) for f, v in zip(xs, s.series(profile, k), strict=True)
                      if v is not None and v > 0]
            path = " ".join(f"{px:.1f},{py:.1f}" for px, py in points)
            dash = ' stroke-dasharray="5,3"' if k == TOTAL else ""
            parts.append(f'<polyline points="{path}" fill="none" stroke="{color[k]}" '
                         f'stroke-width="2"{dash}><title>{escape(short_label(k))}</title>'
                         '</polyline>')
            parts += [f'<circle cx="{px:.1f}" cy="{py:.1f}" r="3" fill="{color[k]}"/>'
                      for px, py in points]
    for j, k in enumerate(keys):
        lx = LEFT + (j % 3) * 280
        ly = TOP + PANEL_H + BOTTOM - 10 + (j // 3) * LEGEND_H
        parts.append(f'<line x1="{lx}" x2="{lx + 20}" y1="{ly}" y2="{ly}" '
                     f'stroke="{color[k]}" stroke-width="2"/>')
        label = "all requests" if k == TOTAL else short_label(k)
        parts.append(f'<text x="{lx + 26}" y="{ly + 4}">{escape(label)}</text>')
    parts.append("</svg>")
    return "\n".join(parts) + "\n"

"""Server-rendered SVG charts for the console (no script, no CDN): a score over time as a polyline with
its points, axis labels in readable values and a text alternative."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe


def series_chart(points: Sequence[tuple[datetime, float]], *, title: str, fmt: Callable[[float], str],
                 when: Callable[[Any], str], width: int = 560, height: int = 160,
                 y_min: float | None = None, y_max: float | None = None) -> SafeString:
    """A line chart of ``(time, value)`` points, oldest first. ``fmt`` renders a value for people (money,
    percent), ``when`` a time. Returns escaped SVG markup with ``role="img"`` and an ``aria-label``."""
    if not points:
        return mark_safe("")  # noqa: S308 - empty string
    left, right, top, bottom = 90, 12, 12, 28
    plot_w, plot_h = width - left - right, height - top - bottom
    values = [v for _, v in points]
    lo = min(values) if y_min is None else min(y_min, min(values))
    hi = max(values) if y_max is None else max(y_max, max(values))
    if hi == lo:
        hi, lo = hi + 1.0, lo - (1.0 if lo else 0.0)
    t0, t1 = points[0][0].timestamp(), points[-1][0].timestamp()
    span = (t1 - t0) or 1.0

    def x(t: datetime) -> float:
        return round(left + ((t.timestamp() - t0) / span if len(points) > 1 else 0.5) * plot_w, 1)

    def y(v: float) -> float:
        return round(top + (1 - (v - lo) / (hi - lo)) * plot_h, 1)

    label = f"{title}: {len(points)} values from {when(points[0][0])} to {when(points[-1][0])}, " \
            f"lowest {fmt(min(values))}, highest {fmt(max(values))}, latest {fmt(values[-1])}"
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" role="img" width="{width}" height="{height}" '
             f'viewBox="0 0 {width} {height}" aria-label="{escape(label)}"><title>{escape(label)}</title>',
             f'<line x1="{left}" y1="{top}" x2="{left}" y2="{top + plot_h}" class="axis"/>',
             f'<line x1="{left}" y1="{top + plot_h}" x2="{left + plot_w}" y2="{top + plot_h}" class="axis"/>',
             f'<text x="{left - 6}" y="{top + 4}" text-anchor="end" class="tick">{escape(fmt(hi))}</text>',
             f'<text x="{left - 6}" y="{top + plot_h}" text-anchor="end" class="tick">{escape(fmt(lo))}</text>',
             f'<text x="{left}" y="{height - 8}" class="tick">{escape(when(points[0][0]))}</text>',
             f'<text x="{left + plot_w}" y="{height - 8}" text-anchor="end" class="tick">'
             f'{escape(when(points[-1][0]))}</text>']
    if len(points) > 1:
        line = " ".join(f"{x(t)},{y(v)}" for t, v in points)
        parts.append(f'<polyline points="{line}" class="series" fill="none"/>')
    for t, v in points:
        parts.append(f'<circle cx="{x(t)}" cy="{y(v)}" r="3" class="point"><title>{escape(when(t))}: '
                     f'{escape(fmt(v))}</title></circle>')
    parts.append("</svg>")
    return mark_safe("".join(parts))  # noqa: S308 - every interpolated text is escaped above

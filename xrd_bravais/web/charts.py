"""Small inline SVG charts for the website: scores over time, drawn on the server.

No script and no external file: the pages keep their strict Content-Security-Policy.
Every number drawn comes from what the page may already show (Public scores, or
under the Ladder the released ones), so a chart reveals nothing a table does not.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from html import escape
from typing import Final

WIDTH: Final = 640
HEIGHT: Final = 260
_MARGIN: Final = (48, 16, 24, 36)  # left, right, top, bottom
# Colour-blind-safe (Okabe-Ito), one per series in order.
_COLOURS: Final = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#000000")


@dataclass(frozen=True)
class Series:
    """One series of a chart: a name and its points (time, score in [0, 1]).

    ``line``: a step line through the points (a score that holds until the next
    one); otherwise the points alone.
    """

    name: str
    points: Sequence[tuple[datetime, float]]
    dashed: bool = False
    line: bool = True


def step_chart(
    series: Sequence[Series], title: str, *, level: Mapping[str, float] | None = None
) -> str:
    """Scores over time as step lines (a score holds until the next one), in inline SVG.

    Parameters
    ----------
    series : sequence of Series
        The lines; each point is a moment and the score from then on.
    title : str
        The chart's accessible name (``<title>`` and ``aria-label``).
    level : mapping of str to float, optional
        Horizontal reference lines (a baseline's score), drawn dashed and labelled.

    Returns
    -------
    str
        An ``<svg>`` element, or ``""`` when there is nothing to draw.
    """
    series = [Series(s.name, [(t, v) for t, v in s.points if v == v], s.dashed, s.line)
              for s in series]  # NaN (a score not shown) is left out
    drawn = [s for s in series if s.points]
    if not drawn:
        return ""
    times = [t for s in drawn for t, _ in s.points]
    start, end = min(times), max(times)
    span = max((end - start).total_seconds(), 1.0)
    values = [v for s in drawn for _, v in s.points] + list((level or {}).values())
    low = max(0.0, min(values) - 0.05)
    high = min(1.0, max(values) + 0.05)
    if high - low < 0.1:
        low, high = max(0.0, high - 0.1), min(1.0, low + 0.1)
    left, right, top, bottom = _MARGIN
    plot_w, plot_h = WIDTH - left - right, HEIGHT - top - bottom

    def x(t: datetime) -> float:
        return left + plot_w * (t - start).total_seconds() / span

    def y(v: float) -> float:
        return top + plot_h * (1 - (v - low) / (high - low))

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT}" '
        f'role="img" aria-label="{escape(title)}" class="chart">',
        f"<title>{escape(title)}</title>",
        f'<rect x="{left}" y="{top}" width="{plot_w}" height="{plot_h}" fill="none" '
        'stroke="#ccc"/>',
    ]
    for k in range(5):
        v = low + (high - low) * k / 4
        parts.append(f'<text x="{left - 6}" y="{y(v) + 4:.1f}" text-anchor="end" '
                     f'font-size="11">{100 * v:.0f} %</text>')  # fmt: skip
    parts.append(f'<text x="{left}" y="{HEIGHT - 8}" font-size="11">{start:%Y-%m-%d}</text>')
    parts.append(f'<text x="{WIDTH - right}" y="{HEIGHT - 8}" font-size="11" '
                 f'text-anchor="end">{end:%Y-%m-%d %H:%M} UTC</text>')  # fmt: skip
    for name, value in (level or {}).items():
        parts.append(f'<line x1="{left}" x2="{WIDTH - right}" y1="{y(value):.1f}" '
                     f'y2="{y(value):.1f}" stroke="#888" stroke-dasharray="4 3"/>')  # fmt: skip
        parts.append(f'<text x="{WIDTH - right - 4}" y="{y(value) - 4:.1f}" font-size="11" '
                     f'text-anchor="end" fill="#555">{escape(name)}</text>')  # fmt: skip
    for index, line in enumerate(drawn):
        colour = _COLOURS[index % len(_COLOURS)]
        ordered = sorted(line.points)
        if line.line:
            path = [f"M{x(ordered[0][0]):.1f},{y(ordered[0][1]):.1f}"]
            path += [f"H{x(t):.1f}V{y(v):.1f}" for t, v in ordered[1:]]
            path.append(f"H{x(end):.1f}")
            dash = ' stroke-dasharray="6 3"' if line.dashed else ""
            parts.append(f'<path d="{"".join(path)}" fill="none" stroke="{colour}" '
                         f'stroke-width="2"{dash}><title>{escape(line.name)}</title>'
                         "</path>")  # fmt: skip
        for t, v in ordered:
            parts.append(f'<circle cx="{x(t):.1f}" cy="{y(v):.1f}" r="3" fill="{colour}">'
                         f"<title>{escape(line.name)}: {100 * v:.1f} % at {t:%Y-%m-%d %H:%M}"
                         "</title></circle>")  # fmt: skip
    # The legend, below the title line.
    for index, line in enumerate(drawn):
        colour = _COLOURS[index % len(_COLOURS)]
        lx = left + 8 + 150 * (index % 4)
        ly = top + 14 + 14 * (index // 4)
        parts.append(f'<rect x="{lx}" y="{ly - 9}" width="10" height="10" fill="{colour}"/>'
                     f'<text x="{lx + 14}" y="{ly}" font-size="11">'
                     f"{escape(line.name[:22])}</text>")  # fmt: skip
    parts.append("</svg>")
    return "".join(parts)

"""Charts drawn from measured data, headless-safe.

Every function returns a matplotlib ``Figure`` (built without pyplot, so no
global state and no display is needed). ``show(fig)`` displays it as a PNG in
a notebook, and the grader picks up the same PNG for the learner's feedback;
``save_png(fig, path)`` writes it to disk.

>>> from course_lib.measure import LatencyStats
>>> fig = latency_percentiles({"no cache": LatencyStats([5_000_000] * 3), "cache": LatencyStats([10_000] * 3)})
>>> len(fig.axes)
1
"""

from __future__ import annotations

import io
import textwrap
from pathlib import Path
from typing import TYPE_CHECKING, Mapping, Sequence

from .config import latency_scale
from .measure import LatencyStats

if TYPE_CHECKING:  # matplotlib is imported when a chart is drawn, not when course_lib is
    from matplotlib.figure import Figure

__all__ = [
    "latency_percentiles",
    "latency_distribution",
    "before_after",
    "hit_ratio_curve",
    "bar_chart",
    "png_bytes",
    "save_png",
    "show",
    "scale_note",
]

_COLORS = ("#4C72B0", "#DD8452", "#55A868", "#C44E52", "#8172B3", "#937860", "#DA8BC3", "#8C8C8C")


def _figure(width: float, height: float) -> Figure:
    """A new constrained-layout figure; the first one drawn imports matplotlib (about 0.3 s)."""
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), layout="constrained")


def _require(series: Mapping, what: str) -> None:
    if not series:
        raise ValueError(f"nothing to draw: pass at least one {what}")


def scale_note(fig: Figure, scale: float | Sequence[float] | None = None) -> Figure:
    """Write under ``fig`` the latency scale its times were measured at (nothing at real speed, 1).

    ``scale`` is a ``LatencyStats.scale``, several of them, or None for the current setting.
    The charts of ``LatencyStats`` call it themselves; call it for a figure of your own that shows
    times measured on the course's simulated services.

    >>> from matplotlib.figure import Figure
    >>> fig = scale_note(Figure(), 0.01)
    >>> fig.get_supxlabel().replace("\\n", " ")  # wrapped to the figure's width
    'times measured at latency scale x0.01 (COURSE_LATENCY_SCALE): every simulated delay is 100x shorter than at real speed'
    >>> scale_note(Figure(), [1.0, 1.0]).get_supxlabel()
    ''
    """
    scales = [latency_scale()] if scale is None else [scale] if isinstance(scale, (int, float)) else list(scale)
    distinct = sorted(set(scales), reverse=True)
    if not distinct or distinct == [1.0]:
        return fig
    factors = " and ".join(f"x{s:g}" for s in distinct)
    if len(distinct) == 1 and 0 < distinct[0] < 1:
        effect = f"every simulated delay is {1 / distinct[0]:g}x shorter than at real speed"
    elif len(distinct) == 1:
        effect = "simulated delays are scaled by that factor"
    else:
        effect = "compare only bars measured at the same scale"
    note = (f"times measured at latency scale{'s' if len(distinct) > 1 else ''} {factors} "
            f"(COURSE_LATENCY_SCALE): {effect}")
    fig.supxlabel(textwrap.fill(note, width=int(fig.get_figwidth() * 13)), fontsize=8, color="#555555")
    return fig


def latency_percentiles(stats: Mapping[str, LatencyStats], *, title: str = "Latency by implementation",
                        log: bool = True) -> Figure:
    """Grouped bars of p50/p95/p99 (ms) for each named implementation."""
    _require(stats, "named LatencyStats")
    fig = _figure(7, 4)
    ax = fig.subplots()
    names = list(stats)
    width = 0.8 / 3
    for j, (label, attr) in enumerate((("p50", "p50_ms"), ("p95", "p95_ms"), ("p99", "p99_ms"))):
        values = [getattr(stats[n], attr) for n in names]
        xs = [i + (j - 1) * width for i in range(len(names))]
        ax.bar(xs, values, width, label=label, color=_COLORS[j])
    ax.set_xticks(range(len(names)), names)
    ax.set_ylabel("latency (ms)" + (", log scale" if log else ""))
    if log:
        ax.set_yscale("log")
    ax.set_title(title)
    ax.legend()
    return scale_note(fig, [s.scale for s in stats.values()])


def latency_distribution(stats: Mapping[str, LatencyStats], *, title: str = "Latency distribution") -> Figure:
    """Box plots (log scale) of every sample of each named implementation, side by side."""
    _require(stats, "named LatencyStats")
    fig = _figure(7, 4)
    ax = fig.subplots()
    data = [[ns / 1e6 for ns in s.samples_ns] or [float("nan")] for s in stats.values()]
    ax.boxplot(data, tick_labels=list(stats), showfliers=True)
    ax.set_yscale("log")
    ax.set_ylabel("latency per call (ms, log scale)")
    ax.set_title(title)
    return scale_note(fig, [s.scale for s in stats.values()])


def before_after(before: LatencyStats, after: LatencyStats, *, labels: tuple[str, str] = ("no cache", "with cache"),
                 title: str = "Total time for the same requests") -> Figure:
    """Two bars: total time of the same request stream without and with a cache."""
    fig = _figure(5, 4)
    ax = fig.subplots()
    totals = [before.total_ms, after.total_ms]
    bars = ax.bar(labels, totals, color=_COLORS[:2])
    ax.bar_label(bars, labels=[f"{t:.1f} ms" for t in totals])
    ax.set_ylabel("total time (ms)")
    ax.set_title(title)
    return scale_note(fig, [before.scale, after.scale])


def hit_ratio_curve(x: Sequence[float], series: Mapping[str, Sequence[float]], *, ceiling: Sequence[float] | None = None,
                    xlabel: str = "cache size (entries)", title: str = "Hit ratio") -> Figure:
    """Hit ratio (0-1) of each named policy against ``x``; ``ceiling`` is drawn dashed (e.g. Belady's optimum)."""
    _require(series, "named series of hit ratios")
    fig = _figure(7, 4)
    ax = fig.subplots()
    for i, (name, ys) in enumerate(series.items()):
        if len(ys) != len(x):
            raise ValueError(f"series {name!r} has {len(ys)} points but x has {len(x)}")
        ax.plot(x, ys, marker="o", label=name, color=_COLORS[i % len(_COLORS)])
    if ceiling is not None:
        ax.plot(x, ceiling, linestyle="--", color="black", label="optimal (Belady)")
    ax.set_xlabel(xlabel)
    ax.set_ylabel("hit ratio")
    ax.set_ylim(0, 1)
    ax.set_title(title)
    ax.legend()
    return fig


def bar_chart(values: Mapping[str, float], *, ylabel: str, title: str = "", log: bool = False,
              scale: float | None = None) -> Figure:
    """One labelled bar per entry, e.g. database calls per implementation.

    When the values are times measured on the simulated services, pass the latency ``scale`` they
    were measured at (a ``LatencyStats.scale``, or ``latency_scale()``): the chart says it.
    """
    _require(values, "named value")
    fig = _figure(6, 4)
    ax = fig.subplots()
    bars = ax.bar(list(values), list(values.values()), color=_COLORS[: len(values)] or None)
    ax.bar_label(bars, labels=[f"{v:,.0f}" if float(v).is_integer() else f"{v:.3g}" for v in values.values()])
    ax.set_ylabel(ylabel)
    if log:
        ax.set_yscale("log")
    ax.set_title(title)
    return fig if scale is None else scale_note(fig, scale)


def png_bytes(fig: Figure, *, dpi: int = 90) -> bytes:
    """The figure rendered as PNG bytes."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    return buf.getvalue()


def save_png(fig: Figure, path: str | Path, *, dpi: int = 90) -> Path:
    """Write the figure as a PNG file and return its path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(png_bytes(fig, dpi=dpi))
    return path


def show(fig: Figure) -> None:
    """Display the figure as a PNG in the notebook (and in grading feedback)."""
    from IPython.display import Image, display

    display(Image(data=png_bytes(fig)))

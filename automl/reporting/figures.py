"""What keeps a figure readable: titles that fit inside it and log axes that carry labels.

A title wider than its figure is cut at both ends in the PNG; a log axis spanning less than a
decade gets a single labelled tick from matplotlib's defaults. Every plot of the reporting
room goes through these two helpers.
"""

from __future__ import annotations

import math
import textwrap

LOG_SUBS = {1: (1.0,), 2: (1.0, 2.0, 5.0), 9: tuple(float(s) for s in range(1, 10))}


def fit_title(figure, text: str, fontsize: float = 9) -> None:
    """Set ``text`` as the figure's title, wrapped to the figure's width (it stays inside)."""
    width_points = figure.get_figwidth() * 72
    chars = max(20, int(width_points / (0.6 * fontsize)) - 4)  # ~0.6 em per character
    figure.suptitle(textwrap.fill(text, chars), fontsize=fontsize)


def readable_log_axis(axis, low: float, high: float) -> None:
    """A log scale whose major ticks are labelled plainly (6.6-54 gets 10, 20, 50), or a
    linear scale where the values span less than a factor of 3 (too little for log ticks)."""
    from matplotlib.ticker import FuncFormatter, LogLocator, MaxNLocator, NullFormatter

    set_scale = axis.axes.set_xscale if axis.axis_name == "x" else axis.axes.set_yscale
    if not (low > 0 and high > 0) or high / low < 3:
        set_scale("linear")
        axis.set_major_locator(MaxNLocator(nbins=6))
        return
    set_scale("log")
    decades = math.log10(high / low)
    subs = LOG_SUBS[9] if decades < 1 else LOG_SUBS[2] if decades < 3 else LOG_SUBS[1]
    axis.set_major_locator(LogLocator(base=10, subs=subs))
    axis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))
    axis.set_minor_formatter(NullFormatter())

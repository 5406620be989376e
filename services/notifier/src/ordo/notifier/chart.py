"""The equity curve as a PNG: matplotlib's Agg backend, with no display and no pyplot state."""

import io
import threading
from collections.abc import Sequence
from datetime import datetime

from ordo.notifier.domain.report import EquityCurve

# matplotlib's font and text caches are shared by every figure: one figure is drawn at a time.
_DRAWING = threading.Lock()


def equity_chart(
    title: str, curves: Sequence[EquityCurve], start: datetime, end: datetime
) -> bytes:
    """Each curve as a step line over [start, end]: flat between trades, a step at each."""
    # Imported here: matplotlib takes seconds to import, and only the report draws.
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.dates import AutoDateLocator, ConciseDateFormatter, date2num
    from matplotlib.figure import Figure

    with _DRAWING:
        figure = Figure(figsize=(8, 4.5), dpi=100, layout="constrained")
        FigureCanvasAgg(figure)
        axes = figure.add_subplot()
        for curve in curves:
            times = [moment for moment, _ in curve.points] + [end]
            # Pixels, not money: matplotlib draws floats; the figures in the text stay exact.
            values = [float(value) for _, value in curve.points]
            values.append(values[-1])
            axes.step(times, values, where="post", label=curve.label, linewidth=1.6)
        if not curves:
            axes.text(0.5, 0.5, "no closed trades", transform=axes.transAxes, ha="center")
        axes.axhline(0, color="grey", linewidth=0.8)
        axes.set_xlim(date2num(start), date2num(end))
        locator = AutoDateLocator()
        axes.xaxis.set_major_locator(locator)
        axes.xaxis.set_major_formatter(ConciseDateFormatter(locator))
        axes.set_title(title)
        axes.set_ylabel("cumulative P&L after fees")
        axes.grid(alpha=0.3)
        if curves:
            axes.legend(loc="upper left", fontsize="small")
        buffer = io.BytesIO()
        figure.savefig(buffer, format="png")
    return buffer.getvalue()

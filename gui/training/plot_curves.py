"""A live line plot of per-step series on a log y axis: each series is a bounded History drawn by
one curve, created once and then only given new data with setData.

The histories are a run's (engine.train.history.RunHistory fills them); `follow` says which
each series draws, `changed` that they grew, and `redraw` (called from a timer) gives each curve
its History's arrays, whose size is bounded whatever the length of the run. A log axis
cannot show zero, NaN or infinity: exact zeros are drawn on a dotted line marked "0" a decade
below the smallest nonzero value of the plot (so they neither vanish nor stretch the axis over
dozens of empty decades), NaN and infinite values are left out, so a diverging run neither
crashes nor warns."""

import csv
import io
import itertools
import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt, Slot
from PySide6.QtGui import QPen
from PySide6.QtWidgets import QGraphicsItem, QWidget

from engine.train.history import OVERVIEW, RECENT, History

ZERO_FLOOR = 1e-30      # where zeros go when a plot has no nonzero value to go below
MAX_POINTS = RECENT + 2 * OVERVIEW  # what one curve of a run is ever given to draw
LEFT_AXIS_WIDTH = 64
TEXT = "#263238"
AXIS = "#607d8b"
FLOOR_NOTE = ("Log scale: exact zeros are drawn on the dotted line marked 0, a decade below "
              f"the smallest nonzero value (at {ZERO_FLOOR:g} if there is none); NaN and "
              "infinite values are left out. Older steps are shown as the lowest and highest "
              "value of each bucket of steps, so spikes survive. Right-click to export PNG or "
              "CSV (the CSV holds the values themselves, zeros and NaN included).")


def style_axis(axis: pg.AxisItem) -> None:
    """A dark axis and text for a white background."""
    axis.setPen(pg.mkPen(AXIS, width=1))
    axis.setTextPen(pg.mkPen(TEXT))


def style_plot(item: pg.PlotItem) -> None:
    """Dark axes and text for a plot on a white background."""
    for name in ("left", "bottom", "right", "top"):
        style_axis(item.getAxis(name))


def zero_floor(ys: list[np.ndarray]) -> float:
    """Where a log plot of the arrays `ys` draws exact zeros: the decade below their smallest
    positive finite value, or ZERO_FLOOR if they have none."""
    smallest = min((float(y[(y > 0) & np.isfinite(y)].min(initial=np.inf)) for y in ys),
                   default=np.inf)
    if not np.isfinite(smallest):
        return ZERO_FLOOR
    return max(10.0 ** (math.floor(math.log10(smallest)) - 1), 1e-300)


def loggable(x: np.ndarray, y: np.ndarray,
             floor: float = ZERO_FLOOR) -> tuple[np.ndarray, np.ndarray]:
    """The points of (x, y) a log y axis can draw: NaN, infinite and negative values dropped,
    zeros drawn at `floor`."""
    keep = np.isfinite(y) & (y >= 0)
    if not keep.all():
        x, y = x[keep], y[keep]
    return x, np.where(y > 0, y, floor)


@dataclass
class Series:
    """One named series: the history it draws (a run's) and the curve that draws it."""

    history: History
    curve: pg.PlotDataItem
    z: float = 0.0


class LogCurvePlot(pg.PlotWidget):
    """Named series over steps on a log y axis, with a legend and horizontal level lines placed
    in data units (they follow the log toggle of the plot's context menu)."""

    def __init__(self, title: str, y_label: str, parent: QWidget | None = None):
        super().__init__(parent, background="w")
        item = self.plot_item = self.getPlotItem()
        style_plot(item)
        item.setTitle(title, color=TEXT, size="10pt")
        item.setLabel("left", y_label, color=TEXT)
        item.getAxis("left").enableAutoSIPrefix(False)
        item.getAxis("left").setWidth(LEFT_AXIS_WIDTH)    # the x axes of the plots line up
        item.setLabel("bottom", "step", color=TEXT)
        item.showGrid(x=True, y=True, alpha=0.15)
        item.setLogMode(y=True)
        # peak keeps the spikes; clipping helps once the user zooms in on x (x auto-range off)
        item.setDownsampling(auto=True, mode="peak")
        item.setClipToView(True)
        # an axis paints its text again whenever the plot repaints: half of a repaint's cost
        # unless kept as a pixmap, which only a change of its range redraws
        for name in ("left", "bottom"):
            item.getAxis(name).setCacheMode(QGraphicsItem.CacheMode.DeviceCoordinateCache)
        self.legend = item.addLegend(offset=(-4, 2), verSpacing=-6, labelTextColor=TEXT,
                                     labelTextSize="8pt", brush=pg.mkBrush(255, 255, 255, 170),
                                     pen=pg.mkPen(200, 200, 200))
        self.setToolTip(FLOOR_NOTE)
        self.series: dict[str, Series] = {}
        self._levels: dict[pg.InfiniteLine, float | None] = {}
        self._dirty = False
        item.ctrl.logYCheck.toggled.connect(self._place_levels)
        self.zero_line = self.add_level("0", pg.mkPen(AXIS, width=1, style=Qt.PenStyle.DotLine),
                                        position=0.98, above=True)

    def add_series(self, name: str, pen: QPen, z: float = 0.0) -> Series:
        """A new series drawn with `pen`, listed in the legend as `name`, above the series of
        lower `z`; empty until `follow` gives it a history."""
        curve = self.plot_item.plot(name=name, pen=pen)
        series = self.series[name] = Series(History(RECENT, OVERVIEW), curve, z)
        curve.setZValue(z)
        return series

    def remove_series(self, name: str) -> None:
        self.plot_item.removeItem(self.series.pop(name).curve)

    def follow(self, histories: Mapping[str, History]) -> None:
        """Draw `histories[name]` as series `name` from now on; the curves are emptied now and
        drawn again by the first `redraw` after `changed`."""
        for name, series in self.series.items():
            series.history = histories[name]
            series.curve.setData([], [])
        self.set_level(self.zero_line, None)
        self._dirty = False

    def changed(self) -> None:
        """The histories grew: the next `redraw` draws them."""
        self._dirty = True

    def redraw(self) -> None:
        """Give every curve its bounded history if it changed since the last time."""
        if not self._dirty:
            return
        arrays = [series.history.arrays() for series in self.series.values()]
        floor = zero_floor([y for _, y in arrays])
        has_zero = False
        for series, (x, y) in zip(self.series.values(), arrays, strict=True):
            series.curve.setData(*loggable(x, y, floor))
            zeros = float(np.count_nonzero(y == 0)) / max(len(y), 1)
            has_zero = has_zero or zeros > 0
            # a series that keeps dropping to the zero line draws a fence: keep it beneath
            series.curve.setZValue(series.z - zeros)
        self.set_level(self.zero_line, floor if has_zero else None)
        self._dirty = False
        # settle the auto range now: settled inside the paint, it changes the axes and so
        # asks for a second paint of the whole plot
        self.scene().prepareForPaint()

    @property
    def log_y(self) -> bool:
        return self.plot_item.ctrl.logYCheck.isChecked()

    def add_level(self, label: str, pen: QPen, position: float = 0.06,
                  above: bool = False) -> pg.InfiniteLine:
        """A horizontal line, labelled at `position` (0 left, 1 right) below it (above it if
        `above`: a line at the bottom of the plot), hidden until `set_level` gives it a
        value."""
        anchor = (0, 1) if above else (0, 0)
        line = pg.InfiniteLine(angle=0, pen=pen, movable=False, label=label,
                               labelOpts={"position": position, "color": pen.color(),
                                          "anchors": [anchor, anchor]})
        line.setVisible(False)
        self.plot_item.addItem(line)
        self._levels[line] = None
        return line

    def set_level(self, line: pg.InfiniteLine, value: float | None) -> None:
        """Put `line` at y = `value` in data units (None hides it)."""
        self._levels[line] = value
        self._place(line, value)

    @Slot(bool)
    def _place_levels(self, _log: bool) -> None:
        for line, value in self._levels.items():
            self._place(line, value)

    def _place(self, line: pg.InfiniteLine, value: float | None) -> None:
        usable = value is not None and np.isfinite(value) and (value > 0 or not self.log_y)
        line.setVisible(usable)
        if usable:
            line.setValue(math.log10(value) if self.log_y else value)

    def csv_text(self) -> str:
        """Every series as two columns, "<name> step" and "<name> value", of the values kept
        (zeros and NaN as they are, not as drawn), each in full precision."""
        columns: list[tuple[str, list[str]]] = []
        for name, series in self.series.items():
            x, y = series.history.arrays()
            columns.append((f"{name} step", [str(int(v)) for v in x]))
            columns.append((f"{name} value", [repr(float(v)) for v in y]))
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow([title for title, _ in columns])
        writer.writerows(itertools.zip_longest(*(values for _, values in columns),
                                               fillvalue=""))
        return out.getvalue()

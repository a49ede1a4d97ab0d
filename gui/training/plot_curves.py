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
from PySide6.QtCore import QLineF, QRectF, Qt, Slot
from PySide6.QtGui import QColor, QPainter, QPen
from PySide6.QtWidgets import QGraphicsItem, QSizePolicy, QWidget

from engine.train.history import OVERVIEW, RECENT, History
from gui.colors import WHITE, flattened

# the spans of steps the x axis takes as a run grows (times powers of ten): the curves fill 75%
# of it or more, and the axis, drawn again only when its range changes, changes ~10 times a
# decade of steps, not at every redraw
X_SPANS = (1.0, 1.25, 1.5, 2.0, 2.5, 3.0, 4.0, 5.0, 6.0, 8.0, 10.0)
ZERO_FLOOR = 1e-30      # where zeros go when a plot has no nonzero value to go below
MAX_POINTS = RECENT + 2 * OVERVIEW  # what one curve of a run is ever given to draw
LEFT_AXIS_WIDTH = 64
TEXT = "#263238"
AXIS = "#607d8b"
# major, minor tick lines, opaque (colors.flattened): translucent, a repaint of the grid (at
# every change of the view's range) took 2-4 ms, opaque 0.1 ms
GRID = (flattened(QColor(0, 0, 0, 36), WHITE), flattened(QColor(0, 0, 0, 16), WHITE))
TITLE_HEIGHT = 20       # px of a plot's title row (pyqtgraph gives it 30)
TEXT_GAP = 2            # px at least between two tick labels of an axis
PLOT_MARGIN = 1         # px of pyqtgraph's plot layout on each side
SAMPLE_WIDTH = 18       # px of a legend's line sample, its gap included
SAMPLE_GAP = 5
MINOR_LABELS = (2, 5)   # the minor ticks of a log axis that may be labelled: 2·10ⁿ and 5·10ⁿ
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


class TickAxis(pg.AxisItem):
    """An axis whose tick labels never overlap: a label that would touch one already placed
    (of a higher level, or earlier in its level) is left out. On a log axis the minor ticks
    are labelled at 2·10ⁿ and 5·10ⁿ only, where there is room: all eight crowded each decade
    together at its top (8·10ⁿ, 9·10ⁿ, 10ⁿ⁺¹ a few px apart)."""

    _label_html: str | None = None

    def _updateLabel(self) -> None:
        # pyqtgraph sets the label's text again at every change of range (for an SI prefix that
        # may come with it): the same text laid out again, some forty times when the plots are
        # laid out (6 ms). Only a changed text is set again.
        html = self.labelString()
        if html != self._label_html:
            self._label_html = html
            self.label.setHtml(html)
        self._adjustSize()
        self.picture = None
        self.update()

    def logTickStrings(self, values: list[float], scale: float, spacing: float) -> list:
        strings = super().logTickStrings(values, scale, spacing)
        if spacing is not None:     # a level of whole decades
            return strings
        mantissas = [round(10.0 ** (v % 1.0), 6) for v in values]
        return [text if m in MINOR_LABELS else None
                for text, m in zip(strings, mantissas, strict=True)]

    def generateDrawSpecs(self, p: QPainter):
        specs = super().generateDrawSpecs(p)
        if specs is None:
            return None
        axis, ticks, texts = specs
        kept: list[QRectF] = []
        placed = []
        for spec in texts:          # the first level first, each in order along the axis
            rect = spec[0].adjusted(-TEXT_GAP / 2, -TEXT_GAP / 2, TEXT_GAP / 2, TEXT_GAP / 2)
            if not any(rect.intersects(other) for other in kept):
                kept.append(rect)
                placed.append(spec)
        return axis, ticks, placed


class ShortSample(pg.ItemSample):
    """A legend's line sample 13 px long after a gap of SAMPLE_GAP from the entry before it
    (pyqtgraph's: 20 px, no gap): six parameters fit a row of a laptop's plot. Clicking it
    hides or shows its curve, as pyqtgraph's does."""

    def __init__(self, item: pg.PlotDataItem):
        super().__init__(item)
        self.setFixedWidth(SAMPLE_WIDTH)

    def boundingRect(self) -> QRectF:
        return QRectF(0, 0, SAMPLE_WIDTH, 20)

    def paint(self, painter: QPainter, *_args) -> None:
        if not self.item.isVisible():
            super().paint(painter, *_args)      # pyqtgraph's crossed-out eye
            return
        painter.setPen(pg.mkPen(self.item.opts["pen"]))
        painter.drawLine(SAMPLE_GAP, 11, SAMPLE_WIDTH, 11)


class RowLegend(pg.LegendItem):
    """A legend that is a row (or a few) of its plot's layout, below the axis, never over the
    curves; as many entries a row as the plot's width holds (`fit`). Not draggable."""

    def __init__(self, **kwargs):
        super().__init__(offset=None, frame=False, horSpacing=2, sampleType=ShortSample,
                         **kwargs)
        self.layout.setContentsMargins(0, 0, 0, 0)
        self._width = 0.0

    def addItem(self, item: pg.PlotDataItem, name: str) -> None:
        super().addItem(item, name)
        sample, label = self.items[-1]
        label.item.document().setDocumentMargin(0)     # 4 px each side by default
        label.updateMin()
        # painted from a pixmap: a repaint of the plot does not draw its text again
        for part in (sample, label.item):
            part.setCacheMode(QGraphicsItem.CacheMode.DeviceCoordinateCache)

    def updateSize(self) -> None:
        # pyqtgraph's legend sets its own geometry; in a layout it asks for its size instead
        self.updateGeometry()

    def fit(self, width: float | None = None) -> None:
        """As many columns as `width` px (the last given, if None) holds, at least one."""
        self._width = self._width if width is None else width
        room = self._width - 2 * PLOT_MARGIN
        for columns in range(len(self.items), 0, -1):
            self.setColumnCount(columns)
            if self.effectiveSizeHint(Qt.SizeHint.MinimumSize).width() <= room:
                break

    def mouseDragEvent(self, ev) -> None:
        ev.ignore()


class GridLines(pg.GraphicsObject):
    """Light lines across a plot at the ticks of its two axes (the first two levels: major and
    minor), behind the curves. pyqtgraph's own grid (showGrid) is painted by the axes, and
    every repaint of a live plot, whose axes' ranges move, then cost three times as much."""

    def __init__(self, item: pg.PlotItem):
        super().__init__()
        self._item = item
        self.setZValue(-1e9)
        self._pens = [pg.mkPen(color, width=1) for color in GRID]
        for pen in self._pens:
            pen.setCosmetic(True)
        item.getViewBox().sigRangeChanged.connect(self._moved)
        # drawn again only when the view moves or resizes, not at every repaint of the curves
        # in front of it
        self.setCacheMode(QGraphicsItem.CacheMode.DeviceCoordinateCache)

    @Slot()
    def _moved(self) -> None:
        self.prepareGeometryChange()
        self.update()

    def boundingRect(self) -> QRectF:
        return self._item.getViewBox().viewRect()

    def lines(self) -> list[list[QLineF]]:
        """The lines of each level (major, minor) across the view, in view coordinates."""
        view = self._item.getViewBox()
        rect, (width, height) = view.viewRect(), (view.width(), view.height())
        if width <= 0 or height <= 0:
            return [[] for _ in GRID]
        verticals = self._item.getAxis("bottom").tickValues(rect.left(), rect.right(), width)
        horizontals = self._item.getAxis("left").tickValues(rect.top(), rect.bottom(), height)
        levels = []
        for level in range(len(GRID)):
            lines = [QLineF(x, rect.top(), x, rect.bottom())
                     for x in (verticals[level][1] if level < len(verticals) else ())]
            lines += [QLineF(rect.left(), y, rect.right(), y)
                      for y in (horizontals[level][1] if level < len(horizontals) else ())]
            levels.append(lines)
        return levels

    def paint(self, painter: QPainter, *_args) -> None:
        painter.setRenderHint(QPainter.RenderHint.Antialiasing, False)
        for pen, lines in zip(self._pens, self.lines(), strict=True):
            if lines:
                painter.setPen(pen)
                painter.drawLines(lines)


def x_span(span: float) -> float:
    """The smallest of X_SPANS times a power of ten that holds `span` (> 0)."""
    decade = 10.0 ** math.floor(math.log10(span))
    return next(decade * f for f in X_SPANS if decade * f >= span * (1 - 1e-12))


def decimated(x: np.ndarray, y: np.ndarray, low: float, high: float,
              columns: int) -> tuple[np.ndarray, np.ndarray]:
    """What a plot `columns` px wide showing x from `low` to `high` can show of the points
    (x, y), x increasing: those outside dropped but the nearest on each side (the line goes on
    to the edge), and where a pixel column holds more than two, its lowest and highest value
    (at its first and last step), so spikes survive. Painting a curve costs what its path
    has: a thousand steps of a noisy loss within one pixel took 40-80 ms to stroke."""
    start = max(int(np.searchsorted(x, low)) - 1, 0)
    stop = min(int(np.searchsorted(x, high, side="right")) + 1, len(x))
    x, y = x[start:stop], y[start:stop]
    if len(x) <= 2 * columns or high <= low:
        return x, y
    column = np.floor((x - low) * (columns / (high - low)))
    starts = np.flatnonzero(np.r_[True, column[1:] != column[:-1]])
    ends = np.r_[starts[1:], len(x)] - 1
    lowest, highest = np.minimum.reduceat(y, starts), np.maximum.reduceat(y, starts)
    # a column of one point gives it once: never more points than were given
    keep = np.column_stack([np.ones(len(starts), dtype=bool), ends > starts]).ravel()
    return (np.column_stack([x[starts], x[ends]]).ravel()[keep],
            np.column_stack([lowest, highest]).ravel()[keep])


def view_range(xs: list[np.ndarray], ys: list[np.ndarray],
               log_y: bool) -> tuple[tuple[float, float], tuple[float, float]]:
    """The x and y ranges (in view coordinates: log10 of y on a log axis) that show the points
    (xs, ys) as drawn: x from the first step over a span of X_SPANS, y over whole decades on a
    log axis, whole units of its order of magnitude on a linear one. Steady: a run that grows
    moves them seldom."""
    x = np.concatenate(xs) if xs else np.empty(0)
    y = np.concatenate(ys) if ys else np.empty(0)
    if log_y:
        with np.errstate(divide="ignore", invalid="ignore"):
            y = np.log10(y)
    x, y = x[np.isfinite(x)], y[np.isfinite(y)]
    low = float(x.min()) if x.size else 0.0
    high = float(x.max()) if x.size else low + 10.0
    x_range = (low, low + x_span(max(high - low, 10.0)))
    if not y.size:
        return x_range, ((-1.0, 0.0) if log_y else (0.0, 1.0))
    bottom, top = float(y.min()), float(y.max())
    if log_y:
        bottom, top = math.floor(bottom - 0.02), math.ceil(top + 0.02)
    else:
        unit = 10.0 ** math.floor(math.log10(max(top - bottom, abs(top), abs(bottom), 1e-300)))
        bottom, top = math.floor(bottom / unit) * unit, math.ceil(top / unit) * unit
        top = top if top > bottom else bottom + unit
    return x_range, (bottom, top)


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
        super().__init__(parent, background="w",
                         axisItems={name: TickAxis(name) for name in ("left", "bottom")})
        item = self.plot_item = self.getPlotItem()
        style_plot(item)
        item.setTitle(title, color=TEXT, size="9pt")
        # over the whole plot, not only the view box, in a row of TITLE_HEIGHT: a laptop's
        # plot is 220 px wide, 250 high
        item.layout.removeItem(item.titleLabel)
        item.layout.addItem(item.titleLabel, 0, 0, 1, 3)
        item.titleLabel.item.document().setDocumentMargin(1)
        item.titleLabel.updateMin()
        item.layout.setRowFixedHeight(0, TITLE_HEIGHT)
        item.setLabel("left", y_label, color=TEXT, **{"font-size": "8pt"})
        item.getAxis("left").enableAutoSIPrefix(False)
        item.getAxis("left").setWidth(LEFT_AXIS_WIDTH)    # the x axes of the plots line up
        item.setLabel("bottom", "step", color=TEXT)
        self.grid = GridLines(item)
        item.getViewBox().addItem(self.grid, ignoreBounds=True)
        item.setLogMode(y=True)
        # the curves are given at most two points a pixel column (`decimated`), not left to
        # pyqtgraph's downsampling, which takes the steps as evenly spaced: a history's are not
        # the range follows the curves by our steady steps (view_range), not pyqtgraph's auto
        # range, which moves both axes at every redraw and so has them and every curve drawn
        # again; until the user zooms or pans an axis, and again once they ask for auto range
        item.getViewBox().disableAutoRange()
        self._following = [True, True]
        item.getViewBox().sigRangeChangedManually.connect(self._taken)
        # an axis paints its text again whenever the plot repaints: half of a repaint's cost
        # unless kept as a pixmap, which only a change of its range redraws
        for name in ("left", "bottom"):
            item.getAxis(name).setCacheMode(QGraphicsItem.CacheMode.DeviceCoordinateCache)
        # below the step axis, not over the curves (where pyqtgraph puts a legend)
        self.legend = item.legend = RowLegend(verSpacing=-6, labelTextColor=TEXT,
                                              labelTextSize="8pt")
        self.legend.setSizePolicy(QSizePolicy.Policy.Fixed, QSizePolicy.Policy.Fixed)
        item.layout.addItem(self.legend, 4, 0, 1, 3)
        item.layout.setAlignment(self.legend, Qt.AlignmentFlag.AlignHCenter)
        item.layout.setRowStretchFactor(4, 0)
        self.setToolTip(FLOOR_NOTE)
        self.series: dict[str, Series] = {}
        self._levels: dict[pg.InfiniteLine, float | None] = {}
        self._dirty = False
        item.ctrl.logYCheck.toggled.connect(self._place_levels)
        self.zero_line = self.add_level("0", pg.mkPen(AXIS, width=1, style=Qt.PenStyle.DotLine),
                                        position=0.98, above=True)

    def add_series(self, name: str, pen: QPen, z: float = 0.0,
                   legend: str | None = "") -> Series:
        """A new series drawn with `pen`, listed in the legend as `legend` (`name` if "",
        not listed if None), above the series of lower `z`; empty until `follow` gives it a
        history."""
        curve = self.plot_item.plot(name=(legend or name) if legend is not None else None,
                                    pen=pen)
        series = self.series[name] = Series(History(RECENT, OVERVIEW), curve, z)
        curve.setZValue(z)
        self.legend.fit()
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
        self._following = [True, True]
        self._fit([], [])

    @property
    def dirty(self) -> bool:
        """Whether the next `redraw` has something to draw."""
        return self._dirty

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
        shown = [loggable(x, y, floor) for x, y in arrays]
        self._fit([x for x, _ in shown], [y for _, y in shown])
        low, high = self.getViewBox().viewRange()[0]
        columns = max(int(self.getViewBox().width()), 100)
        for series, (_, y), points in zip(self.series.values(), arrays, shown, strict=True):
            series.curve.setData(*decimated(*points, low, high, columns))
            zeros = float(np.count_nonzero(y == 0)) / max(len(y), 1)
            has_zero = has_zero or zeros > 0
            # a series that keeps dropping to the zero line draws a fence: keep it beneath
            series.curve.setZValue(series.z - zeros)
        self.set_level(self.zero_line, floor if has_zero else None)
        self._dirty = False
        # settle the auto range now: settled inside the paint, it changes the axes and so
        # asks for a second paint of the whole plot
        self.scene().prepareForPaint()

    def _fit(self, xs: list[np.ndarray], ys: list[np.ndarray]) -> None:
        """Show the points drawn (view_range) on the axes the user has not taken."""
        box = self.getViewBox()
        for axis, auto in enumerate(box.state["autoRange"]):
            if auto is not False:   # asked for again (the A button, View All)
                self._following[axis] = True
        box.disableAutoRange()
        x_range, y_range = view_range(xs, ys, self.log_y)
        shown = box.viewRange()
        if self._following[0] and tuple(shown[0]) != x_range:
            box.setXRange(*x_range, padding=0)
        if self._following[1] and tuple(shown[1]) != y_range:
            box.setYRange(*y_range, padding=0)

    @Slot(object)
    def _taken(self, axes: list[bool]) -> None:
        """The user zoomed or panned `axes` ([x, y]): they stay where the user put them."""
        for axis, moved in enumerate(axes):
            if moved:
                self._following[axis] = False
        self._dirty = True      # the steps now shown, to the pixel

    def show_steps(self, low: float, high: float) -> None:
        """Show steps `low` to `high` (another plot's zoom), from now on as the user's."""
        self._following[0] = False
        self.getViewBox().setXRange(low, high, padding=0)
        self._dirty = True

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        if hasattr(self, "plot_item"):  # (pyqtgraph resizes it while it is being made)
            self.legend.fit(self.width())
        self._dirty = True      # as many points as it has pixel columns now

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
        self._dirty = True      # and the range in the axis's new units
        self.redraw()

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

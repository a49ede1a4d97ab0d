"""What a two-input network computes over its input square, drawn as an image.

Regression: the network's first output beside the target, engine.files.datasets'
regression_target ((x1² + x2²)/2), when the samples' labels follow it (the built-in regression
set), with the samples coloured by their targets.
Binary cross-entropy: the predicted probability of class 1 with the samples marked by class and
the 0.5 contour, the decision boundary. Networks with another number of inputs get a sentence
instead. Every number comes from the scratch engine's forward pass on a grid of the square."""

import math

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QRectF, Qt
from PySide6.QtWidgets import QLabel, QStackedWidget, QWidget

from engine.files.datasets import Dataset, follows_regression_target, regression_target
from engine.net.params import Params
from engine.net.scratch import ScratchNet
from engine.net.spec import NetworkSpec
from gui.colors import NEGATIVE, POSITIVE, diverging_rgb
from gui.training.plot_curves import TEXT, TickAxis, style_axis, style_plot

GRID = 48             # cells per side of the input square
MAX_SAMPLES = 5000    # samples drawn over the surface; more would hide it
VIEW_MARGIN = 1       # px around pyqtgraph's central layout inside its widget


def diverging_colormap() -> pg.ColorMap:
    """The window's diverging scale (blue, white at the middle, red) as a pyqtgraph map."""
    return pg.ColorMap(np.linspace(0.0, 1.0, 9),
                       diverging_rgb(np.linspace(-1.0, 1.0, 9), 1.0).astype(np.uint8))


def input_square(x: np.ndarray) -> tuple[tuple[float, float], tuple[float, float]]:
    """(low, high) of each of the two input columns of x (N, 2), rounded outward to a tenth of
    the span's order of magnitude, so U[0,1] samples give [0, 1]."""
    ranges = []
    for column in np.asarray(x, dtype=np.float64).T:
        finite = column[np.isfinite(column)]
        lo, hi = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
        if hi - lo <= 0:
            lo, hi = lo - 0.5, hi + 0.5
        step = 10.0 ** round(math.log10(hi - lo)) / 10
        ranges.append((math.floor(lo / step) * step, math.ceil(hi / step) * step))
    return ranges[0], ranges[1]


def grid_points(ranges: tuple[tuple[float, float], tuple[float, float]],
                n: int = GRID) -> np.ndarray:
    """The centres of n x n cells of the square, (n·n, 2), row by row of x2 (so a result
    reshaped to (n, n) is indexed [x2 cell, x1 cell])."""
    (lo1, hi1), (lo2, hi2) = ranges
    c1 = lo1 + (np.arange(n) + 0.5) * (hi1 - lo1) / n
    c2 = lo2 + (np.arange(n) + 0.5) * (hi2 - lo2) / n
    x1, x2 = np.meshgrid(c1, c2)
    return np.column_stack([x1.ravel(), x2.ravel()])


def network_surface(spec: NetworkSpec, params: Params, points: np.ndarray) -> np.ndarray:
    """The first output of the scratch network at each point, (len(points),) float64; NaN
    where diverged parameters overflow."""
    zeros = np.zeros((len(points), spec.n_outputs))
    with np.errstate(all="ignore"):
        y_hat = ScratchNet(spec, params).forward(points, zeros).y_hat
    return y_hat[:, 0].astype(np.float64)


class SurfacePanel(QStackedWidget):
    """`configure(spec)` once per run, then `show_state(spec, params, data)` with the current
    parameters. `available` is False (and a sentence shown) unless the network has two inputs."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.view = pg.GraphicsLayoutWidget()
        self.view.setBackground("w")
        self.message = QLabel()
        self.message.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.message.setWordWrap(True)
        self.addWidget(self.view)
        self.addWidget(self.message)
        self.output_plot = self._square_plot()
        self.target_plot = self._square_plot()
        self.output_image = pg.ImageItem(axisOrder="row-major")
        self.target_image = pg.ImageItem(axisOrder="row-major")
        self.output_plot.addItem(self.output_image)
        self.note = pg.TextItem(anchor=(0.5, 0.5), color="#b3261e")
        self.output_plot.addItem(self.note, ignoreBounds=True)
        self.target_plot.addItem(self.target_image)
        self.boundary = pg.IsocurveItem(level=0.5, pen=pg.mkPen("k", width=2),
                                        axisOrder="row-major")
        self.boundary.setParentItem(self.output_image)
        edge = pg.mkPen(40, 40, 40, width=1)
        self.class_samples = [
            pg.ScatterPlotItem(symbol="o", size=7, pen=edge, brush=pg.mkBrush(NEGATIVE)),
            pg.ScatterPlotItem(symbol="t1", size=8, pen=edge, brush=pg.mkBrush(POSITIVE))]
        for item in self.class_samples:
            self.output_plot.addItem(item)
        self.target_samples = pg.ScatterPlotItem(symbol="o", size=6, pen=edge)
        self.target_plot.addItem(self.target_samples)
        self.colorbar = pg.ColorBarItem(interactive=False, width=12, colorMap="viridis")
        self.colorbar.setImageItem([self.output_image, self.target_image])
        style_axis(self.colorbar.axis)
        self.target_plot.setXLink(self.output_plot)
        self.target_plot.setYLink(self.output_plot)
        self.view.addItem(self.output_plot, 0, 0)
        self.view.addItem(self.colorbar, 0, 2)
        grid = self.view.ci.layout
        grid.setColumnStretchFactor(0, 1)
        grid.setColumnStretchFactor(1, 1)
        self.available = False
        self.bce = False
        self._data: Dataset | None = None
        self._points = np.zeros((0, 2))
        self._rect = QRectF()
        self._levels = (0.0, 1.0)
        self._shown = ""
        self._configured: tuple[int, str] | None = None

    def _square_plot(self) -> pg.PlotItem:
        plot = pg.PlotItem(axisItems={name: TickAxis(name) for name in ("left", "bottom")})
        style_plot(plot)
        plot.setMenuEnabled(False)
        plot.hideButtons()
        plot.setLabel("bottom", "x1", color=TEXT)
        plot.setLabel("left", "x2", color=TEXT)
        plot.setAspectLocked(True)
        # the title over the whole plot, not only its square: the square's column would be at
        # least as wide as the title, and two linked squares of unequal sizes, each locked to
        # its aspect, move each other's ranges
        plot.layout.removeItem(plot.titleLabel)
        plot.layout.addItem(plot.titleLabel, 0, 0, 1, 3)
        return plot

    def configure(self, spec: NetworkSpec) -> None:
        """Set up for a network of `spec`; nothing is drawn until `show_state`. A network like
        the last one (two inputs, the same loss) keeps its drawing and its data until then:
        drawn from nothing, the panel is laid out and painted whole (90 ms, at the start of
        every run)."""
        if self._configured == (spec.n_inputs, spec.loss):
            return
        self._configured = (spec.n_inputs, spec.loss)
        self.available = spec.n_inputs == 2
        self.bce = spec.loss == "bce"
        self._data = None
        self.setCurrentWidget(self.view if self.available else self.message)
        self.message.setText(
            "" if self.available else
            f"The output surface is drawn for networks with two inputs; this one has "
            f"{spec.n_inputs}.")
        has_target = self.target_plot.scene() is not None
        if self.bce and has_target:
            self.view.removeItem(self.target_plot)
        elif not self.bce and not has_target:
            self.view.addItem(self.target_plot, 0, 1)
        self.colorbar.setColorMap(diverging_colormap() if self.bce else "viridis")
        self._share_width()
        for image in (self.output_image, self.target_image):
            image.clear()
        self.boundary.setData(None)
        for item in (*self.class_samples, self.target_samples):
            item.clear()

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        self._share_width()

    def _share_width(self) -> None:
        """The output and the target plots take equal widths beside the colour bar, so their
        squares are one size: left to the layout, the one with the longer title took more."""
        plots = [self.output_plot] + ([self.target_plot] if self.target_plot.scene() else [])
        grid = self.view.ci.layout
        left, _, right, _ = grid.getContentsMargins()
        room = (self.view.width() - left - right - self.colorbar.width()
                - grid.horizontalSpacing() * len(plots) - 2 * VIEW_MARGIN)
        for plot in plots:
            plot.setFixedWidth(max(room / len(plots), plot.titleLabel.minimumWidth()))

    def show_state(self, spec: NetworkSpec, params: Params, data: Dataset) -> None:
        """Draw the surface of `params` over the square of `data`'s inputs."""
        if not self.available:
            return
        if data is not self._data:
            self._set_data(data)
        surface = network_surface(spec, params, self._points).reshape(GRID, GRID)
        finite = bool(np.isfinite(surface).all())
        self.output_image.setImage(surface, autoLevels=False, levels=self._levels)
        self.output_image.setRect(self._rect)
        # the contour of non-finite values would divide by NaN
        self.boundary.setData(surface if self.bce and finite else None)
        # titles stay short: the grid layout gives a plot at least its title's width, and a
        # wider one pushes the colour bar out of the panel
        if self.bce:
            what = "P(class 1), line p = 0.5<br>○ class 0, △ class 1" + self._shown
        else:
            what = "output ŷ₁" if spec.n_outputs > 1 else "output ŷ"
        _set_title(self.output_plot, what)
        note = "" if finite else "not finite:\nthe run diverged"
        if note != self.note.toPlainText():
            self.note.setText(note)
            self.note.setPos(self._rect.center())

    def _set_data(self, data: Dataset) -> None:
        """The square, the levels and the samples of new data."""
        self._data = data
        ranges = input_square(data.x)
        (lo1, hi1), (lo2, hi2) = ranges
        self._rect = QRectF(lo1, lo2, hi1 - lo1, hi2 - lo2)
        self._points = grid_points(ranges)
        for plot in (self.output_plot, self.target_plot):
            plot.setRange(xRange=(lo1, hi1), yRange=(lo2, hi2), padding=0)
        self._shown = shown = (f" ({MAX_SAMPLES} of {len(data)} samples)"
                               if len(data) > MAX_SAMPLES else "")
        x, y = data.x[:MAX_SAMPLES].astype(np.float64), data.y[:MAX_SAMPLES, 0].astype(np.float64)
        if self.bce:
            self._levels = (0.0, 1.0)
            positive = y >= 0.5
            self.class_samples[0].setData(x[~positive, 0], x[~positive, 1])
            self.class_samples[1].setData(x[positive, 0], x[positive, 1])
            self.colorbar.setLevels(self._levels)
            return
        target = (regression_target(self._points).reshape(GRID, GRID)
                  if follows_regression_target(data) else None)
        values = np.concatenate([y[np.isfinite(y)], [] if target is None else target.ravel()])
        lo, hi = (float(values.min()), float(values.max())) if values.size else (0.0, 1.0)
        self._levels = (lo, hi if hi > lo else lo + 1.0)
        self.colorbar.setLevels(self._levels)
        if target is None:
            self.target_image.clear()
        else:
            self.target_image.setImage(target, autoLevels=False, levels=self._levels)
            self.target_image.setRect(self._rect)
        colors = self.colorbar.colorMap().map((y - lo) / (self._levels[1] - lo), mode="qcolor")
        self.target_samples.setData(x[:, 0], x[:, 1], brush=[pg.mkBrush(c) for c in colors])
        _set_title(self.target_plot, ("target (x1²+x2²)/2" if target is not None
                                      else "targets of the samples") + shown)


def _set_title(plot: pg.PlotItem, text: str) -> None:
    """Title `plot` `text` unless it has it: a title set lays the whole panel out again."""
    if plot.titleLabel.text != text or not plot.titleLabel.isVisible():
        plot.setTitle(text, color=TEXT, size="9pt")

"""A sample x element heatmap of how far two gradient files are apart: one row per sample, one
block of columns per parameter (w1, b1, w2, ... in order), dashed lines between the blocks and
each block named on the axis.

A block is as wide as its parameter has elements, but never narrower than a share of the whole
(BLOCK_SHARE): a bias of one element beside a weight of a hundred would otherwise be a sliver
with no room for its name. Each disagreeing parameter gets one ring, on its worst cell, and the
cell under the mouse a thin frame; the colours stay visible around and inside both.

It draws what it is given and reports which cell the mouse is over or clicked; what a cell
means is the compare dialog's business."""

import math

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QPointF, QRectF, Qt, Signal, Slot
from PySide6.QtGui import QColor, QPen
from PySide6.QtWidgets import QGraphicsRectItem, QWidget

MAX_IMAGE_SIDE = 4096      # larger blocks are shown max-pooled; the cells reported stay exact
BLOCK_SHARE = 0.5          # each block is at least this share of an even split of the width
RING_SIZE = 13             # px: a ring around the worst cell, hollow so the cell shows


def block_edges(counts: list[int]) -> np.ndarray:
    """The x where each parameter's block starts, and the end of the last (len(counts) + 1):
    block i is max(counts[i], BLOCK_SHARE · total / len(counts)) wide."""
    least = BLOCK_SHARE * sum(counts) / max(len(counts), 1)
    widths = [max(float(c), least) for c in counts]
    return np.concatenate([[0.0], np.cumsum(widths)])


class DiffHeatmap(pg.PlotWidget):
    """`show_values(values, levels, offsets, names, marks)`: values (N, P) drawn on a diverging
    colour map whose middle is the agree/disagree boundary, parameter i in columns
    offsets[i]..offsets[i + 1]; `marks` are the (sample from 0, column) cells that get a ring.
    Sample k (from 1) is the row centred on y = k. cellHovered / cellClicked carry (sample from
    0, column)."""

    cellHovered = Signal(int, int)
    cellClicked = Signal(int, int)

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        item = self.getPlotItem()
        item.setMenuEnabled(False)
        item.hideButtons()
        item.setLabel("bottom", "parameters: one block each, its elements in order "
                                "(small ones widened)")
        item.setLabel("left", "sample")
        self.view = item.getViewBox()
        self.view.invertY(True)
        self.colorbar = pg.ColorBarItem(colorMap=verdict_colormap(), interactive=False, width=16,
                                        label="log₁₀(|A − B| / tolerance)")
        self.colorbar.setImageItem([], insert_in=item)
        self.images: list[pg.ImageItem] = []
        # a dark ring under a white one: visible on the pale and on the dark end of the map
        self.rings = [pg.ScatterPlotItem(symbol="o", size=RING_SIZE, brush=None, pxMode=True,
                                         pen=pg.mkPen(color, width=width))
                      for color, width in (((0, 0, 0), 3.0), ((255, 255, 255), 1.2))]
        for ring in self.rings:
            ring.setZValue(10)
            self.addItem(ring)
        self._boundaries: list[pg.InfiniteLine] = []
        self.marker = self._frame(QColor(80, 255, 120), 1.5)
        self.hover = self._frame(QColor(255, 255, 255), 1.0)
        self.grid_shape = (0, 0)
        self.offsets = np.zeros(1, dtype=np.int64)
        self.edges = np.zeros(1)
        self.scene().sigMouseMoved.connect(self._on_mouse_moved)
        self.scene().sigMouseClicked.connect(self._on_mouse_clicked)

    def _frame(self, color: QColor, width: float) -> QGraphicsRectItem:
        pen = QPen(color)
        pen.setCosmetic(True)
        pen.setWidthF(width)
        frame = QGraphicsRectItem()
        frame.setPen(pen)
        frame.setZValue(11)
        frame.setVisible(False)
        self.view.addItem(frame, ignoreBounds=True)
        return frame

    def show_values(self, values: np.ndarray, levels: tuple[float, float], offsets: list[int],
                    names: list[str], marks: list[tuple[int, int]]) -> None:
        """Draw `values` (N, P); parameter i spans columns offsets[i]..offsets[i + 1]."""
        self.grid_shape = values.shape
        n = values.shape[0]
        self.offsets = np.asarray(offsets, dtype=np.int64)
        self.edges = block_edges(list(np.diff(self.offsets)))
        for image in self.images:
            self.removeItem(image)
        self.images = []
        for i in range(len(names)):
            block = values[:, offsets[i]:offsets[i + 1]]
            image = pg.ImageItem(pool_max(block, levels[0]), axisOrder="row-major",
                                 levels=levels)
            image.setRect(QRectF(self.edges[i], 0.5, self.edges[i + 1] - self.edges[i], n))
            self.addItem(image)
            self.images.append(image)
        self.colorbar.setImageItem(self.images)
        self.colorbar.setLevels(levels)
        centres = [self.scene_x(column) for _, column in marks]
        rows = [sample + 1.0 for sample, _ in marks]
        for ring in self.rings:
            ring.setData(x=centres, y=rows)
        for line in self._boundaries:
            self.removeItem(line)
        dashed = pg.mkPen(color=(170, 170, 170), width=1, style=Qt.PenStyle.DashLine)
        self._boundaries = [pg.InfiniteLine(pos=x, angle=90, pen=dashed, movable=False)
                            for x in self.edges[1:-1]]
        for line in self._boundaries:
            self.addItem(line)
        self.getPlotItem().getAxis("bottom").setTicks([self.block_ticks(names), []])
        right = max(float(self.edges[-1]), 1.0)
        self.view.setLimits(xMin=0, xMax=right, yMin=0.5, yMax=n + 0.5)
        self.view.setRange(xRange=(0, right), yRange=(0.5, n + 0.5), padding=0)
        self.marker.setVisible(False)
        self.hover.setVisible(False)

    def block_ticks(self, names: list[str]) -> list[tuple[float, str]]:
        """(x, name) at the middle of each parameter's block."""
        return [((self.edges[i] + self.edges[i + 1]) / 2, name) for i, name in enumerate(names)]

    def _cell_span(self, column: int) -> tuple[float, float]:
        """The x where heatmap `column` starts, and its width."""
        i = int(np.searchsorted(self.offsets, column, side="right")) - 1
        width = (self.edges[i + 1] - self.edges[i]) / (self.offsets[i + 1] - self.offsets[i])
        return float(self.edges[i] + (column - self.offsets[i]) * width), float(width)

    def scene_x(self, column: int) -> float:
        """The view x of the middle of `column`."""
        left, width = self._cell_span(column)
        return left + width / 2

    def mark_sample(self, index: int) -> None:
        """Frame sample `index` (from 0) with half a row of margin each side, so the row itself
        stays visible."""
        self.marker.setRect(QRectF(0, index, float(self.edges[-1]), 2))
        self.marker.setVisible(True)

    def scene_point(self, sample: int, column: int) -> QPointF:
        """The scene position of a cell's centre (for tests and tooltips)."""
        return self.view.mapViewToScene(QPointF(self.scene_x(column), sample + 1.0))

    def cell_at(self, scene_pos: QPointF) -> tuple[int, int] | None:
        """(sample from 0, column) under a scene position, or None outside the image."""
        if not self.view.sceneBoundingRect().contains(scene_pos):
            return None
        point = self.view.mapSceneToView(scene_pos)
        n = self.grid_shape[0]
        row = math.floor(point.y() - 0.5)
        i = int(np.searchsorted(self.edges, point.x(), side="right")) - 1
        if not (0 <= row < n and 0 <= i < len(self.edges) - 1):
            return None
        count = int(self.offsets[i + 1] - self.offsets[i])
        width = (self.edges[i + 1] - self.edges[i]) / count
        local = min(math.floor((point.x() - self.edges[i]) / width), count - 1)
        return row, int(self.offsets[i]) + local

    @Slot(object)
    def _on_mouse_moved(self, scene_pos: QPointF) -> None:
        cell = self.cell_at(scene_pos)
        self.hover.setVisible(cell is not None)
        if cell is not None:
            left, width = self._cell_span(cell[1])
            self.hover.setRect(QRectF(left, cell[0] + 0.5, width, 1))
            self.cellHovered.emit(*cell)

    @Slot(object)
    def _on_mouse_clicked(self, event) -> None:
        if event.button() != Qt.MouseButton.LeftButton:
            return
        cell = self.cell_at(event.scenePos())
        if cell is not None:
            event.accept()
            self.cellClicked.emit(*cell)


def verdict_colormap() -> pg.ColorMap:
    """Dark to steel blue below the tolerance (equal is darkest), red through orange to pale
    yellow above it: the boundary in the middle is the table's agree/DISAGREE."""
    return pg.ColorMap([0.0, 0.4999, 0.5, 0.75, 1.0],
                       [(10, 12, 36), (70, 130, 180), (200, 30, 30), (255, 150, 0),
                        (255, 255, 190)])


def pool_max(image: np.ndarray, fill: float) -> np.ndarray:
    """`image` shrunk by taking the maximum of blocks, so neither side exceeds MAX_IMAGE_SIDE;
    hot spots survive the shrinking."""
    n, p = image.shape
    fr, fc = math.ceil(n / MAX_IMAGE_SIDE), math.ceil(p / MAX_IMAGE_SIDE)
    if fr == 1 and fc == 1:
        return image
    padded = np.full((math.ceil(n / fr) * fr, math.ceil(p / fc) * fc), fill, image.dtype)
    padded[:n, :p] = image
    return padded.reshape(padded.shape[0] // fr, fr, padded.shape[1] // fc, fc).max(axis=(1, 3))

"""A sample x element heatmap of how far two gradient files are apart: one row per sample, one
column per parameter element (w1, b1, w2, ... concatenated), dashed lines between parameters.

It draws what it is given and reports which cell the mouse is over or clicked; what a cell
means is the compare dialog's business."""

import math

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QPointF, QRectF, Qt, Signal, Slot
from PySide6.QtGui import QColor, QPen
from PySide6.QtWidgets import QGraphicsRectItem, QWidget

MAX_IMAGE_SIDE = 4096      # larger heatmaps are shown max-pooled; the cells reported stay exact
MAX_RINGS = 500            # the worst cells get a ring; more would be a blur


class DiffHeatmap(pg.PlotWidget):
    """`show_values(values, levels, offsets, names, hot)`: values (N, P) drawn on a diverging
    colour map whose middle is the agree/disagree boundary; `hot` (N, P) bool cells get a ring.
    Sample k (from 1) is the row centred on y = k. cellHovered / cellClicked carry (sample from
    0, column)."""

    cellHovered = Signal(int, int)
    cellClicked = Signal(int, int)

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        item = self.getPlotItem()
        item.setMenuEnabled(False)
        item.hideButtons()
        item.setLabel("bottom", "parameter elements (dashed lines separate parameters)")
        item.setLabel("left", "sample")
        self.view = item.getViewBox()
        self.view.invertY(True)
        self.image = pg.ImageItem(axisOrder="row-major")
        self.addItem(self.image)
        self.colorbar = pg.ColorBarItem(colorMap=verdict_colormap(), interactive=False, width=16,
                                        label="log₁₀ (|A − B| / tolerance): above 0 disagrees")
        self.colorbar.setImageItem(self.image, insert_in=item)
        self.rings = pg.ScatterPlotItem(symbol="o", size=14, brush=None, pxMode=True,
                                        pen=pg.mkPen((255, 255, 255), width=1.5))
        self.rings.setToolTip("cells that disagree")
        self.addItem(self.rings)
        self._boundaries: list[pg.InfiniteLine] = []
        pen = QPen(QColor(80, 255, 120))
        pen.setCosmetic(True)
        pen.setWidthF(1.5)
        self.marker = QGraphicsRectItem()
        self.marker.setPen(pen)
        self.marker.setVisible(False)
        self.view.addItem(self.marker, ignoreBounds=True)
        self.grid_shape = (0, 0)
        self.scene().sigMouseMoved.connect(self._on_mouse_moved)
        self.scene().sigMouseClicked.connect(self._on_mouse_clicked)

    def show_values(self, values: np.ndarray, levels: tuple[float, float], offsets: list[int],
                    names: list[str], hot: np.ndarray) -> None:
        """Draw `values` (N, P); parameter i spans columns offsets[i]..offsets[i + 1]."""
        n, p = self.grid_shape = values.shape
        self.image.setImage(pool_max(values, levels[0]), autoLevels=False, levels=levels)
        self.image.setRect(QRectF(0, 0.5, p, n))
        self.colorbar.setLevels(levels)
        rows, cols = np.nonzero(hot)
        if len(rows) > MAX_RINGS:
            worst = np.argsort(values[rows, cols])[-MAX_RINGS:]
            rows, cols = rows[worst], cols[worst]
        self.rings.setData(x=cols + 0.5, y=rows + 1.0)
        for line in self._boundaries:
            self.removeItem(line)
        dashed = pg.mkPen(color=(170, 170, 170), width=1, style=Qt.PenStyle.DashLine)
        self._boundaries = [pg.InfiniteLine(pos=x, angle=90, pen=dashed, movable=False)
                            for x in offsets[1:-1]]
        for line in self._boundaries:
            self.addItem(line)
        ticks = [((offsets[i] + offsets[i + 1]) / 2, name) for i, name in enumerate(names)]
        self.getPlotItem().getAxis("bottom").setTicks([ticks, []])
        self.view.setLimits(xMin=0, xMax=max(p, 1), yMin=0.5, yMax=n + 0.5)
        self.view.setRange(xRange=(0, max(p, 1)), yRange=(0.5, n + 0.5), padding=0)
        self.marker.setVisible(False)

    def mark_sample(self, index: int) -> None:
        """Frame sample `index` (from 0) with half a row of margin each side, so the row itself
        stays visible."""
        self.marker.setRect(QRectF(0, index, self.grid_shape[1], 2))
        self.marker.setVisible(True)

    def scene_point(self, sample: int, column: int) -> QPointF:
        """The scene position of a cell's centre (for tests and tooltips)."""
        return self.view.mapViewToScene(QPointF(column + 0.5, sample + 1.0))

    def cell_at(self, scene_pos: QPointF) -> tuple[int, int] | None:
        """(sample from 0, column) under a scene position, or None outside the image."""
        if not self.view.sceneBoundingRect().contains(scene_pos):
            return None
        point = self.view.mapSceneToView(scene_pos)
        row, col = math.floor(point.y() - 0.5), math.floor(point.x())
        n, p = self.grid_shape
        return (row, col) if 0 <= row < n and 0 <= col < p else None

    @Slot(object)
    def _on_mouse_moved(self, scene_pos: QPointF) -> None:
        cell = self.cell_at(scene_pos)
        if cell is not None:
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

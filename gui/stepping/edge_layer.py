"""The edges of one layer of the network drawing as one cached item, and the pens that draw
weights and weight gradients on them."""

import numpy as np
from PySide6.QtCore import QLineF, QPointF, QRectF
from PySide6.QtGui import QColor, QPainter, QPen
from PySide6.QtWidgets import QGraphicsItem

from gui import colors


class EdgeLayer(QGraphicsItem):
    """The drawn weights of one layer as one item: line k = i * len(ins) + j joins unit ins[j]
    below to unit outs[i]. One item, cached as a pixmap, because thousands of antialiased lines
    cost ~100 ms to rasterise and only change when the weights or a weight gradient do."""

    def __init__(self, outs: np.ndarray, ins: np.ndarray):
        super().__init__()
        self.outs, self.ins = outs, ins
        self.lines: list[QLineF] = []
        self.pens: list[QPen] = []
        self._order: list[int] = []     # the lines by pen width: the strongest drawn last
        self._ends = np.zeros((0, 4))
        self._bounds = QRectF()
        self.setCacheMode(QGraphicsItem.CacheMode.DeviceCoordinateCache)

    def index(self, out: int, inp: int) -> int:
        i, j = np.searchsorted(self.outs, out), np.searchsorted(self.ins, inp)
        return int(i) * len(self.ins) + int(j)

    def set_lines(self, ends: np.ndarray) -> None:
        """ends (n, 4): x0, y0, x1, y1 per line, in the order of `index`."""
        self.prepareGeometryChange()
        self._ends = ends
        self.lines = [QLineF(*row) for row in ends.tolist()]
        pad = 4.0
        self._bounds = QRectF(ends[:, 0].min() - pad, ends[:, [1, 3]].min() - pad,
                              ends[:, 2].max() - ends[:, 0].min() + 2 * pad,
                              ends[:, [1, 3]].max() - ends[:, [1, 3]].min() + 2 * pad)
        self.update()

    def set_pens(self, pens: list[QPen]) -> None:
        """The pens of the lines, in the order of `index`. The pens are opaque, so where lines
        cross the later one covers: the widest (the largest weights) are drawn on top."""
        self.pens = pens
        self._order = sorted(range(len(pens)), key=lambda k: pens[k].widthF())
        self.update()

    def drawing_order(self) -> list[int]:
        """The lines' indices in the order they are painted."""
        return list(self._order)

    def nearest(self, point: QPointF, slop: float) -> int | None:
        """The line within `slop` of `point` closest to it, or None."""
        if not len(self._ends) or not self._bounds.contains(point):
            return None
        p0, p1 = self._ends[:, :2], self._ends[:, 2:]
        d = p1 - p0
        p = np.array([point.x(), point.y()])
        t = np.clip(np.sum((p - p0) * d, axis=1) / np.maximum(np.sum(d * d, axis=1), 1e-12),
                    0.0, 1.0)
        dist = np.linalg.norm(p - (p0 + t[:, None] * d), axis=1)
        k = int(np.argmin(dist))
        return k if dist[k] <= slop else None

    def boundingRect(self) -> QRectF:
        return self._bounds

    def paint(self, painter: QPainter, option, widget=None) -> None:
        for k in self._order:
            if k >= len(self.lines):    # (between set_lines and the set_pens that follows)
                continue
            painter.setPen(self.pens[k])
            painter.drawLine(self.lines[k])


def weight_pens(w: np.ndarray, top: float) -> list[QPen]:
    """Pens for weights `w` (out, in): colour for the sign, width and strength (a paler colour,
    opaque) for |w| / top."""
    thin = _thinning(w.size)
    pens = []
    for value in np.ravel(w):
        size = min(abs(value) / top, 1.0) if np.isfinite(value) else 1.0
        color = colors.sign_color(value, int(35 + 195 * size * thin))
        pen = QPen(colors.flattened(color, colors.CANVAS), 0.4 + 2.6 * size * thin)
        pen.setCosmetic(True)
        pens.append(pen)
    return pens


def gradient_pens(grad: np.ndarray, scale: float) -> list[QPen]:
    """Pens for weight gradients `grad` (out, in) on the diverging scale ending at ±scale,
    wider for bigger |gradient|; the near-zero ones grey."""
    thin = _thinning(grad.size)
    pens = []
    for value, color in zip(np.ravel(grad), colors.diverging(grad, scale), strict=True):
        size = min(abs(value) / scale, 1.0) if np.isfinite(value) else 1.0
        pen = QPen(color if size > 0.02 else QColor("#cfd8dc"), 0.6 + 3.4 * size * thin)
        pen.setCosmetic(True)
        pens.append(pen)
    return pens


def _thinning(n_edges: int) -> float:
    """How much thinner and fainter edges are drawn when a layer has many: 1 up to 10×10,
    down to 0.3, so that a dense layer stays a texture rather than a wall of colour."""
    return float(np.clip(np.sqrt(100 / max(n_edges, 1)), 0.3, 1.0))

"""The network as a picture: one column per layer (the inputs, each layer, then the loss), a
node per unit, an edge per weight (colour for its sign, width for its size). The current stage
is drawn on it: its columns are highlighted, its units filled with the stage's value on a
diverging scale, and a weight gradient colours the edges of its layer. From the first stage
where the scratch pass departs from torch on, the highlight is red instead of amber.

Items are made once per network; a stage change only restyles the few that change. Hovering a
node or an edge shows both engines' values of that element for the current stage, read from the
session when the tooltip opens, so it is never stale."""

from dataclasses import dataclass, field

import numpy as np
from PySide6.QtCore import QEvent, QLineF, QPoint, QRect, QRectF, Qt
from PySide6.QtGui import QBrush, QColor, QFont, QHelpEvent, QPainter, QPen
from PySide6.QtWidgets import (
    QGraphicsEllipseItem,
    QGraphicsItem,
    QGraphicsLineItem,
    QGraphicsRectItem,
    QGraphicsScene,
    QGraphicsSimpleTextItem,
    QGraphicsView,
    QToolTip,
    QWidget,
)

from gui import colors
from gui.session_model import SessionModel
from gui.stepping.edge_layer import EdgeLayer, gradient_pens, weight_pens
from gui.stepping.formula import plain_symbol
from gui.stepping.stage_values import edge_reading, on_units, unit_reading

MAX_UNITS = 32          # a column shows all its units up to this many
SHOWN_EACH_END = 14     # a wider one shows its first and last 14 around a "⋮ +n" marker
MIN_SPACING, MAX_SPACING = 11.0, 64.0
MIN_COLUMN_GAP = 68.0
TOP, BOTTOM, SIDE = 40.0, 10.0, 50.0
HOVER_SLOP = 4.0        # px around a thin edge that still count as hovering it
FADED = 0.18            # opacity of the other layers' weights while a weight gradient shows
_TAG = 0                # item data slot holding ("node", column, unit)


def shown_units(width: int) -> np.ndarray:
    """The units of a `width`-wide column that get a node."""
    if width <= MAX_UNITS:
        return np.arange(width)
    return np.r_[0:SHOWN_EACH_END, width - SHOWN_EACH_END:width]


@dataclass
class _Column:
    units: np.ndarray
    nodes: list[QGraphicsEllipseItem]
    band: QGraphicsRectItem
    label: QGraphicsSimpleTextItem
    more: QGraphicsSimpleTextItem | None
    y: np.ndarray = field(default_factory=lambda: np.zeros(0))


class NetworkView(QGraphicsView):
    """Draws the session's network and current stage; see the module docstring."""

    def __init__(self, model: SessionModel, parent: QWidget | None = None):
        super().__init__(parent)
        self._model = model
        self.setScene(QGraphicsScene(self))
        self.setRenderHint(QPainter.RenderHint.Antialiasing)
        self.setAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop)
        self.setMinimumSize(320, 160)
        self.setBackgroundBrush(colors.CANVAS)
        self.setToolTip("The network: hover a unit or a weight for both engines' values")
        self._spec = None
        self._columns: list[_Column] = []
        self._edges: dict[int, EdgeLayer] = {}   # the weights of each layer
        self._grads: dict[int, EdgeLayer] = {}   # the same lines, shown for its dL/dw
        self._loss_lines: list[QGraphicsLineItem] = []
        self._styled: list[int] = []
        self._legend: tuple[str, float] = ("", 1.0)   # what the colours show, and its ±end
        self._edge_layer: int | None = None
        model.networkChanged.connect(self._network_changed)
        model.stageChanged.connect(self._restyle)
        self._build()
        self._restyle()

    # what tests and other panels may ask
    def highlighted_layers(self) -> tuple[int, ...]:
        """The columns highlighted for the current stage (0 inputs … L + 1 loss)."""
        return tuple(i for i, c in enumerate(self._columns) if c.band.isVisible())

    def shown(self, column: int) -> list[int]:
        return [int(u) for u in self._columns[column].units]

    def node_fill(self, column: int, unit: int) -> QColor:
        return self._node(column, unit).brush().color()

    def node_highlighted(self, column: int, unit: int) -> bool:
        return self._node(column, unit).pen().color() == colors.HIGHLIGHT

    def node_departed(self, column: int, unit: int) -> bool:
        """Whether the node is highlighted red: a stage at or after the first departure."""
        return self._node(column, unit).pen().color() == colors.DEPARTED

    def edge_pen(self, layer: int, out: int, inp: int) -> QPen:
        """The pen of a weight's edge as drawn now: the weight's, or its gradient's."""
        edges = self._grads[layer] if self._edge_layer == layer else self._edges[layer]
        return edges.pens[edges.index(out, inp)]

    def node_tooltip(self, column: int, unit: int) -> str:
        return unit_reading(self._model.session, column, unit).html()

    def edge_tooltip(self, layer: int, out: int, inp: int) -> str:
        return edge_reading(self._model.session, layer, out, inp).html()

    def node_center(self, column: int, unit: int) -> QPoint:
        """Where the node is, in viewport coordinates."""
        return self.mapFromScene(self._node(column, unit).rect().center())

    def edge_center(self, layer: int, out: int, inp: int) -> QPoint:
        edges = self._edges[layer]
        return self.mapFromScene(edges.lines[edges.index(out, inp)].center())

    def tooltip_at(self, pos: QPoint) -> str | None:
        """The tooltip for viewport point `pos`: a node under it, else the nearest edge within
        a few pixels, else None."""
        point = self.mapToScene(pos)
        for item in self.scene().items(point):
            tag = item.data(_TAG)
            if tag and tag[0] == "node":
                return self.node_tooltip(tag[1], tag[2])
        for layer, edges in self._edges.items():
            k = edges.nearest(point, HOVER_SLOP)
            if k is not None:
                i, j = divmod(k, len(edges.ins))
                return self.edge_tooltip(layer, int(edges.outs[i]), int(edges.ins[j]))
        return None

    def legend(self) -> tuple[str, float]:
        """The symbol the colours of the current stage show, and the ±value at the scale's
        ends."""
        return self._legend

    # Qt
    def drawForeground(self, painter: QPainter, rect: QRectF) -> None:
        """The colour scale of the current stage, fixed in the viewport's corner."""
        symbol, scale = self._legend
        if not symbol:
            return
        painter.save()
        painter.resetTransform()
        colors.paint_scale(painter, QRectF(self._legend_rect()), f"colour: {symbol}", scale)
        painter.restore()

    def _legend_rect(self) -> QRect:
        # bottom right: below the loss node, the one corner no layer of units reaches
        size = self.viewport().size()
        return QRect(size.width() - 176, size.height() - 58, 170, 52)

    def viewportEvent(self, event: QEvent) -> bool:
        if event.type() == QEvent.Type.ToolTip and isinstance(event, QHelpEvent):
            text = self.tooltip_at(event.pos())
            if text:
                QToolTip.showText(event.globalPos(), text, self.viewport())
            else:
                QToolTip.showText(event.globalPos(), self.toolTip(), self.viewport())
            return True
        return super().viewportEvent(event)

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        self._layout()

    # building
    def _node(self, column: int, unit: int) -> QGraphicsEllipseItem:
        col = self._columns[column]
        return col.nodes[int(np.searchsorted(col.units, unit))]

    def _network_changed(self) -> None:
        if self._model.session.spec == self._spec:
            self._style_weights()  # new parameter values, same picture
        else:
            self._build()

    def _build(self) -> None:
        scene = self.scene()
        scene.clear()
        spec = self._spec = self._model.session.spec
        self._styled, self._edge_layer = [], None
        small = QFont(self.font())
        small.setPointSizeF(small.pointSizeF() * 0.85)
        widths = [*spec.sizes, 1]
        self._columns = []
        for column, width in enumerate(widths):
            band = scene.addRect(QRectF(), QPen(Qt.PenStyle.NoPen),
                                 QBrush(colors.HIGHLIGHT_BACKGROUND))
            band.setZValue(-2)
            band.setVisible(False)
            label = scene.addSimpleText(self._column_label(column), small)
            label.setBrush(QColor("#37474f"))
            units = shown_units(width)
            nodes = []
            for unit in units:
                node = scene.addEllipse(QRectF(), QPen(colors.NEUTRAL_LINE, 1.2),
                                        QBrush(colors.NEUTRAL_FILL))
                node.setZValue(2)
                node.setData(_TAG, ("node", column, int(unit)))
                nodes.append(node)
            more = None
            if width > len(units):
                more = scene.addSimpleText(f"⋮\n+{width - len(units)}", small)
                more.setBrush(QColor("#37474f"))
                more.setZValue(3)
                backdrop = QGraphicsRectItem(more.boundingRect().adjusted(-2, 0, 2, 0), more)
                backdrop.setPen(QPen(Qt.PenStyle.NoPen))
                backdrop.setBrush(QColor(255, 255, 255, 210))
                backdrop.setFlag(QGraphicsItem.GraphicsItemFlag.ItemStacksBehindParent)
            self._columns.append(_Column(units, nodes, band, label, more))
        self._edges, self._grads = {}, {}
        for layer in range(1, spec.n_layers + 1):
            outs, ins = self._columns[layer].units, self._columns[layer - 1].units
            self._edges[layer], self._grads[layer] = EdgeLayer(outs, ins), EdgeLayer(outs, ins)
            scene.addItem(self._edges[layer])
            scene.addItem(self._grads[layer])
            self._grads[layer].setZValue(1)
            self._grads[layer].setOpacity(0.0)
        dashed = QPen(QColor("#b0bec5"), 1.0, Qt.PenStyle.DashLine)
        dashed.setCosmetic(True)
        self._loss_lines = [scene.addLine(QLineF(), dashed) for _ in self._columns[-2].units]
        self._style_weights()
        self._layout()

    def _column_label(self, column: int) -> str:
        spec = self._model.session.spec
        n_layers = spec.n_layers
        if column == 0:
            return f"input x\n{spec.sizes[0]} unit{'s' * (spec.sizes[0] > 1)}"
        if column == n_layers + 1:
            return f"loss L\n{spec.loss}"
        symbol = plain_symbol(f"y{column}")
        name = f"ŷ = {symbol}" if column == n_layers else symbol
        return f"{name}\n{spec.activations[column - 1]} · {spec.sizes[column]}"

    def _layout(self) -> None:
        if not self._columns:
            return
        # the size without scroll bars: a layout that followed them would make them come and
        # go in turn, each resize asking for the other
        size = self.maximumViewportSize()
        rows = max(len(c.units) + (c.more is not None) for c in self._columns)
        spacing = min(MAX_SPACING, max(MIN_SPACING, (size.height() - TOP - BOTTOM) / rows))
        radius = float(np.clip(spacing * 0.34, 4.0, 15.0))
        n_cols = len(self._columns)
        gap = max(MIN_COLUMN_GAP, (size.width() - 2 * SIDE) / (n_cols - 1))
        area = max(rows * spacing, size.height() - TOP - BOTTOM)
        middle = TOP + area / 2
        band_width = min(gap * 0.6, max(2 * radius + 24, 70.0))
        for i, col in enumerate(self._columns):
            x = SIDE + i * gap
            slots = len(col.units) + (col.more is not None)
            y = middle + (np.arange(slots) - (slots - 1) / 2) * spacing
            if col.more is not None:
                col.more.setPos(x - col.more.boundingRect().width() / 2,
                                y[SHOWN_EACH_END] - col.more.boundingRect().height() / 2)
                y = np.delete(y, SHOWN_EACH_END)
            col.y = y
            for node, ny in zip(col.nodes, y, strict=True):
                node.setRect(QRectF(x - radius, ny - radius, 2 * radius, 2 * radius))
            col.band.setRect(QRectF(x - band_width / 2, 4, band_width, TOP + area + BOTTOM - 8))
            col.label.setPos(x - col.label.boundingRect().width() / 2, 6)
        for layer, edges in self._edges.items():
            x0, x1 = SIDE + (layer - 1) * gap + radius, SIDE + layer * gap - radius
            y_in, y_out = self._columns[layer - 1].y, self._columns[layer].y
            yo, yi = np.repeat(y_out, len(y_in)), np.tile(y_in, len(y_out))
            ends = np.column_stack([np.full_like(yi, x0), yi, np.full_like(yo, x1), yo])
            edges.set_lines(ends)
            self._grads[layer].set_lines(ends)
        loss_x = SIDE + (n_cols - 1) * gap
        for line, yo in zip(self._loss_lines, self._columns[-2].y, strict=True):
            line.setLine(loss_x - gap + radius, yo, loss_x - radius, self._columns[-1].y[0])
        # whole pixels, rounded down: 998.0000001 wide in a 998 view would add a scroll bar
        content = (int(2 * SIDE + gap * (n_cols - 1)), int(TOP + rows * spacing + BOTTOM))
        self.scene().setSceneRect(QRectF(0, 0, max(size.width(), content[0]),
                                         max(size.height(), content[1])))

    # styling
    def _style_weights(self) -> None:
        """Edges as weights: colour for the sign, width and opacity for the size."""
        params = self._model.session.params
        top = max(colors.scale_of(params[f"w{layer}"]) for layer in self._edges) \
            if self._edges else 1.0
        for layer, edges in self._edges.items():
            w = np.asarray(params[f"w{layer}"], dtype=np.float64)[np.ix_(edges.outs, edges.ins)]
            edges.set_pens(weight_pens(w, top))

    def _style_gradient(self, layer: int, values: np.ndarray) -> None:
        """Edges of `layer` coloured by dL/dw (spec layout), the other layers faded. The
        gradient has its own item, so going back to the weights is only a change of which
        cached picture shows."""
        edges = self._grads[layer]
        grid = values.T if self._model.session.spec.layout == "in_out" else values
        picked = np.asarray(grid, dtype=np.float64)[np.ix_(edges.outs, edges.ins)]
        edges.set_pens(gradient_pens(picked, colors.scale_of(values)))
        edges.setOpacity(1.0)
        for other, edge_set in self._edges.items():
            edge_set.setOpacity(0.0 if other == layer else FADED)
        self._edge_layer = layer

    def _restyle(self) -> None:
        session = self._model.session
        info = session.stage.scratch.info
        neutral = QPen(colors.NEUTRAL_LINE, 1.2)
        for column in self._styled:
            col = self._columns[column]
            col.band.setVisible(False)
            for node in col.nodes:
                node.setPen(neutral)
                node.setBrush(colors.NEUTRAL_FILL)
        departure = session.departure_index
        departed = departure is not None and session.stage_index >= departure
        highlight = QPen(colors.DEPARTED if departed else colors.HIGHLIGHT, 2.8)
        band = QBrush(colors.DEPARTED_BACKGROUND if departed else colors.HIGHLIGHT_BACKGROUND)
        value = session.stage.scratch.value
        for column in info.layers:
            col = self._columns[column]
            col.band.setBrush(band)
            col.band.setVisible(True)
            if on_units(info, column):
                picked = value if value.ndim == 0 else value[col.units]
                fills = colors.diverging(picked, colors.scale_of(value))
            else:
                fills = [colors.NEUTRAL_FILL] * len(col.nodes)
            for node, fill in zip(col.nodes, fills, strict=True):
                node.setPen(highlight)
                node.setBrush(fill)
        self._styled = list(info.layers)
        self._legend = (plain_symbol(info.symbol), colors.scale_of(value))
        self.viewport().update(self._legend_rect())
        edge_layer = info.layers[1] if info.on_edges else None
        if self._edge_layer is not None and self._edge_layer != edge_layer:
            self._grads[self._edge_layer].setOpacity(0.0)
            self._edge_layer = None
        if edge_layer is not None:
            self._style_gradient(edge_layer, value)
        else:
            for edge_set in self._edges.values():
                edge_set.setOpacity(1.0)


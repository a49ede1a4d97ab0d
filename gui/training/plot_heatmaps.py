"""Weights and gradients per layer at the current parameters, as heatmaps.

Layer l is one image of n_l rows (its units) and n_{l-1} + 1 columns: w_l, then b_l as the last
column past a dashed line. The top row shows the parameters, the bottom row dL/dθ of one sample
from the scratch engine. Each image has its own scale, symmetric around 0 on the window's
diverging colours (blue below zero, white at zero, red above), written in its title."""

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtGui import QContextMenuEvent
from PySide6.QtWidgets import QMenu, QWidget

from engine.net.params import Params
from engine.net.scratch import ScratchNet
from engine.net.spec import NetworkSpec
from gui.colors import scale_of
from gui.training.plot_curves import TEXT
from gui.training.plot_surface import diverging_colormap

# the side labels stay shorter than half the panel's height on a laptop (about 120 px): a
# longer one makes its rows taller than the other's
SIDE_SIZE = "8pt"


def layer_matrix(params: Params, layer: int) -> np.ndarray:
    """[w_l | b_l] of one layer, (n_l, n_{l-1} + 1) float64, engine layout (out, in)."""
    w, b = params[f"w{layer}"], params[f"b{layer}"]
    return np.column_stack([np.asarray(w, dtype=np.float64), np.asarray(b, dtype=np.float64)])


def sample_gradients(spec: NetworkSpec, params: Params, x: np.ndarray,
                     y: np.ndarray) -> Params:
    """dL/dθ of one sample x (n_0,), y (n_L,) at `params`, from the scratch engine; NaN where
    diverged parameters overflow."""
    with np.errstate(all="ignore"):
        _, grads = ScratchNet(spec, params).per_sample_gradients(x[None, :], y[None, :])
    return {name: g[0] for name, g in grads.items()}


def scale_text(matrix: np.ndarray, scale: float) -> str:
    """The end of an image's scale for its title; non-finite values (left blank) said so."""
    finite = np.isfinite(matrix)
    if not finite.any():
        return "not finite"
    return f"±{scale:.2g}" + ("" if finite.all() else ", some not finite")


class LayerHeatmaps(pg.GraphicsLayoutWidget):
    """`configure(spec)` makes one weight image and one gradient image per layer; `show_state`
    fills them. weight_images[l - 1] and grad_images[l - 1] hold layer l's [w | b], titled by
    titles[l - 1] (the parameters', the gradients'). Plain view boxes, not plots: a network of
    a hundred layers gets its two hundred images at once."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setBackground("w")
        self.colormap = diverging_colormap()
        self.weight_images: list[pg.ImageItem] = []
        self.grad_images: list[pg.ImageItem] = []
        self.titles: list[tuple[pg.LabelItem, pg.LabelItem]] = []
        self.grad_label: pg.LabelItem | None = None
        self._sizes: tuple[int, ...] = ()
        self.setToolTip("Each layer: rows are its units, columns its inputs, the last column "
                        "(after the dashed line) its bias. Blue below zero, red above; each "
                        "image has its own scale, given in its title.")

    def configure(self, spec: NetworkSpec) -> None:
        """One column of two images per layer of `spec`, empty until `show_state`."""
        if spec.sizes == self._sizes:   # the images are replaced by the next show_state
            return
        self._sizes = spec.sizes
        self.clear()
        self.weight_images, self.grad_images, self.titles = [], [], []
        self.addLabel("parameters", row=0, col=0, rowspan=2, angle=-90, color=TEXT,
                      size=SIDE_SIZE)
        self.grad_label = self.addLabel("gradients", row=2, col=0, rowspan=2, angle=-90,
                                        color=TEXT, size=SIDE_SIZE)
        dashed = pg.mkPen(90, 90, 90, width=1, style=Qt.PenStyle.DashLine)
        for layer in range(1, spec.n_layers + 1):
            pair = []
            for row, images in ((0, self.weight_images), (2, self.grad_images)):
                title = self.addLabel("", row=row, col=layer, color=TEXT, size="8pt")
                title.item.document().setDocumentMargin(1)   # 4 px each side by default
                pair.append(title)
                view = self.addViewBox(row=row + 1, col=layer, lockAspect=True, invertY=True,
                                       enableMouse=False, enableMenu=False)
                image = pg.ImageItem(axisOrder="row-major")
                image.setColorMap(self.colormap)
                view.addItem(image)
                view.addItem(pg.InfiniteLine(pos=spec.sizes[layer - 1], angle=90, pen=dashed))
                images.append(image)
            self.titles.append((pair[0], pair[1]))

    def show_state(self, spec: NetworkSpec, params: Params, x: np.ndarray, y: np.ndarray,
                   sample_label: str) -> None:
        """Draw `params` and the gradients of sample (x, y), called `sample_label`."""
        grads = sample_gradients(spec, params, x, y)
        for layer, (weight_title, grad_title) in enumerate(self.titles, start=1):
            for title, image, values, name in (
                    (weight_title, self.weight_images[layer - 1], params, f"w{layer} | b{layer}"),
                    (grad_title, self.grad_images[layer - 1], grads,
                     f"dL/d(w{layer}|b{layer})")):
                matrix = layer_matrix(values, layer)
                scale = scale_of(matrix)
                image.setImage(matrix, autoLevels=False, levels=(-scale, scale))
                # the scale on a line of its own: a layer's column is as wide as its title
                _set_text(title, f"{name}<br>{scale_text(matrix, scale)}", "8pt")
        _set_text(self.grad_label, f"gradients, {sample_label}", SIDE_SIZE)

    def contextMenuEvent(self, event: QContextMenuEvent) -> None:
        """The widget's actions (the exports): the view boxes have no menu of their own."""
        if self.actions():
            menu = QMenu(self)
            menu.addActions(self.actions())
            menu.exec(event.globalPos())


def _set_text(label: pg.LabelItem, text: str, size: str) -> None:
    """Give `label` `text` unless it has it: a label set lays the whole widget out again."""
    if label.text != text:
        label.setText(text, color=TEXT, size=size)

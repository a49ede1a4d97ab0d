"""The network drawing: a node per unit and an edge per weight, the current stage highlighted
and coloured from the session's values, live tooltips, compact wide layers, fast restyling."""


import numpy as np
import pytest
from PySide6.QtCore import QEvent, QPoint
from PySide6.QtGui import QColor, QHelpEvent
from PySide6.QtWidgets import QApplication, QToolTip

from engine.net.spec import NetworkSpec, preset
from engine.session import Session
from gui import colors
from gui.numbers import exact
from gui.session_model import SessionModel
from gui.stepping.network_view import MAX_UNITS, SHOWN_EACH_END, NetworkView


@pytest.fixture
def model():
    return SessionModel()


@pytest.fixture
def view(qtbot, model):
    v = NetworkView(model)
    qtbot.addWidget(v)
    v.resize(900, 420)
    v.show()
    qtbot.waitExposed(v)
    return v


def go_to(session: Session, key: str) -> None:
    session.go_to_stage(next(i for i, p in enumerate(session.pairs) if p.key == key))


def sign_of(color: QColor) -> int:
    """+1 for a weight edge drawn in the positive (red) hue, -1 for the negative (blue)."""
    return 1 if color.red() > color.blue() else -1


def rgb(color: QColor) -> tuple[int, int, int]:
    return color.red(), color.green(), color.blue()


def expected_fill(value: np.ndarray, unit: int) -> tuple[int, int, int]:
    return rgb(colors.diverging(value, colors.scale_of(value))[unit])


def test_every_stage_highlights_the_columns_it_names(view, model):
    session = model.session
    assert len(view.shown(0)) == 2 and len(view.shown(1)) == 10 and len(view.shown(4)) == 1
    seen = set()
    for index in range(len(session.pairs)):
        session.go_to_stage(index)
        info = session.stage.scratch.info
        assert view.highlighted_layers() == tuple(sorted(info.layers)), info.key
        seen.add(view.highlighted_layers())
    assert (4,) in seen and (0, 1) in seen  # the loss node and the first weight layer


def test_a_forward_stage_fills_its_units_with_the_scratch_values(view, model):
    session = model.session
    go_to(session, "a1")
    value = session.value("a1")
    for unit in range(10):
        assert rgb(view.node_fill(1, unit)) == expected_fill(value, unit)
        assert view.node_highlighted(1, unit)
    # the other columns are plain: white, grey outline
    assert view.node_fill(2, 0) == colors.NEUTRAL_FILL
    assert not view.node_highlighted(2, 0)
    assert view.legend() == ("y₁", colors.scale_of(value))
    # the extreme unit is at the end of the scale, so the fill is not a constant colour
    strongest = int(np.argmax(np.abs(value)))
    assert rgb(view.node_fill(1, strongest)) == tuple(int(c) for c in colors._RGB[-1])


def test_going_backward_fills_units_with_the_gradient(view, model):
    session = model.session
    go_to(session, "dL/dz2")
    value = session.value("dL/dz2")
    assert np.any(value < 0) and np.any(value > 0)
    for unit in range(10):
        assert rgb(view.node_fill(2, unit)) == expected_fill(value, unit)
    session.step()  # dL/dw2 lives on the edges: its two columns are outlined, not filled
    assert view.highlighted_layers() == (1, 2)
    assert view.node_highlighted(1, 0) and view.node_fill(1, 0) == colors.NEUTRAL_FILL


@pytest.mark.parametrize("layout", ["out_in", "in_out"])
def test_a_weight_gradient_colours_its_edges_and_leaves_them_after(qtbot, layout):
    spec = preset("2-10-5-1-sigmoid-squared").with_options(layout=layout)
    model = SessionModel(Session(spec))
    view = NetworkView(model)
    qtbot.addWidget(view)
    session = model.session
    weight = session.params["w2"]  # engine layout (out, in)
    before = rgb(view.edge_pen(2, 3, 7).color())
    assert sign_of(view.edge_pen(2, 3, 7).color()) == np.sign(weight[3, 7])
    go_to(session, "dL/dw2")
    grad = session.value("dL/dw2")  # the spec's layout
    grid = grad.T if layout == "in_out" else grad
    assert grid.shape == (5, 10)
    scale = colors.scale_of(grad)
    for out, inp in [(0, 0), (3, 7), (4, 9)]:
        shown = rgb(view.edge_pen(2, out, inp).color())
        assert shown == rgb(colors.diverging(np.array([grid[out, inp]]), scale)[0])
    session.step()
    assert rgb(view.edge_pen(2, 3, 7).color()) == before


def test_new_parameters_restyle_the_same_items(view, model):
    session = model.session
    items = len(view.scene().items())
    params = {k: -v for k, v in session.params.items()}
    width = view.edge_pen(1, 0, 0).widthF()
    assert sign_of(view.edge_pen(1, 0, 0).color()) == -np.sign(params["w1"][0, 0])
    session.set_params(params)
    assert sign_of(view.edge_pen(1, 0, 0).color()) == np.sign(params["w1"][0, 0])
    assert view.edge_pen(1, 0, 0).widthF() == width     # |w| is the same
    assert len(view.scene().items()) == items


@pytest.fixture
def hover(view, monkeypatch):
    """Rest the mouse at a viewport point, as Qt does for tooltips, and return the text the
    view would show (recorded rather than shown: the offscreen platform cannot raise a
    tooltip window)."""
    shown = []
    monkeypatch.setattr(QToolTip, "showText", lambda pos, text, *rest: shown.append(text))

    def at(point: QPoint) -> str:
        event = QHelpEvent(QEvent.Type.ToolTip, point, view.viewport().mapToGlobal(point))
        QApplication.sendEvent(view.viewport(), event)
        return shown[-1]

    return at


def test_hovering_a_node_shows_both_engines_for_the_current_stage(view, model, hover):
    session = model.session
    go_to(session, "z2")
    text = hover(view.node_center(2, 4))
    assert "unit 5 of 10" in text and "current stage" in text
    assert exact(session.value("z2", "scratch")[4]) in text
    assert exact(session.value("z2", "torch")[4]) in text
    # a unit outside the stage: its forward value from both engines
    text = hover(view.node_center(1, 0))
    assert "forward value" in text and exact(session.value("a1", "torch")[0]) in text
    # live: the same node after a step shows the new stage
    go_to(session, "dL/dz2")
    text = hover(view.node_center(2, 4))
    assert exact(session.value("dL/dz2", "scratch")[4]) in text
    # empty space: the view's own help text
    assert hover(QPoint(2, 2)) == view.toolTip()


def test_hovering_an_edge_shows_the_weight_or_its_gradient(view, model, hover):
    session = model.session
    text = hover(view.edge_center(3, 0, 6))
    assert "from unit 7 of layer 2 to unit 1 of layer 3" in text
    assert exact(session.params["w3"][0, 6]) in text
    go_to(session, "dL/dw3")
    text = hover(view.edge_center(3, 0, 6))
    assert exact(session.value("dL/dw3", "scratch")[0, 6]) in text
    assert exact(session.value("dL/dw3", "torch")[0, 6]) in text


def test_a_wide_layer_is_drawn_compactly_with_a_count(qtbot):
    model = SessionModel(Session(NetworkSpec((3, 300, 1), ("tanh", "identity"))))
    view = NetworkView(model)
    qtbot.addWidget(view)
    shown = view.shown(1)
    assert len(shown) == 2 * SHOWN_EACH_END < MAX_UNITS
    assert shown[0] == 0 and shown[-1] == 299
    assert any("+272" in item.text() for item in view.scene().items()
               if hasattr(item, "text"))
    assert "unit 300 of 300" in view.node_tooltip(1, 299)


def test_a_deep_net_restyles_its_items_without_making_new_ones(qtbot):
    """10 layers of 21 units: each step restyles the items drawn once (what keeps a step far
    below a frame; timed by bench/, never here) and repaints."""
    spec = NetworkSpec((21,) * 10 + (1,), ("tanh",) * 9 + ("identity",))
    model = SessionModel(Session(spec))
    view = NetworkView(model)
    qtbot.addWidget(view)
    view.resize(1000, 420)
    view.show()
    qtbot.waitExposed(view)
    items = set(view.scene().items())
    for _ in range(len(model.session.pairs) - 1):
        model.session.step()
        view.viewport().repaint()
        assert set(view.scene().items()) == items


def test_weight_edges_are_opaque_and_the_strongest_drawn_on_top(view, model):
    """Translucent pens stroke many times slower: the edges are the sign colour laid on the
    canvas at the weight's strength, opaque, drawn from the weakest to the strongest."""
    w = model.session.params["w1"]
    pens = [view.edge_pen(1, out, inp) for out in range(w.shape[0]) for inp in range(w.shape[1])]
    assert all(pen.color().alpha() == 255 for pen in pens)
    strongest = np.unravel_index(np.argmax(np.abs(w)), w.shape)
    weakest = np.unravel_index(np.argmin(np.abs(w)), w.shape)
    strong, weak = view.edge_pen(1, *strongest).color(), view.edge_pen(1, *weakest).color()
    canvas = colors.CANVAS

    def distance(c: QColor) -> int:     # from the canvas: how strongly it shows
        return sum(abs(a - b) for a, b in zip(rgb(c), rgb(canvas), strict=True))

    assert distance(strong) > distance(weak)
    layer = view._edges[1]
    order = layer.drawing_order()
    widths = [layer.pens[k].widthF() for k in order]
    assert widths == sorted(widths) and order[-1] == layer.index(*strongest)


def test_flattened_is_the_colour_laid_on_its_background():
    half_red = QColor(255, 0, 0, 51)     # 20%
    assert rgb(colors.flattened(half_red, QColor("#ffffff"))) == (255, 204, 204)
    assert rgb(colors.flattened(QColor(10, 20, 30), QColor("#000000"))) == (10, 20, 30)
    assert colors.flattened(half_red, colors.CANVAS).alpha() == 255

"""The live training plots: curves follow the records, log axes survive zeros and divergence,
drawing stays bounded, the surface and heatmaps show the engine's numbers, exports write files."""

import csv
import math
import warnings

import numpy as np
import pyqtgraph as pg
import pyqtgraph.exporters
import pytest
import shiboken6
from hypothesis import example, given, settings
from hypothesis import strategies as st
from PySide6.QtCore import QRectF
from PySide6.QtGui import QImage, QPainter

from engine.files.datasets import classification_set, default_set, regression_set
from engine.net.params import init_params
from engine.net.scratch import ScratchNet
from engine.net.spec import NetworkSpec, preset
from engine.train.lockstep import StepRecord, TrainConfig
from engine.train.run import train
from gui.training.plot_curves import MAX_POINTS, TickAxis, decimated, loggable, zero_floor
from gui.training.plot_surface import GRID, grid_points, input_square
from gui.training.plots import (
    AXIS_TURNS,
    TrainingPlots,
    draw_axes,
    graphics_views,
    sample_index,
    undrawn_axes,
)

pytestmark = [pytest.mark.filterwarnings("error"),
              pytest.mark.qt_log_level_fail("WARNING"),
              pytest.mark.qt_log_ignore("does not support propagateSizeHints")]

REGRESSION = preset("2-10-5-1-sigmoid-squared")
BCE = preset("2-2-1-tanh-bce")


@pytest.fixture(scope="module")
def shared(qapp):
    """One widget for the module, as the window keeps one across runs; each test starts with
    reset(), as a run does."""
    widget = TrainingPlots()
    widget.resize(1200, 800)
    widget.show()
    yield widget
    widget.close()
    widget.deleteLater()


@pytest.fixture
def plots(shared, qtbot) -> TrainingPlots:
    """The shared widget as a test finds it in any order of the module's tests (a parallel
    run deals them out): no panel held, no reveal under way, the redraw timer running."""
    qtbot.waitExposed(shared)
    shared.redraw()
    shared.timer.start()
    return shared


def run_records(spec: NetworkSpec, epochs: int = 2, lr: float = 0.5) -> list[StepRecord]:
    data = default_set(spec, 30)
    return list(train(spec, init_params(spec, 1), data, TrainConfig(lr=lr, epochs=epochs)))


def synthetic(spec: NetworkSpec, start: int, n: int, loss: float = 0.25, diff: float = 1e-8,
              drift: float = 1e-7, per_epoch: int = 100) -> list[StepRecord]:
    names = spec.param_names
    return [StepRecord(step=s, epoch=(s - 1) // per_epoch + 1, samples=(0,), loss_scratch=loss,
                       loss_torch=loss, grad_diff=dict.fromkeys(names, diff), drift=drift,
                       epoch_end=s % per_epoch == 0)
            for s in range(start, start + n)]


def drawn(curve: pg.PlotDataItem) -> tuple[np.ndarray, np.ndarray]:
    """What the curve was last given with setData."""
    x, y = curve.getOriginalDataset()
    return (np.array([]), np.array([])) if x is None else (x, y)


def test_curves_draw_the_histories_of_a_real_run(plots):
    records = run_records(BCE)
    plots.reset(BCE, None)
    for i in range(0, len(records), 7):
        plots.add_records(records[i:i + 7])
    plots.redraw()
    steps = [r.step for r in records]
    for plot in (plots.loss_plot, plots.diff_plot, plots.drift_plot):
        floor = zero_floor([s.history.arrays()[1] for s in plot.series.values()])
        for name, series in plot.series.items():
            x, y = drawn(series.curve)
            assert len(x), name
            expected_x, expected_y = loggable(*series.history.arrays(), floor)
            np.testing.assert_array_equal(x, expected_x)
            np.testing.assert_array_equal(y, expected_y)
    x, y = drawn(plots.loss_plot.series["scratch"].curve)
    np.testing.assert_array_equal(x, steps)
    np.testing.assert_array_equal(y, [r.loss_scratch for r in records])
    x, y = drawn(plots.loss_plot.series["torch epoch mean"].curve)
    ends = [r.step for r in records if r.epoch_end]
    np.testing.assert_array_equal(x, ends)
    for epoch, mean in enumerate(y, start=1):
        assert mean == pytest.approx(np.mean([r.loss_torch for r in records if r.epoch == epoch]))
    assert list(plots.diff_plot.series) == list(BCE.param_names)
    x, y = drawn(plots.diff_plot.series["w2"].curve)
    nonzero = np.array([r.grad_diff["w2"] for r in records]) > 0
    np.testing.assert_array_equal(y[nonzero], [r.grad_diff["w2"] for r in records if
                                               r.grad_diff["w2"] > 0])
    legend = [label.text for _, label in plots.diff_plot.legend.items]
    assert legend == list(BCE.param_names)


def test_records_are_drawn_by_the_timer_not_on_arrival(plots, qtbot):
    plots.reset(REGRESSION, None)
    plots.add_records(synthetic(REGRESSION, 1, 50))
    curve = plots.drift_plot.series["drift"].curve
    assert not len(drawn(curve)[0])
    qtbot.waitUntil(lambda: len(drawn(curve)[0]) == 50)


def test_log_axes_survive_zeros_nan_and_infinity(plots, qtbot):
    plots.reset(REGRESSION, 1e-6)
    records = synthetic(REGRESSION, 1, 40, diff=3e-9)
    records += synthetic(REGRESSION, 41, 10, loss=0.0, diff=0.0, drift=0.0)
    records += synthetic(REGRESSION, 51, 5, loss=float("inf"), diff=float("nan"),
                         drift=float("inf"))
    records += synthetic(REGRESSION, 56, 5, loss=float("nan"), diff=float("inf"),
                         drift=float("nan"))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        plots.add_records(records)
        plots.redraw()
        plots.repaint()
        qtbot.wait(20)   # let the plots paint the mapped data
    for plot in (plots.loss_plot, plots.diff_plot, plots.drift_plot):
        for series in plot.series.values():
            x, y = drawn(series.curve)
            assert np.all(np.isfinite(y)) and np.all(y > 0)
        assert plot.zero_line.isVisible()
    x, y = drawn(plots.diff_plot.series["b1"].curve)
    assert len(x) == 50 and np.all(x <= 50)     # NaN and infinity left out
    assert y[-1] == pytest.approx(1e-10)        # zeros a decade below the smallest value
    assert plots.diff_plot.zero_line.value() == pytest.approx(-10)
    assert plots.diverged_line.isVisible() and plots.diverged_line.value() == 51


def test_a_diverging_run_neither_crashes_nor_warns(plots):
    records = run_records(REGRESSION, epochs=1, lr=1e4)
    assert not records[-1].finite
    plots.reset(REGRESSION, 1e-6)
    data = default_set(REGRESSION, 30)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        plots.add_records(records)
        params = {n: np.full(REGRESSION.param_shape(n, "out_in"), np.inf)
                  for n in REGRESSION.param_names}
        plots.set_state(REGRESSION, params, data)
        plots.redraw()
        plots.repaint()
    assert plots.diverged_line.isVisible()
    assert "diverged" in plots.surface.note.textItem.toPlainText()
    assert "not finite" in plots.heatmaps.titles[0][0].text


def test_drawing_stays_bounded_after_200000_records(plots):
    spec = NetworkSpec((2, 1), ("identity",))     # the fewest series: a fast test
    plots.reset(spec, None)
    rng = np.random.default_rng(0)
    for start in range(1, 200_001, 5000):
        batch = synthetic(spec, start, 5000, loss=float(rng.uniform(0.1, 1)))
        plots.add_records(batch)
        plots.redraw()
    for plot in (plots.loss_plot, plots.diff_plot, plots.drift_plot):
        columns = plot.getViewBox().width()
        for name, series in plot.series.items():
            x, _ = drawn(series.curve)
            assert 0 < len(x) <= min(MAX_POINTS, 2 * columns), name
    x, _ = drawn(plots.loss_plot.series["torch"].curve)
    assert x[0] == 1 and x[-1] == 200_000   # from the first step to the last
    # zoomed in on the last steps, each of them is drawn
    box = plots.loss_plot.getViewBox()
    box.setXRange(200_000 - 300, 200_000, padding=0)
    box.sigRangeChangedManually.emit([True, False])
    plots.loss_plot.redraw()
    x, _ = drawn(plots.loss_plot.series["torch"].curve)
    np.testing.assert_array_equal(x, np.arange(200_000 - 301, 200_001))


@given(st.lists(st.floats(-1e6, 1e6), min_size=1, max_size=3000), st.integers(1, 500),
       st.floats(0, 1), st.floats(0.01, 1))
@example(ys=[0.0, 0.0, 0.0], columns=1, left=0.125, width=0.5)   # one point in each column
@settings(max_examples=200, deadline=None)
def test_decimated_keeps_each_pixel_columns_lowest_and_highest_and_the_edges(
        ys, columns, left, width):
    y = np.array(ys)
    x = np.arange(len(y), dtype=np.float64)
    low = left * len(y)
    high = low + width * len(y)
    dx, dy = decimated(x, y, low, high, columns)
    inside = (x >= low) & (x <= high)
    assert len(dx) <= max(2 * columns, inside.sum() + 2)
    assert len(dx) <= len(x)        # (a column of one point gave it twice)
    assert np.all(np.diff(dx) >= 0)
    if inside.any():
        assert dy.max() >= y[inside].max() and dy.min() <= y[inside].min()
        # the line reaches on to the steps just outside the view
        first, last = np.flatnonzero(inside)[[0, -1]]
        assert dx[0] == x[max(first - 1, 0)] and dx[-1] == x[min(last + 1, len(x) - 1)]
    assert set(dx) <= set(x) and set(dy) <= set(y)     # steps and values of the run only


def test_threshold_line_follows_the_value_and_the_log_toggle(plots):
    plots.reset(REGRESSION, 1e-6)
    line = plots.threshold_line
    assert line.isVisible() and line.value() == pytest.approx(-6)
    plots.diff_plot.plot_item.setLogMode(y=False)
    assert line.value() == pytest.approx(1e-6)
    plots.diff_plot.plot_item.setLogMode(y=True)
    plots.set_threshold(None)
    assert not line.isVisible()
    plots.set_threshold(0.01)
    assert line.isVisible() and line.value() == pytest.approx(-2)


def test_regression_surface_is_the_network_beside_the_target(plots):
    params = init_params(REGRESSION, 3)
    data = regression_set(REGRESSION, 40)
    plots.reset(REGRESSION, None)
    plots.set_state(REGRESSION, params, data)
    plots.redraw()
    surface = plots.surface
    assert surface.available and surface.currentWidget() is surface.view
    assert input_square(data.x) == ((0.0, 1.0), (0.0, 1.0))
    points = grid_points(((0.0, 1.0), (0.0, 1.0)))
    expected = ScratchNet(REGRESSION, params).forward(points, np.zeros((len(points), 1))).y_hat
    image = surface.output_image.image
    assert image.shape == (GRID, GRID)
    np.testing.assert_allclose(image.ravel(), expected[:, 0], rtol=1e-6)
    j, i = 40, 5                                # row = x2 cell, column = x1 cell
    x1, x2 = (i + 0.5) / GRID, (j + 0.5) / GRID
    assert surface.target_image.image[j, i] == pytest.approx((x1**2 + x2**2) / 2)
    assert surface.target_plot.scene() is surface.view.scene()
    assert len(surface.target_samples.data) == len(data)


def test_bce_surface_shows_the_decision_boundary_and_the_classes(plots):
    # p = σ(5·tanh(x1)): class 1 right of the boundary x1 = 0
    params = {"w1": np.array([[1, 0], [0, 0]], np.float32), "b1": np.zeros(2, np.float32),
              "w2": np.array([[5, 0]], np.float32), "b2": np.zeros(1, np.float32)}
    data = classification_set(BCE, 60)
    plots.reset(BCE, None)
    plots.set_state(BCE, params, data)
    plots.redraw()
    surface = plots.surface
    image = surface.output_image.image
    assert image.shape == (GRID, GRID) and np.all((image >= 0) & (image <= 1))
    assert input_square(data.x) == ((-1.0, 1.0), (-1.0, 1.0))
    np.testing.assert_array_equal(image[:, GRID // 2:] > 0.5, True)
    line = surface.boundary.mapRectToView(surface.boundary.boundingRect())
    assert abs(line.center().x()) < 0.05 and line.width() < 0.05 and line.height() > 1.9
    positive = int((data.y[:, 0] >= 0.5).sum())
    assert len(surface.class_samples[1].data) == positive
    assert len(surface.class_samples[0].data) == len(data) - positive
    assert surface.target_plot.scene() is None
    plots.reset(REGRESSION, None)               # and back: the target comes back
    assert surface.target_plot.scene() is surface.view.scene()


def test_three_inputs_replace_the_surface_with_a_sentence(plots):
    spec = NetworkSpec((3, 4, 1), ("tanh", "identity"))
    plots.reset(spec, None)
    plots.set_state(spec, init_params(spec), regression_set(spec, 10))
    plots.redraw()
    assert not plots.surface.available
    assert plots.surface.currentWidget() is plots.surface.message
    assert "two inputs" in plots.surface.message.text() and "3" in plots.surface.message.text()
    assert plots.heatmaps.weight_images[0].image.shape == (4, 4)


def test_heatmaps_show_each_layers_weights_and_the_samples_gradients(plots):
    params = init_params(REGRESSION, 2)
    data = regression_set(REGRESSION, 20)
    plots.reset(REGRESSION, None)
    plots.set_state(REGRESSION, params, data, 5)
    plots.redraw()
    _, grads = ScratchNet(REGRESSION, params).per_sample_gradients(data.x[5:6], data.y[5:6])
    heatmaps = plots.heatmaps
    assert len(heatmaps.weight_images) == len(heatmaps.grad_images) == REGRESSION.n_layers
    for layer in range(1, REGRESSION.n_layers + 1):
        n_in, n_out = REGRESSION.sizes[layer - 1], REGRESSION.sizes[layer]
        weights = heatmaps.weight_images[layer - 1].image
        gradients = heatmaps.grad_images[layer - 1].image
        assert weights.shape == gradients.shape == (n_out, n_in + 1)
        np.testing.assert_array_equal(weights[:, :n_in], params[f"w{layer}"])
        np.testing.assert_array_equal(weights[:, n_in], params[f"b{layer}"])
        np.testing.assert_array_equal(gradients[:, :n_in], grads[f"w{layer}"][0])
        np.testing.assert_array_equal(gradients[:, n_in], grads[f"b{layer}"][0])
        low, high = heatmaps.weight_images[layer - 1].getLevels()
        assert low == -high == -np.abs(weights).max()
    assert "sample 6" in heatmaps.grad_label.text
    assert sample_index(data, data.x[5]) == 5 and sample_index(data, None) == 0


def test_csv_export_writes_the_values_from_the_context_menu(plots, tmp_path, monkeypatch):
    plots.reset(REGRESSION, None)
    records = synthetic(REGRESSION, 1, 30, diff=2.5e-9)
    records += synthetic(REGRESSION, 31, 3, diff=0.0, loss=float("nan"))
    plots.add_records(records)
    plots.redraw()
    target = tmp_path / "diff.csv"
    monkeypatch.setattr(plots, "ask_save_path", lambda *args: str(target))
    action = plots.export_actions[("gradient difference", "csv")]
    assert action in plots.diff_plot.scene().contextMenu
    action.trigger()
    with open(target, newline="") as f:
        rows = list(csv.reader(f))
    assert rows[0][:4] == ["w1 step", "w1 value", "b1 step", "b1 value"]
    assert [int(r[0]) for r in rows[1:]] == list(range(1, 34))
    assert [float(r[1]) for r in rows[1:]] == [2.5e-9] * 30 + [0.0] * 3
    plots.export_actions[("loss", "csv")].trigger()
    with open(target, newline="") as f:
        rows = list(csv.reader(f))
    assert rows[0] == ["scratch step", "scratch value", "torch step", "torch value",
                       "scratch epoch mean step", "scratch epoch mean value",
                       "torch epoch mean step", "torch epoch mean value"]
    assert rows[-1][1] == "nan"


def test_pyqtgraphs_own_csv_exporter_handles_our_curves(plots, tmp_path):
    plots.reset(REGRESSION, None)
    plots.add_records(synthetic(REGRESSION, 1, 20, drift=0.5))
    plots.redraw()
    target = tmp_path / "drift.csv"
    pyqtgraph.exporters.CSVExporter(plots.drift_plot.plot_item).export(str(target))
    with open(target, newline="") as f:
        rows = list(csv.reader(f))
    assert rows[0] == ["drift_x", "drift_y"]
    assert [float(r[1]) for r in rows[1:]] == [0.5] * 20


@pytest.mark.parametrize("panel", ["loss", "surface", "heatmaps"])
def test_png_export_writes_an_image(plots, tmp_path, monkeypatch, panel):
    data = regression_set(REGRESSION, 20)
    plots.reset(REGRESSION, 1e-6)
    plots.add_records(synthetic(REGRESSION, 1, 20))
    plots.set_state(REGRESSION, init_params(REGRESSION), data)
    plots.redraw()
    target = tmp_path / f"{panel}.png"
    monkeypatch.setattr(plots, "ask_save_path", lambda *args: str(target))
    action = plots.export_actions[(panel, "png")]
    menu = plots.heatmaps.actions() if panel == "heatmaps" else \
        getattr(plots, f"{panel}_plot", plots.surface.view).scene().contextMenu
    assert action in menu
    action.trigger()
    assert target.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    image = QImage(str(target))
    assert image.width() > 100 and image.height() > 100


def test_cancelled_export_writes_nothing(plots, tmp_path, monkeypatch):
    plots.reset(REGRESSION, None)
    monkeypatch.setattr(plots, "ask_save_path", lambda *args: None)
    plots.export_actions[("drift", "png")].trigger()
    assert not list(tmp_path.iterdir())


def test_reset_starts_over_with_the_new_networks_parameters(plots):
    plots.reset(REGRESSION, None)
    plots.add_records(synthetic(REGRESSION, 1, 150))
    plots.redraw()
    plots.reset(BCE, None)
    assert list(plots.diff_plot.series) == list(BCE.param_names)
    for series in plots.loss_plot.series.values():
        assert not len(drawn(series.curve)[0]) and series.history.count == 0
    plots.add_records(synthetic(BCE, 1, 100))
    plots.redraw()
    x, y = drawn(plots.loss_plot.series["scratch epoch mean"].curve)
    assert list(x) == [100] and y[0] == pytest.approx(0.25)   # no leftover of the last run


def test_the_plots_show_lay_out_and_paint_one_step_per_turn_of_the_event_loop(
        plots, qtbot, monkeypatch):
    """All at once, showing and painting the plots blocked the event loop for 60-130 ms: the
    dock is shown, then the curve plots and the pictures laid out, then each panel's axes
    drawn and the panel painted, each in a turn of its own; nothing draws all five at once
    after."""
    panels = [plots.loss_plot, plots.diff_plot, plots.drift_plot, plots.surface, plots.heatmaps]
    _curves, surface, heatmaps = parts = plots._parts
    assert surface is plots.surface and heatmaps is plots.heatmaps
    done = []
    for panel in panels:
        panel.setUpdatesEnabled = lambda on, panel=panel: (
            done.append((panel, on)), type(panel).setUpdatesEnabled(panel, on))
    for part in parts:
        part.show = lambda part=part: (done.append(part), type(part).show(part))
    plots.redraw = lambda: done.append("redraw")
    monkeypatch.setattr("gui.training.plots.draw_axes", lambda panel: (
        done.append(("axes", panel)), draw_axes(panel))[1])
    plots.timer.stop()      # the redraw timer's own turns are another test's
    try:
        plots.reveal(lambda: done.append("show"))
        assert done == [(panel, False) for panel in panels]     # nothing else yet
        assert all(part.isHidden() for part in parts)
        qtbot.waitUntil(lambda: (plots.heatmaps, True) in done, timeout=2_000)
    finally:
        for panel in panels:
            del panel.setUpdatesEnabled
        for part in parts:
            del part.show
        del plots.redraw
    steps = [step for i, step in enumerate(done) if i == 0 or step != done[i - 1]]
    assert steps[len(panels):] == ["show", *parts, *(step for panel in panels for step in (
        ("axes", panel), (panel, True)))]
    assert not any(undrawn_axes(panel) for panel in panels)     # all drawn before the paint


def test_plots_gone_before_they_are_all_painted_are_no_trouble(qtbot):
    widget = TrainingPlots()
    widget.reveal(widget.show)
    shiboken6.delete(widget)
    qtbot.wait(50)                 # the remaining turns never come: nothing raises


@pytest.mark.parametrize("size", [1, 37, 1000])
def test_how_records_are_batched_changes_no_curve(plots, size):
    """Epochs that end inside a batch, span batches or end on a batch's last record."""
    records = run_records(REGRESSION, epochs=5)       # 150 steps, an epoch every 30
    plots.reset(REGRESSION, None)
    for i in range(0, len(records), size):
        plots.add_records(records[i:i + size])
    ends = [r for r in records if r.epoch_end]
    steps, means = plots.loss_plot.series["scratch epoch mean"].history.arrays()
    assert list(steps) == [r.step for r in ends]
    for epoch, mean in enumerate(means, start=1):
        assert mean == pytest.approx(np.mean([r.loss_scratch for r in records
                                              if r.epoch == epoch]), rel=1e-12)
    for name in REGRESSION.param_names:
        steps, values = plots.diff_plot.series[name].history.arrays()
        np.testing.assert_array_equal(values, [r.grad_diff[name] for r in records])


def test_curves_and_pictures_are_drawn_in_turns_and_painted_in_the_next(plots, monkeypatch):
    """One tick draws one of the three curve plots, the surface or the heatmaps, with its
    updates held; when that moved its axes, the next tick draws their pictures and nothing
    else, still held; the tick after paints it and draws nothing: a tick's work is the largest
    of the five drawings, of their axes or of their paints, never two of them together. Each
    is drawn in its turn, once a round."""
    monkeypatch.setattr("gui.training.plots.STATE_INTERVAL", 0.0)
    plots.timer.stop()      # its ticks are the test's: one between two would hold a panel
    plots.reset(REGRESSION, None)
    data = default_set(REGRESSION, 30)
    panels = [plots.loss_plot, plots.diff_plot, plots.drift_plot, plots.surface, plots.heatmaps]
    curves = [next(iter(plot.series.values())).curve for plot in panels[:3]]
    drawn_by, kinds, last = [], [], "paint"
    for tick in range(60):
        plots.add_records(synthetic(REGRESSION, 1 + 10 * tick, 10))
        plots.set_state(REGRESSION, init_params(REGRESSION, tick), data)
        plots._on_timer()
        held = [not panel.updatesEnabled() for panel in panels]
        # (a curve plot decimates: its last point tells the steps it drew)
        now = [len(drawn(curve)[0]) > 0 and drawn(curve)[0][-1] == 10 * (tick + 1)
               for curve in curves]
        now += [name not in plots._undrawn for name in ("surface", "heatmaps")]
        if any(now):
            assert last == "paint" and sum(now) == 1, (tick, last, now)
            assert held == now, tick      # the one drawn does not paint in the same tick
            drawn_by.append(now.index(True))
            kind = "draw"
        elif any(held):     # its axes, drawn in ticks of their own
            assert last in ("draw", "axes") and held == [i == drawn_by[-1] for i in range(5)]
            assert kinds[-AXIS_TURNS:].count("axes") < AXIS_TURNS, tick
            kind = "axes"
        else:
            assert last in ("draw", "axes"), tick   # it paints: nothing else is done
            if last == "axes":
                assert not undrawn_axes(panels[drawn_by[-1]]), tick
            kind = "paint"
        kinds.append(last := kind)
    assert sorted(drawn_by[:5]) == [0, 1, 2, 3, 4]
    assert drawn_by == (drawn_by[:5] * 20)[:len(drawn_by)]    # each in its turn
    assert "axes" in kinds      # the steps grew: the x axes moved


@pytest.mark.parametrize("panel", ["loss_plot", "surface"])
def test_axes_drawn_ahead_look_as_the_paint_draws_them(plots, panel):
    """draw_axes makes the pictures the paint would: the panel's pixels are the same."""
    plots.reset(REGRESSION, None)
    plots.add_records(synthetic(REGRESSION, 1, 300))
    plots.set_state(REGRESSION, init_params(REGRESSION, 1), default_set(REGRESSION, 30))
    plots.redraw()
    widget = getattr(plots, panel)

    def grabbed(ahead: bool) -> QImage:
        for view in graphics_views(widget):
            for item in view.items():
                if isinstance(item, pg.AxisItem):
                    item.picture = None
        if ahead:
            assert undrawn_axes(widget)
            while draw_axes(widget, most=1):
                pass
            assert not undrawn_axes(widget)
        return widget.grab().toImage()

    painted, ahead = grabbed(False), grabbed(True)
    assert not painted.isNull() and painted == ahead


def test_a_panel_whose_axes_keep_moving_is_still_painted(plots, monkeypatch):
    """At most AXIS_TURNS turns for the axes: then the paint, whatever they do meanwhile."""
    monkeypatch.setattr("gui.training.plots.undrawn_axes", lambda panel: [panel])
    monkeypatch.setattr("gui.training.plots.draw_axes", lambda panel: True)
    plots.reset(REGRESSION, None)
    plots.timer.stop()
    while plots._held is not None:  # what the timer held before it stopped, painted
        plots._on_timer()
    plots.add_records(synthetic(REGRESSION, 1, 10))
    for _ in range(5):      # to the turn of a curve plot
        plots._on_timer()
        if plots._held is not None:
            break
    held = plots._held
    assert held is not None and not held.updatesEnabled()
    for _ in range(AXIS_TURNS):
        plots._on_timer()
        assert plots._held is held and not held.updatesEnabled()
    plots._on_timer()
    assert plots._held is None and held.updatesEnabled()


def test_an_axis_label_is_laid_out_again_only_when_its_text_changes(qapp, monkeypatch):
    """pyqtgraph sets it at every change of range; the text is the same, and stays right."""
    axis = TickAxis("bottom")
    axis.setLabel("step")
    set_html = []
    original = axis.label.setHtml
    monkeypatch.setattr(axis.label, "setHtml", lambda html: (set_html.append(html),
                                                             original(html)))
    for high in range(10, 200, 10):
        axis.setRange(0, high)
    assert set_html == [] and axis.label.toPlainText().strip() == "step"
    axis.setLabel("epoch")
    axis.setTextPen("#d62728")
    assert len(set_html) == 2 and axis.label.toPlainText().strip() == "epoch"
    assert "#d62728" in set_html[-1]


def test_a_turn_with_nothing_to_draw_holds_no_panel(plots):
    """Nothing new: no panel's updates are held, so none is painted again for nothing."""
    plots.reset(REGRESSION, None)
    plots.timer.stop()
    for _ in range(10):
        plots._on_timer()
        assert plots._held is None
        assert all(panel.updatesEnabled() for panel in (
            plots.loss_plot, plots.diff_plot, plots.drift_plot, plots.surface, plots.heatmaps))


def test_zooming_one_curve_plot_shows_the_same_steps_in_the_others(plots):
    """Their x axes are not linked in pyqtgraph's way (a redraw of one would repaint all
    three), but a zoom or pan by the user is followed."""
    plots.reset(REGRESSION, None)
    plots.add_records(synthetic(REGRESSION, 1, 500))
    plots.redraw()
    box = plots.diff_plot.getViewBox()
    box.setXRange(100, 200, padding=0)
    box.sigRangeChangedManually.emit([True, False])     # as a drag or the wheel says it
    for plot in (plots.loss_plot, plots.drift_plot):
        low, high = plot.getViewBox().viewRange()[0]
        assert (low, high) == pytest.approx((100, 200))


def test_a_growing_run_moves_the_axes_seldom_and_keeps_every_point_in_view(plots):
    """The view follows the curves by steady steps (the axes and every curve are drawn again
    when it moves): the curves fill most of the steps shown, and stay inside the view."""
    plots.reset(REGRESSION, None)
    ranges = set()
    for start in range(1, 20_001, 250):
        plots.add_records(synthetic(REGRESSION, start, 250, loss=1.0 / start,
                                    diff=1e-8 * (1 + start % 7)))
        plots.redraw()
        for plot in plots._curve_plots().values():
            (x0, x1), (y0, y1) = plot.getViewBox().viewRange()
            ranges.add((plot.plot_item.titleLabel.text, x0, x1, y0, y1))
            for series in plot.series.values():
                x, y = drawn(series.curve)
                assert x0 <= x.min() and x.max() <= x1
                assert y0 <= np.log10(y).min() and np.log10(y).max() <= y1
                assert (x.max() - x0) >= 0.75 * (x1 - x0)
    # 80 redraws of three plots over two decades of steps: about ten moves a decade each
    assert len(ranges) <= 3 * 25


def test_a_new_run_starts_from_an_empty_view(plots):
    plots.reset(REGRESSION, None)
    plots.add_records(synthetic(REGRESSION, 1, 5000))
    plots.redraw()
    assert plots.loss_plot.getViewBox().viewRange()[0][1] >= 5000
    plots.reset(REGRESSION, None)
    plots.redraw()
    for plot in plots._curve_plots().values():
        assert plot.getViewBox().viewRange()[0][1] <= 100


def test_the_users_zoom_stays_until_they_ask_for_the_auto_range_again(plots):
    plots.reset(REGRESSION, None)
    plots.add_records(synthetic(REGRESSION, 1, 1000))
    plots.redraw()
    box = plots.loss_plot.getViewBox()
    box.setRange(xRange=(100, 300), yRange=(-3, -1), padding=0)
    box.sigRangeChangedManually.emit([True, True])
    plots.add_records(synthetic(REGRESSION, 1001, 4000))
    plots.redraw()
    assert box.viewRange() == [pytest.approx([100, 300]), pytest.approx([-3, -1])]
    box.enableAutoRange()      # the A button, View All
    plots.add_records(synthetic(REGRESSION, 5001, 10))
    plots.redraw()
    (x0, x1), (y0, y1) = box.viewRange()
    assert x0 <= 1 and x1 >= 5010 and y0 <= np.log10(0.25) <= y1


def test_the_grid_is_ours_at_the_axes_ticks_not_drawn_by_the_axes(plots):
    """pyqtgraph's grid is painted by the axes, which made each repaint three times dearer."""
    plots.reset(REGRESSION, None)
    plots.add_records(synthetic(REGRESSION, 1, 3000, diff=1e-8))
    plots.redraw()
    plot = plots.diff_plot
    assert all(plot.plot_item.getAxis(name).grid is False for name in ("left", "bottom"))
    major = plot.grid.lines()[0]
    (x0, x1), (y0, y1) = plot.getViewBox().viewRange()
    heights = {round(line.y1(), 9) for line in major if line.y1() == line.y2()}
    assert {float(v) for v in range(math.floor(y0) + 1, math.ceil(y1))} <= heights
    assert all(y0 <= h <= y1 for h in heights)
    steps = [line.x1() for line in major if line.x1() == line.x2()]
    assert len(steps) >= 2 and all(x0 <= x <= x1 for x in steps)


# the plots dock's room at a laptop's screen and a full-HD one (the window's layout gives it)
DOCK_ROOMS = {"1366x768": (1366, 250), "1920x1080": (1920, 400)}


@pytest.fixture(params=list(DOCK_ROOMS))
def laid_out(request, qtbot) -> TrainingPlots:
    """Plots at a dock's size after a 3000-step run of the default network, drawn."""
    widget = TrainingPlots()
    qtbot.addWidget(widget)
    widget.resize(*DOCK_ROOMS[request.param])
    widget.show()
    qtbot.waitExposed(widget)
    spec = preset("2-10-10-1-sigmoid-squared")
    data = default_set(spec, 100)
    widget.reset(spec, 1e-6)
    rng = np.random.default_rng(3)
    widget.add_records([StepRecord(step=s, epoch=(s - 1) // 100 + 1, samples=(0,),
                                   loss_scratch=float(np.exp(rng.normal(-5, 2))),
                                   loss_torch=float(np.exp(rng.normal(-5, 2))),
                                   grad_diff={n: float(np.exp(rng.normal(-20, 2)))
                                              for n in spec.param_names},
                                   drift=1e-7 * s ** 0.5, epoch_end=s % 100 == 0)
                        for s in range(1, 3001)])
    widget.set_state(spec, init_params(spec, 1), data)
    widget.redraw()
    qtbot.waitUntil(lambda: not widget._undrawn)
    return widget


def on_view(view: pg.GraphicsView, item) -> QRectF:
    """Where `item` is on `view`'s viewport, in its pixels."""
    return view.mapFromScene(item.sceneBoundingRect()).boundingRect().toRectF()


def test_legends_are_outside_the_curves_and_every_entry_shows(laid_out):
    for plot in (laid_out.loss_plot, laid_out.diff_plot):
        curves = on_view(plot, plot.getViewBox())
        legend = on_view(plot, plot.legend)
        assert not legend.intersects(curves), plot.plot_item.titleLabel.text
        for sample, label in plot.legend.items:
            for part in (sample, label):
                assert plot.viewport().rect().toRectF().contains(on_view(plot, part)), label.text


def test_titles_and_axis_labels_fit_their_plots(laid_out):
    for plot in laid_out._curve_plots().values():
        title = plot.plot_item.titleLabel
        assert title.minimumWidth() <= title.width() + 0.5, title.text   # nothing cut
        assert plot.viewport().rect().toRectF().contains(on_view(plot, title)), title.text
        label = plot.plot_item.getAxis("left").label
        assert label.boundingRect().width() <= plot.getViewBox().height() + 30, title.text


def tick_texts(axis: pg.AxisItem) -> list:
    """The tick labels `axis` would draw now: (rect, text) each."""
    image = QImage(10, 10, QImage.Format.Format_ARGB32)
    painter = QPainter(image)
    try:
        _, _, texts = axis.generateDrawSpecs(painter)
    finally:
        painter.end()
    return [(rect, text) for rect, _flags, text in texts]


@pytest.mark.parametrize("decades", [(-6, -5), (-7, -5), (-12, -6)])
def test_tick_labels_never_overlap(laid_out, decades):
    """A log axis over a decade or two labels 2·10ⁿ and 5·10ⁿ where they have room; all
    eight minor labels crowded at the top of each decade."""
    axes = [plot.plot_item.getAxis(name) for plot in laid_out._curve_plots().values()
            for name in ("left", "bottom")]
    axes += [laid_out.surface.output_plot.getAxis("bottom")]
    laid_out.drift_plot.getViewBox().setYRange(*decades, padding=0)
    for axis in axes:
        texts = tick_texts(axis)
        assert len(texts) >= 2
        for i, (rect, text) in enumerate(texts):
            for other, other_text in texts[i + 1:]:
                assert not rect.intersects(other), (text, other_text)
    drift = {text for _, text in tick_texts(laid_out.drift_plot.plot_item.getAxis("left"))}
    assert not drift & {f"{m}·10⁻⁶" for m in (3, 4, 6, 7, 8, 9)}


def test_the_surface_and_heatmaps_are_whole_and_readable(laid_out):
    surface = laid_out.surface.view
    room = surface.viewport().rect().toRectF()
    for item in (laid_out.surface.output_plot, laid_out.surface.target_plot,
                 laid_out.surface.colorbar):
        assert room.contains(on_view(surface, item))
    square = on_view(surface, laid_out.surface.output_image)
    assert min(square.width(), square.height()) >= 100      # px a side, not 40
    heatmaps = laid_out.heatmaps
    room = heatmaps.viewport().rect().toRectF()
    for image in heatmaps.weight_images + heatmaps.grad_images:
        assert room.contains(on_view(heatmaps, image.getViewBox()))
    for label in [heatmaps.grad_label, *(t for pair in heatmaps.titles for t in pair)]:
        assert room.contains(on_view(heatmaps, label)), label.text
        assert label.minimumWidth() <= label.width() + 0.5, label.text


def test_a_deep_networks_legend_names_twelve_parameters_then_how_many_more(laid_out):
    deep = NetworkSpec((2, 3, 3, 3, 3, 3, 3, 3, 1), ("tanh",) * 7 + ("identity",))
    laid_out.reset(deep, None)
    plot = laid_out.diff_plot
    names = [label.text for _, label in plot.legend.items]
    assert names == [*deep.param_names[:12], "+4 more"]
    laid_out.reset(preset("2-10-10-1-sigmoid-squared"), None)
    assert [label.text for _, label in plot.legend.items] == ["w1", "b1", "w2", "b2", "w3", "b3"]
    for _, label in plot.legend.items:
        assert not on_view(plot, label).intersects(on_view(plot, plot.getViewBox()))


def _black_share(widget) -> float:
    image = widget.grab().toImage()
    black = sum(image.pixelColor(x, y).name() == "#000000"
                for x in range(0, image.width(), 7) for y in range(0, image.height(), 7))
    return black / len(range(0, image.width(), 7)) / len(range(0, image.height(), 7))


def test_redraw_lets_go_of_a_held_panel_so_a_grab_shows_it_painted(plots):
    """A panel the redraw timer holds between its drawing and its paint is grabbed black (a
    screenshot after training showed the drift plot so); redraw lets it paint."""
    plots.reset(REGRESSION, None)
    plots.timer.stop()
    plots.add_records(synthetic(REGRESSION, 1, 300))
    for _ in range(5):
        plots._on_timer()
        if plots._held is not None:
            break
    held = plots._held
    assert held is not None and not held.updatesEnabled()
    assert _black_share(held) > 0.9        # what the screenshot showed
    plots.redraw()
    assert plots._held is None and held.updatesEnabled()
    assert _black_share(held) < 0.1
    plots._on_timer()       # the timer goes on from there: nothing is held twice
    assert all(panel.updatesEnabled() or panel is plots._held for panel in (
        plots.loss_plot, plots.diff_plot, plots.drift_plot, plots.surface, plots.heatmaps))


def test_redraw_during_a_reveal_finishes_it_and_the_reveals_turns_then_do_nothing(
        plots, qapp, monkeypatch):
    monkeypatch.setattr("gui.training.plots.REVEAL_STEP_MS", 0)     # its turns come at once
    panels = [plots.loss_plot, plots.diff_plot, plots.drift_plot, plots.surface, plots.heatmaps]
    shown = []
    plots.timer.stop()
    plots.add_records(synthetic(REGRESSION, 1, 300))
    plots.reveal(lambda: shown.append("show"))
    assert not any(panel.updatesEnabled() for panel in panels)
    plots.redraw()
    assert shown == ["show"]
    assert all(panel.updatesEnabled() for panel in panels)
    assert not any(part.isHidden() for part in plots._parts)
    assert not any(undrawn_axes(panel) for panel in panels)
    assert all(_black_share(panel) < 0.1 for panel in panels)
    for _ in range(3 * len(panels) + len(plots._parts) + 2):   # more turns than it had
        qapp.processEvents()
    assert shown == ["show"] and all(panel.updatesEnabled() for panel in panels)

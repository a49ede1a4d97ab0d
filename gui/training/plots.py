"""The live plots of a training run: loss, gradient differences and parameter drift over the
steps, the output surface of a two-input network, and weight and gradient heatmaps per layer.

The worker's batches of records go to `add_records`, which only hands them to the run's
history (engine.train.history.RunHistory: the bounded curves, the epoch means, the step the run
diverged at), whose curves these plots draw; the current parameters go to `set_state`, which
only keeps them. A timer draws what changed: the curves five times a second and, in the turns
between, the surface and heatmaps at most twice a second, so what a redraw costs does not depend
on how often records arrive nor on how many steps the run has taken."""

import functools
import math
import time
from collections.abc import Callable, Sequence

import numpy as np
import pyqtgraph as pg
import pyqtgraph.exporters
from PySide6.QtCore import QBuffer, QByteArray, QIODevice, Qt, QTimer, Slot
from PySide6.QtGui import QAction, QColor, QPainter, QPen, QPicture
from PySide6.QtWidgets import QMessageBox, QSplitter, QVBoxLayout, QWidget

from engine.files.atomic import atomic_write_bytes, atomic_write_text
from engine.files.datasets import Dataset
from engine.net.params import Params
from engine.net.spec import NetworkSpec
from engine.train.history import RunHistory
from engine.train.lockstep import StepRecord
from gui.colors import WHITE, flattened
from gui.files.file_dialogs import ask_save_file
from gui.training.plot_curves import LogCurvePlot
from gui.training.plot_heatmaps import LayerHeatmaps
from gui.training.plot_surface import SurfacePanel

# a turn: one of the curve plots, the surface and the heatmaps drawn, or the one drawn the turn
# before painted; each drawn 4 times a second while a run goes
REDRAW_MS = 25
REVEAL_STEP_MS = 20     # between the first paints of two panels (see reveal)
AXES_A_TURN = 4         # axes drawn in a turn before their panel's paint (see draw_axes)
AXIS_TURNS = 3          # turns a drawn panel waits for its axes at most: then it is painted
MIN_CURVE_PLOT = (220, 200)   # px: room for the y ticks, the title and a readable curve
PICTURES = ("surface", "heatmaps")   # drawn from the parameters, not the records
STATE_INTERVAL = 0.5    # seconds between two drawings of the surface and the heatmaps
ENGINES = {"scratch": QColor("#d95f02"), "torch": QColor("#1f78b4")}
PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2",
           "#7f7f7f", "#bcbd22", "#17becf"]
LEGEND_MAX = 12         # parameters named in the gradient-difference legend; then "+N more"
PNG_FILTER = "PNG images (*.png);;All files (*)"
CSV_FILTER = "CSV files (*.csv);;All files (*)"


def _pen(color: QColor, width: int = 1, alpha: int = 255) -> QPen:
    """A pen of `color` as if `alpha` of it were laid on the white background, but opaque: a
    translucent pen strokes a noisy curve's whole path as one shape (tens of ms a paint)."""
    color = QColor(color)
    color.setAlpha(alpha)
    return pg.mkPen(flattened(color, WHITE), width=width)


def graphics_views(panel: QWidget) -> list[pg.GraphicsView]:
    """The pyqtgraph views of `panel`: itself if it is one, else those it holds."""
    if isinstance(panel, pg.GraphicsView):
        return [panel]
    return panel.findChildren(pg.GraphicsView)


def undrawn_axes(panel: QWidget) -> list[pg.AxisItem]:
    """The shown axes of `panel` (a pyqtgraph view, or a widget holding some) whose picture a
    change of range or size left undrawn: their next paint would draw it."""
    return [item for view in graphics_views(panel) for item in view.items()
            if isinstance(item, pg.AxisItem) and item.picture is None and item.isVisible()]


def draw_axes(panel: QWidget, most: int | None = AXES_A_TURN) -> bool:
    """Draw now, as their paint would, the pictures of up to `most` (None: all) of the undrawn
    axes of `panel`: their tick texts are the dearest part of a plot's paint (1-2 ms an axis),
    and drawn in turns of their own they leave the paint the rest. Whether some are still
    undrawn."""
    undrawn = undrawn_axes(panel)
    for item in undrawn[:most]:
        picture = QPicture()
        painter = QPainter(picture)
        try:
            if item.style["tickFont"]:
                painter.setFont(item.style["tickFont"])
            specs = item.generateDrawSpecs(painter)
            if specs is not None:
                item.drawPicture(painter, *specs)
        finally:
            painter.end()
        item.picture = picture
    return most is not None and len(undrawn) > most


def parameter_color(index: int, count: int) -> QColor:
    """A distinct colour for the index-th of `count` parameters."""
    return QColor(PALETTE[index]) if count <= len(PALETTE) else pg.intColor(index, hues=count)


class TrainingPlots(QWidget):
    """reset(spec, threshold) for each run, then add_records(batch) and set_state(...) as it
    goes; the panels are loss_plot, diff_plot, drift_plot, surface and heatmaps."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        # titles short enough for a plot 220 px wide (a laptop's), which pyqtgraph would clip
        self.loss_plot = LogCurvePlot("Loss (bold: epoch mean)", "loss")
        # the legend names the bold curves, whose colours read; the thin are the same, paler
        for engine, color in ENGINES.items():
            self.loss_plot.add_series(engine, _pen(color, alpha=90), legend=None)
        for engine, color in ENGINES.items():
            self.loss_plot.add_series(f"{engine} epoch mean", _pen(color.darker(150), width=2),
                                      z=2.0, legend=engine)
        self.diverged_line = pg.InfiniteLine(
            angle=90, movable=False, pen=pg.mkPen("#b3261e", width=1, style=Qt.PenStyle.DashLine),
            label="diverged", labelOpts={"position": 0.1, "color": "#b3261e",
                                         "anchors": [(1, 1), (1, 1)]})
        self.diverged_line.setVisible(False)
        self.loss_plot.plot_item.addItem(self.diverged_line)
        self.diff_plot = LogCurvePlot("Gradient differences", "max |scratch − torch|")
        self._more: pg.PlotDataItem | None = None     # the legend's "+N more" entry
        self.threshold_line = self.diff_plot.add_level(
            "breakpoint", pg.mkPen("#b3261e", width=1, style=Qt.PenStyle.DashLine))
        self.drift_plot = LogCurvePlot("Parameter drift", "‖θ scratch − θ torch‖")
        self.drift_plot.add_series("drift", _pen(QColor("#6a3d9a")))
        self.drift_plot.legend.setVisible(False)
        # x follows across the three when the user zooms or pans one; not linked in
        # pyqtgraph's way, where each redraw of one repaints all three
        for plot in self._curve_plots().values():
            plot.getViewBox().sigRangeChangedManually.connect(
                lambda _mask, moved=plot: self._follow_x(moved))
        self.surface = SurfacePanel()
        self.heatmaps = LayerHeatmaps()
        self._build_layout()
        self.export_actions: dict[tuple[str, str], QAction] = {}
        for name, plot in (("loss", self.loss_plot), ("gradient difference", self.diff_plot),
                           ("drift", self.drift_plot)):
            self._add_export_actions(name, plot, csv=True)
        self._add_export_actions("surface", self.surface.view, csv=False)
        self._add_export_actions("heatmaps", self.heatmaps, csv=False)
        self.threshold: float | None = None
        self._drawn_spec: NetworkSpec | None = None
        self._state: tuple[NetworkSpec, Params, Dataset, object] | None = None
        self._undrawn: set[str] = set()     # of PICTURES, those behind the state
        self._drawn_at = dict.fromkeys(PICTURES, -math.inf)
        self.run_history = RunHistory(())
        self.timer = QTimer(self)
        self._turn = 0
        self._held: QWidget | None = None   # the panel drawn last turn, to paint in this one
        self._axis_turns = 0        # the turns its axes were drawn in, since it was drawn
        # what is left of a reveal: each step, and whether it is taken again while it returns
        # True (some axes are left)
        self._revealing: list[tuple[Callable[[], object], bool]] = []
        self.timer.setInterval(REDRAW_MS)
        self.timer.timeout.connect(self._on_timer)
        self.timer.start()

    def _build_layout(self) -> None:
        # the curve plots side by side, not stacked: a dock below the explorer is wide and
        # short (about 1366x260 on a laptop), and stacked they were 10 px high each
        curves = QSplitter(Qt.Orientation.Horizontal)
        for plot in (self.loss_plot, self.diff_plot, self.drift_plot):
            plot.setMinimumSize(*MIN_CURVE_PLOT)
            curves.addWidget(plot)
        # the surface and the heatmaps side by side too, each the dock's whole height: one
        # above the other, the squares of the surface were 40 px and the heatmaps cut off
        pictures = QSplitter(Qt.Orientation.Horizontal)
        pictures.addWidget(self.surface)
        pictures.addWidget(self.heatmaps)
        pictures.setSizes([1200, 800])
        split = QSplitter(Qt.Orientation.Horizontal)
        split.addWidget(curves)
        split.addWidget(pictures)
        split.setStretchFactor(0, 1)
        split.setStretchFactor(1, 1)
        split.setSizes([1000, 1000])    # shares of the width, from the first layout on
        curves.setSizes([1000] * 3)
        for splitter in (curves, pictures, split):
            splitter.setChildrenCollapsible(False)
        self._parts = (curves, self.surface, self.heatmaps)   # laid out one a turn
        self._panels = (self.loss_plot, self.diff_plot, self.drift_plot, self.surface,
                        self.heatmaps)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(split)

    def reset(self, spec: NetworkSpec, threshold: float | None = None) -> None:
        """Draw a new run's history, empty, for a network of `spec`: one gradient-difference
        curve per parameter, the breakpoint line at `threshold` (None: no line)."""
        names = list(spec.param_names)
        if list(self.diff_plot.series) != names:
            for name in list(self.diff_plot.series):
                self.diff_plot.remove_series(name)
            legend = self.diff_plot.legend
            if self._more is not None:
                legend.removeItem(self._more)
                self._more = None
            for i, name in enumerate(names):
                self.diff_plot.add_series(name, _pen(parameter_color(i, len(names)), alpha=190),
                                          legend="" if i < LEGEND_MAX else None)
            if len(names) > LEGEND_MAX:     # a legend of 200 names would take the plot's room
                self._more = pg.PlotDataItem(pen=None)
                legend.addItem(self._more, f"+{len(names) - LEGEND_MAX} more")
                legend.fit()
        self._follow(RunHistory(names))
        self.diverged_line.setVisible(False)
        self._configure(spec)
        self._state = None
        self._undrawn.clear()
        self.set_threshold(threshold)

    def _configure(self, spec: NetworkSpec) -> None:
        self.surface.configure(spec)
        self.heatmaps.configure(spec)
        self._drawn_spec = spec

    def add_records(self, records: Sequence[StepRecord]) -> None:
        """Append a batch of records (in step order) to the run's history; drawn by the
        timer."""
        if not records:
            return
        self.run_history.add(records)
        for plot in self._curve_plots().values():
            plot.changed()

    def history(self) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """What the run's history keeps of every curve (RunHistory.saved), for an autosave."""
        return self.run_history.saved()

    def restore_history(self, spec: NetworkSpec,
                        history: dict[str, tuple[np.ndarray, np.ndarray]]) -> None:
        """Start over for `spec` with the curves `history()` gave (a restored session); names
        these plots do not have are left out. The surface and the heatmaps keep the state
        they were given and are drawn now too."""
        state = self._state
        self.reset(spec, self.threshold)
        self._follow(RunHistory.restored(spec.param_names, history))
        for plot in self._curve_plots().values():
            plot.changed()
        if state is not None and state[0] == spec:
            self.set_state(*state)
        self.redraw()

    def _follow(self, history: RunHistory) -> None:
        """Draw `history`'s curves: "loss/scratch" is the loss plot's series "scratch"."""
        self.run_history = history
        for plot_name, plot in self._curve_plots().items():
            plot.follow({name: history.series[f"{plot_name}/{name}"] for name in plot.series})

    def _curve_plots(self) -> dict[str, LogCurvePlot]:
        return {"loss": self.loss_plot, "diff": self.diff_plot, "drift": self.drift_plot}

    def set_threshold(self, value: float | None) -> None:
        """The breakpoint's gradient-difference threshold, drawn as a line; None hides it."""
        self.threshold = value
        self.diff_plot.set_level(self.threshold_line, value)

    def set_state(self, spec: NetworkSpec, params: Params, data: Dataset,
                  sample_x: int | np.ndarray | None = None) -> None:
        """The current parameters (engine layout; kept, not copied) for the surface and the
        heatmaps, whose gradients are those of `sample_x`: a row index of `data`, the inputs
        of one of its rows, or None for the first sample."""
        self._state = (spec, params, data, sample_x)
        self._undrawn.update(PICTURES)

    def reveal(self, *show: Callable[[], None]) -> None:
        """Show these plots with the steps `show` (which lay them out), then lay out the curve
        plots, the surface and the heatmaps, then draw each panel's axes (AXES_A_TURN a step)
        and paint it, each step in a turn of the event loop of its own, REVEAL_STEP_MS after the
        last; the redraw timer draws them from then on, one a turn. All at once, showing and
        painting them held the event loop 60-130 ms."""
        waiting = self._revealing = []
        for part in self._parts:        # shown after the dock, each laid out on its own turn
            part.hide()
        waiting += [(step, False) for step in (*show, *(part.show for part in self._parts))]
        for panel in self._panels:
            panel.setUpdatesEnabled(False)
            waiting.append((functools.partial(draw_axes, panel), True))
            waiting.append((functools.partial(panel.setUpdatesEnabled, True), False))  # paints

        def next_step() -> None:
            if waiting is not self._revealing or not waiting:
                return      # finished at once by redraw, or a new reveal took over
            step, again = waiting[0]
            if not (step() and again):
                waiting.pop(0)
            if waiting:   # (never, once these plots are gone)
                QTimer.singleShot(REVEAL_STEP_MS, self, next_step)

        QTimer.singleShot(REVEAL_STEP_MS, self, next_step)

    def redraw(self) -> None:
        """Draw everything that changed now, the surface and heatmaps included, and let every
        panel paint: the rest of a reveal under way is taken now and a panel the timer holds
        is let go. A grab of the window (a screenshot) then shows every panel painted: a
        panel whose updates are held is grabbed black."""
        waiting, self._revealing = self._revealing, []
        for step, again in waiting:
            while step() and again:
                pass
        if self._held is not None:
            self._held.setUpdatesEnabled(True)
            self._held, self._axis_turns = None, 0
        self._draw_curves()
        self._draw_pictures(now=True)
        for panel in self._panels:   # the axes the drawing moved, drawn before a grab
            draw_axes(panel, most=None)

    @Slot()
    def _on_timer(self) -> None:
        # the three curve plots, the surface and the heatmaps take turns, and each is painted
        # in the turn after the one that drew it (after a turn for its axes when their range
        # moved): a turn's work is one drawing or one paint, not their sum (a curve plot's
        # redraw and paint together held the event loop 10-17 ms, the five panels drawn at
        # once 20-36 ms)
        if self._held is not None:
            held, self._held = self._held, None
            if self._axis_turns < AXIS_TURNS and undrawn_axes(held):
                draw_axes(held)
                self._held = held       # painted in a turn after
                self._axis_turns += 1
            else:
                self._axis_turns = 0
                held.setUpdatesEnabled(True)    # paints it (and what axes are left)
            return
        plots = tuple(self._curve_plots().values())
        self._turn = (self._turn + 1) % (len(plots) + len(PICTURES))
        if self._turn < len(plots):
            plot = plots[self._turn]
            panel, due = plot, plot.dirty
            draw = plot.redraw
        else:
            name = PICTURES[self._turn - len(plots)]
            panel, due = getattr(self, name), self._picture_due(name, now=False)
            draw = functools.partial(self._draw_pictures, now=False, which=(name,))
        if due and panel.updatesEnabled():   # (not one the reveal holds: it paints it)
            panel.setUpdatesEnabled(False)
            self._held = panel
        draw()
        if self._turn == 0:
            self._show_diverged()

    def _follow_x(self, moved: LogCurvePlot) -> None:
        """The user zoomed or panned `moved`: the other curve plots show the same steps."""
        low, high = moved.getViewBox().viewRange()[0]
        for plot in self._curve_plots().values():
            if plot is not moved:
                plot.show_steps(low, high)

    def _draw_curves(self) -> None:
        for plot in (self.loss_plot, self.diff_plot, self.drift_plot):
            plot.redraw()
        self._show_diverged()

    def _show_diverged(self) -> None:
        diverged_at = self.run_history.diverged_at
        if diverged_at is not None and not self.diverged_line.isVisible():
            self.diverged_line.setValue(diverged_at)
            self.diverged_line.setVisible(True)

    def _draw_pictures(self, now: bool, which: tuple[str, ...] = PICTURES) -> None:
        """The pictures `which` (the surface, the heatmaps) that changed and (unless `now`)
        were last drawn STATE_INTERVAL ago or more."""
        for name in which:
            if self._picture_due(name, now):
                self._draw_state(name, *self._state)

    def _picture_due(self, name: str, now: bool) -> bool:
        """Whether the picture `name` is behind the state and (unless `now`) was last drawn
        STATE_INTERVAL ago or more."""
        return self._state is not None and name in self._undrawn and (
            now or time.monotonic() - self._drawn_at[name] >= STATE_INTERVAL)

    def _draw_state(self, name: str, spec: NetworkSpec, params: Params, data: Dataset,
                    sample_x: int | np.ndarray | None) -> None:
        if spec != self._drawn_spec:
            self._configure(spec)
        if name == "surface":
            self.surface.show_state(spec, params, data)
        else:
            index = sample_index(data, sample_x)
            x, y = data.sample(index)
            self.heatmaps.show_state(spec, params, x, y, f"sample {index + 1}")
        self._undrawn.discard(name)
        self._drawn_at[name] = time.monotonic()

    def ask_save_path(self, title: str, file_filter: str, name: str,
                      suffix: str) -> str | None:
        """The file to export to, from the user (tests replace this)."""
        return ask_save_file(self, title, file_filter, name, suffix)

    def export_png(self, panel: QWidget, path: str) -> None:
        """Write `panel` (a curve plot, the surface's view or the heatmaps) as a PNG image."""
        target = panel.plot_item if isinstance(panel, LogCurvePlot) else panel.scene()
        image = pyqtgraph.exporters.ImageExporter(target).export(toBytes=True)
        data = QByteArray()
        buffer = QBuffer(data)
        buffer.open(QIODevice.OpenModeFlag.WriteOnly)
        image.save(buffer, "PNG")
        buffer.close()
        atomic_write_bytes(path, bytes(data.data()))

    def export_csv(self, plot: LogCurvePlot, path: str) -> None:
        """Write the values of `plot`'s series as CSV, two columns (step, value) a series."""
        atomic_write_text(path, plot.csv_text())

    def _add_export_actions(self, name: str, panel: QWidget, csv: bool) -> None:
        """Export entries in the panel's right-click menu, beside pyqtgraph's own Export...
        (whose CSV writes 10 decimals, so values below 1e-10 come out as 0)."""
        kinds = [("png", "Export PNG...")] + ([("csv", "Export CSV...")] if csv else [])
        for kind, text in kinds:
            action = QAction(text, panel)
            action.triggered.connect(functools.partial(self._export_chosen, name, panel, kind))
            if isinstance(panel, LayerHeatmaps):
                panel.addAction(action)       # it shows its actions as its menu
            else:
                panel.scene().contextMenu.append(action)
            self.export_actions[(name, kind)] = action

    def _export_chosen(self, name: str, panel: QWidget, kind: str, _checked: bool = False) -> None:
        stem = "training_" + name.replace(" ", "_")
        if kind == "png":
            path = self.ask_save_path(f"Export the {name} plot as PNG", PNG_FILTER,
                                      stem + ".png", ".png")
        else:
            path = self.ask_save_path(f"Export the {name} plot as CSV", CSV_FILTER,
                                      stem + ".csv", ".csv")
        if not path:
            return
        try:
            if kind == "png":
                self.export_png(panel, path)
            else:
                self.export_csv(panel, path)
        except OSError as e:
            QMessageBox.warning(self, "Export", f"Cannot write {path}: {e.strerror or e}")


def sample_index(data: Dataset, sample_x: int | np.ndarray | None) -> int:
    """The row of `data` that `sample_x` names: a row index, the inputs of a row, or None for
    the first row."""
    if sample_x is None:
        return 0
    if isinstance(sample_x, int | np.integer):
        return int(sample_x)
    x = np.asarray(sample_x, dtype=data.x.dtype)
    rows = np.flatnonzero(np.all(data.x == x, axis=1))
    if not rows.size:
        raise ValueError(f"sample inputs {x.tolist()} are not a row of the data")
    return int(rows[0])

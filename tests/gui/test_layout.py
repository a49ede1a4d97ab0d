"""The window's default layout at a 1366x768 laptop's size and a 1920x1080 screen's, with the
Training dock raised and the Live plots shown: every control a student may press or type into
lies whole inside its dock's visible area, and no dock scrolls sideways."""

import pytest
from PySide6.QtCore import QRect
from PySide6.QtWidgets import (
    QAbstractButton,
    QAbstractScrollArea,
    QAbstractSpinBox,
    QComboBox,
    QDockWidget,
    QLineEdit,
    QSlider,
    QWidget,
)

from gui.main_window import MainWindow
from gui.session_model import SessionModel

CONTROLS = (QAbstractButton, QLineEdit, QAbstractSpinBox, QComboBox, QSlider)
SIZES = [(1366, 768), (1920, 1080)]


@pytest.fixture(params=SIZES, ids=[f"{w}x{h}" for w, h in SIZES])
def window(request, qtbot) -> MainWindow:
    """The window at the size, laid out as a user sees it once a run started."""
    w = MainWindow(SessionModel())
    qtbot.addWidget(w)
    w.resize(*request.param)
    w.show()
    qtbot.waitExposed(w)
    w.training.panel_dock.raise_()
    w.training.show_plots()
    qtbot.waitUntil(lambda: w.training.plots_dock.isVisible()
                    and w.training.panel.isVisible())
    w.layout().activate()
    assert (w.width(), w.height()) == request.param     # its minimum is not above the screen
    return w


def docks(window: MainWindow) -> list[QDockWidget]:
    return [d for d in window.findChildren(QDockWidget) if d.isVisible()]


def in_dock(widget: QWidget, dock: QDockWidget) -> QRect:
    """`widget`'s rectangle in `dock`'s coordinates."""
    return QRect(widget.mapTo(dock, widget.rect().topLeft()), widget.size())


def clipped(dock: QDockWidget) -> list[str]:
    """The visible controls of `dock` that some widget around them (a scroll area's viewport,
    a group box, the dock itself) cuts: a part of them is not on screen."""
    cut = []
    for control in dock.findChildren(QWidget):
        if not isinstance(control, CONTROLS) or not control.isVisible():
            continue
        if control.parent() is not None and isinstance(control.parent(), CONTROLS):
            continue        # a spin box's own line edit, a combo box's button
        rect = in_dock(control, dock)
        around = control.parentWidget()
        while around is not None and around is not dock.parentWidget():
            if not in_dock(around, dock).contains(rect):
                name = control.text() if hasattr(control, "text") else ""
                cut.append(f"{type(control).__name__} {name!r} {control.objectName()!r} "
                           f"at {rect.getRect()} is cut by {type(around).__name__} "
                           f"{in_dock(around, dock).getRect()}")
                break
            around = around.parentWidget()
    return cut


def sideways(dock: QDockWidget) -> list[str]:
    """The scroll areas of `dock` that show a horizontal scroll bar."""
    return [f"{type(area).__name__} {area.objectName()!r}"
            for area in [dock.widget(), *dock.findChildren(QAbstractScrollArea)]
            if isinstance(area, QAbstractScrollArea) and area.isVisible()
            and area.horizontalScrollBar().isVisible()]


def test_the_training_and_plots_docks_are_shown(window):
    shown = {d.objectName() for d in docks(window)}
    assert {"training_dock", "plots_dock"} <= shown


def test_every_control_of_every_dock_is_whole_and_no_dock_scrolls_sideways(window):
    controls = 0
    for dock in docks(window):
        controls += sum(isinstance(c, CONTROLS) and c.isVisible()
                        for c in dock.findChildren(QWidget))
        assert clipped(dock) == [], dock.windowTitle()
        assert sideways(dock) == [], dock.windowTitle()
    assert controls >= 10      # the training panel's buttons and fields were looked at


def test_a_control_pushed_out_of_its_dock_is_caught(window, qtbot):
    """The checks above can fail: a button wider than the training dock is cut (or scrolls)."""
    start = window.training.panel.buttons["Start"]
    start.setMinimumWidth(window.training.panel_dock.width() + 200)
    window.layout().activate()
    qtbot.waitUntil(lambda: start.width() > window.training.panel_dock.width())
    dock = window.training.panel_dock
    assert clipped(dock) or sideways(dock)

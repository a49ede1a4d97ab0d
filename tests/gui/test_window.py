"""The explorer window as a person uses it: buttons and shortcuts move through a sample and
between samples, every panel follows, the network can change, the layout is kept between runs,
and `app.py --screenshot` saves a picture without a screen."""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import QSettings, Qt, QTimer
from PySide6.QtGui import QImage
from PySide6.QtWidgets import QApplication

import gui.main_window as main_window
from engine.net.spec import NetworkSpec, preset
from gui.launch import build_window, run_window
from gui.main_window import MainWindow
from gui.session_model import SessionModel
from gui.settings import last_network, open_settings
from gui.stepping.array_table import as_matrix

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def window(qtbot):
    w = MainWindow(SessionModel())
    qtbot.addWidget(w)
    w.show()
    qtbot.waitExposed(w)
    w.activateWindow()
    qtbot.waitUntil(w.isActiveWindow)
    return w


def check_panels(w: MainWindow) -> None:
    """Every panel shows the session's current stage."""
    session = w.model.session
    pair = session.stage
    assert w.stage_list.current_row() == session.stage_index
    np.testing.assert_array_equal(w.stage_card.values_of("scratch"), as_matrix(pair.scratch.value))
    np.testing.assert_array_equal(w.stage_card.values_of("torch"), as_matrix(pair.torch.value))
    assert w.network_view.highlighted_layers() == tuple(sorted(pair.scratch.info.layers))
    assert w.status.stage.text().startswith(f"Stage {session.stage_index + 1} of ")
    assert w.status.sample.text() == f"Sample {session.sample_index + 1} of {session.n_samples}"


def button(w: MainWindow, name: str):
    return w.toolbar.widgetForAction(w.run_actions.actions[name])


def test_the_buttons_walk_through_a_whole_sample_and_back(qtbot, window):
    session = window.model.session
    step = button(window, "step")
    assert not button(window, "back").isEnabled()
    keys = [session.stage.key]
    while step.isEnabled():
        qtbot.mouseClick(step, Qt.MouseButton.LeftButton)
        keys.append(session.stage.key)
        check_panels(window)
    assert keys == [p.key for p in session.pairs]
    assert keys[-1] == "dL/db1" and not button(window, "run").isEnabled()
    qtbot.mouseClick(button(window, "back"), Qt.MouseButton.LeftButton)
    assert session.stage.key == "dL/dw1"
    check_panels(window)
    qtbot.mouseClick(button(window, "next"), Qt.MouseButton.LeftButton)
    assert session.sample_index == 1 and session.stage.key == "dL/dw1"
    assert window.sample_panel.index.value() == 2
    check_panels(window)
    qtbot.mouseClick(button(window, "reset"), Qt.MouseButton.LeftButton)
    assert (session.sample_index, session.stage_index) == (0, 0)
    check_panels(window)


def test_the_shortcuts_work_like_a_debugger(qtbot, window):
    session = window.model.session
    for _ in range(3):
        qtbot.keyClick(window, Qt.Key.Key_F10)
    assert session.stage_index == 3
    qtbot.keyClick(window, Qt.Key.Key_F10, Qt.KeyboardModifier.ShiftModifier)
    assert session.stage_index == 2
    check_panels(window)
    qtbot.keyClick(window, Qt.Key.Key_F5)
    assert session.stage_index == len(session.pairs) - 1
    check_panels(window)
    qtbot.keyClick(window, Qt.Key.Key_PageDown)
    qtbot.keyClick(window, Qt.Key.Key_PageDown)
    assert session.sample_index == 2
    qtbot.keyClick(window, Qt.Key.Key_PageUp)
    assert session.sample_index == 1
    check_panels(window)
    # with the stage list focused the arrows move through stages, the shortcuts still work
    window.stage_list.setFocus()
    qtbot.keyClick(window.stage_list, Qt.Key.Key_Up)
    assert session.stage_index == len(session.pairs) - 2
    qtbot.keyClick(window.stage_list, Qt.Key.Key_PageDown)
    assert session.sample_index == 2


def test_every_control_has_an_icon_and_a_tooltip_with_its_shortcut(window):
    for name, action in window.run_actions.actions.items():
        assert not action.icon().isNull(), name
        shortcut = action.shortcut().toString()
        assert shortcut and f"({shortcut})" in action.toolTip(), name
    menus = [a.text() for a in window.menuBar().actions()]
    assert menus[-5:] == ["&Run", "&Network", "&View", "&Tools", "&Help"]
    if main_window.FileActions is not None:
        assert menus[0] == "&File"


@pytest.mark.parametrize("spec", [
    NetworkSpec((3, 8, 8, 8, 1), ("relu", "relu", "relu", "identity")),
    preset("2-2-1-tanh-bce"),
], ids=["relu-deep", "bce"])
def test_a_new_network_is_stepped_through_like_the_first(qtbot, window, spec):
    session = window.model.session
    session.set_network(spec)
    assert spec.describe() in window.windowTitle()
    assert window.stage_list.topLevelItemCount() == len(session.pairs)
    assert len(window.network_view.shown(1)) == spec.sizes[1]
    while session.stage_index < len(session.pairs) - 1:
        qtbot.keyClick(window, Qt.Key.Key_F10)
        check_panels(window)
    assert session.stage.key == "dL/db1"
    go = next(i for i, p in enumerate(session.pairs) if p.key == "dL/dw1")
    session.go_to_stage(go)
    assert window.network_view.highlighted_layers() == (0, 1)


def test_the_network_action_opens_the_dialog_and_applies_its_choice(qtbot, window,
                                                                     monkeypatch):
    asked = []

    def choose(parent, model, confirm=None):
        asked.append((parent, model))
        model.session.set_network(preset("2-2-1-tanh-bce"))
        return True

    monkeypatch.setattr(main_window, "choose_network", choose)
    window.network_action.trigger()
    assert asked == [(window, window.model)]
    assert "bce" in window.windowTitle()
    assert window.network_view.shown(1) == [0, 1]


def test_the_layout_and_the_network_are_kept_between_runs(qtbot, tmp_path):
    settings = QSettings(str(tmp_path / "window.ini"), QSettings.Format.IniFormat)
    first = build_window(settings)
    qtbot.addWidget(first)
    first.show()
    qtbot.waitExposed(first)
    first.resize(760, 700)  # inside the offscreen screen: restoreGeometry keeps it there
    first.main_splitter.setSizes([200, 400])
    bce = preset("2-2-1-tanh-bce")
    first.model.session.set_network(bce)
    sizes = first.main_splitter.sizes()
    first.close()
    assert last_network(settings) == bce

    second = build_window(settings)
    qtbot.addWidget(second)
    second.show()
    qtbot.waitExposed(second)
    assert second.model.session.spec == bce
    assert (second.width(), second.height()) == (760, 700)
    assert second.main_splitter.sizes() == sizes


def test_a_stored_network_that_does_not_read_back_is_ignored(tmp_path):
    settings = QSettings(str(tmp_path / "window.ini"), QSettings.Format.IniFormat)
    settings.setValue("session/network", '{"sizes": [2, 0, 1]}')
    assert last_network(settings) is None


def test_run_window_shows_the_window_and_returns_when_it_closes(qtbot):
    shown = []

    def close_it():
        windows = [w for w in QApplication.topLevelWidgets()
                   if isinstance(w, MainWindow) and w.isVisible()]
        shown.extend(windows)
        for w in windows:
            w.close()

    QTimer.singleShot(0, close_it)
    assert run_window() == 0
    assert len(shown) == 1
    assert last_network(open_settings()) == shown[0].model.session.spec


def test_screenshot_saves_the_whole_window_without_a_screen(tmp_path):
    out = tmp_path / "window.png"
    env = {**os.environ, "XDG_CONFIG_HOME": str(tmp_path / "config")}
    env.pop("DISPLAY", None)
    env.pop("QT_QPA_PLATFORM", None)  # the app must choose offscreen by itself
    result = subprocess.run([sys.executable, "app.py", "--screenshot", str(out), "--step", "10"],
                            cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""  # no Qt warnings
    image = QImage(str(out))
    assert image.width() >= 1280 and image.height() >= 800
    assert "stage dL/db3" in result.stdout  # 10 steps from z1
    assert not (tmp_path / "config").exists()  # a screenshot stores no settings


def test_a_screenshot_at_a_size_after_training_shows_the_run(tmp_path):
    out = tmp_path / "trained.png"
    env = {**os.environ, "XDG_CONFIG_HOME": str(tmp_path / "config")}
    env.pop("DISPLAY", None)
    env.pop("QT_QPA_PLATFORM", None)
    result = subprocess.run([sys.executable, "app.py", "--screenshot", str(out), "--size",
                             "1366x768", "--train", "250", "--step", "3"],
                            cwd=ROOT, env=env, capture_output=True, text=True, timeout=180)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    image = QImage(str(out))
    assert (image.width(), image.height()) == (1366, 768)
    assert f"{out}: 1366x768, stage a2" in result.stdout
    # a panel grabbed while its updates were held came out black: 6% of a 1920x1080 shot
    # (text and lines in black are 0.1%)
    assert (pixels(image).sum(axis=2) == 0).mean() < 0.01
    refused = subprocess.run([sys.executable, "app.py", "--screenshot", str(out), "--size",
                              "big"], cwd=ROOT, env=env, capture_output=True, text=True,
                             timeout=60)
    assert refused.returncode == 2
    assert "'big' is not a window size such as 1366x768" in refused.stderr


def pixels(image: QImage) -> np.ndarray:
    """The image as (height, width, 3) RGB."""
    image = image.convertToFormat(QImage.Format.Format_RGB888)
    rows = np.frombuffer(image.constBits(), np.uint8).reshape(image.height(), -1)
    # a copy: the converted image's memory goes with it
    return rows[:, :image.width() * 3].reshape(image.height(), image.width(), 3).copy()


@pytest.mark.parametrize("dialog", ["compare", "network"])
def test_a_screenshot_of_a_dialog_is_the_dialog_as_it_opens_on_a_screen_of_the_size(
        tmp_path, dialog):
    """--dialog compare compares files the screenshot made from the session, torch's against
    the scratch engine's with a mistake: the dialog shows disagreeing rows (their pink)."""
    out = tmp_path / f"{dialog}.png"
    env = {**os.environ, "XDG_CONFIG_HOME": str(tmp_path / "config")}
    env.pop("DISPLAY", None)
    env.pop("QT_QPA_PLATFORM", None)
    result = subprocess.run([sys.executable, "app.py", "--screenshot", str(out), "--size",
                             "1366x768", "--dialog", dialog], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=180)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    image = QImage(str(out))
    assert f"{out}: {image.width()}x{image.height()}, dialog {dialog}" in result.stdout
    rgb = pixels(image)
    if dialog == "compare":
        assert (image.width(), image.height()) == (1280, 698)     # 1366x768 less its margin
        pink = np.all(rgb == (248, 215, 218), axis=2)
        assert pink.sum() > 5000        # rows of parameters and samples that disagree
    else:
        assert 300 <= image.width() < 1366 and 300 <= image.height() < 768
    assert len(np.unique(rgb.reshape(-1, 3), axis=0)) > 50      # drawn, not blank
    assert not (tmp_path / "config").exists()
    refused = subprocess.run([sys.executable, "app.py", "--screenshot", str(out), "--dialog",
                              "about"], cwd=ROOT, env=env, capture_output=True, text=True,
                             timeout=60)
    assert refused.returncode == 2 and "--dialog" in refused.stderr


def test_the_app_starts_its_training_process_once_torch_is_in_and_ends_it_on_close(qtbot):
    """The first Start finds the child up; closing the window ends it, never pressed."""
    from tests.helpers import gone
    seen = []

    def when_ready():
        window = next(w for w in QApplication.topLevelWidgets()
                      if isinstance(w, MainWindow) and w.isVisible())
        controller = window.training.panel.controller

        def child_up():
            if controller.client is None:
                return QTimer.singleShot(10, child_up)
            seen.append(controller.client.pid)
            window.close()

        if not window.model.session.torch_ready:
            window.model.torchReady.connect(child_up)
        else:
            child_up()

    QTimer.singleShot(0, when_ready)
    assert run_window() == 0
    assert len(seen) == 1 and gone(seen[0])


def test_a_screenshot_with_a_mistake_shows_it_and_a_wrong_name_is_refused(tmp_path):
    out = tmp_path / "mistake.png"
    env = {**os.environ, "XDG_CONFIG_HOME": str(tmp_path / "config")}
    env.pop("DISPLAY", None)
    env.pop("QT_QPA_PLATFORM", None)
    result = subprocess.run([sys.executable, "app.py", "--screenshot", str(out), "--size",
                             "1366x768", "--mistake", "sigmoid_derivative_of_activation",
                             "--step", "12"], cwd=ROOT, env=env, capture_output=True,
                            text=True, timeout=180)
    assert result.returncode == 0, result.stderr
    assert f"{out}: 1366x768, stage dL/dz2" in result.stdout
    badge = np.all(pixels(QImage(str(out))) == (0xb3, 0x26, 0x1e), axis=2)
    assert badge.sum() > 500        # the status bar's red mistake badge
    refused = subprocess.run([sys.executable, "app.py", "--screenshot", str(out),
                              "--mistake", "nonsense"], cwd=ROOT, env=env,
                             capture_output=True, text=True, timeout=60)
    assert refused.returncode == 2 and "unknown mistake 'nonsense'" in refused.stderr

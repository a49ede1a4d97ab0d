"""The status bar's hints and badges: where to go after the last stage, and the mistake the
scratch engine is made to make, visible for as long as it makes it."""

from PySide6.QtWidgets import QMenu

from engine.check.mistakes import MISTAKES
from engine.files.datasets import default_set
from engine.net.params import init_params
from engine.net.spec import DEFAULT_PRESET, preset
from engine.session import Session
from gui.main_window import MainWindow
from gui.session_model import SessionModel
from gui.status_bar import LAST_STAGE_HINT


def window_on(qtbot, n=3):
    spec = preset(DEFAULT_PRESET)
    model = SessionModel(Session(spec, init_params(spec, 1), default_set(spec, n, seed=1)))
    window = MainWindow(model)
    qtbot.addWidget(window)
    return window


def test_the_last_stage_hints_at_the_next_sample_but_the_last_sample_does_not(qtbot):
    window = window_on(qtbot)
    session, activity = window.model.session, window.status.activity
    assert LAST_STAGE_HINT not in activity.text()
    session.run_sample()
    assert activity.text().endswith("PgDn: next sample")
    session.go_to_stage(3)
    assert LAST_STAGE_HINT not in activity.text()
    session.go_to_sample(session.n_samples - 1)
    session.run_sample()
    assert LAST_STAGE_HINT not in activity.text()      # no next sample to go to


def test_an_injected_mistake_shows_a_badge_while_it_is_made(qtbot):
    window = window_on(qtbot)
    badge = window.status.mistake
    window.show()
    assert badge.isHidden()
    window.model.session.set_mistake("dropped_factor_2")
    assert badge.isVisible() and MISTAKES["dropped_factor_2"].title in badge.text()
    window.model.session.step()                       # it stays through the stepping
    assert badge.isVisible()
    window.model.session.set_mistake(None)
    assert badge.isHidden()


def test_the_keyboard_shortcuts_are_read_from_the_actions_themselves(qtbot):
    from PySide6.QtGui import QAction
    from PySide6.QtWidgets import QTableWidget
    window = window_on(qtbot)
    window.show_shortcuts()
    table = window._help.findChild(QTableWidget)
    rows = {table.item(r, 0).text(): table.item(r, 1).text() for r in range(table.rowCount())}
    assert rows["Run > Step"] == "F10" and rows["Run > Start or pause training"] == "Ctrl+T"
    assert rows["Network > Network and data"] == "Ctrl+N" and rows["Help > Quick tour"] == "F1"
    # every action of the menus with a shortcut is listed, and nothing without one
    keyed = [a for a in window.findChildren(QAction)
             if a.shortcut().toString() and a.text() and not a.menu()]
    assert len(rows) >= len({a.text() for a in keyed if a in window.menuBar().actions()
                             or any(a in m.actions() for m in window.findChildren(QMenu))})
    assert all(keys for keys in rows.values())
    # a shortcut changed is a shortcut listed
    next(a for a in window.findChildren(QAction) if a.text() == "&Quick tour").setShortcut("F2")
    window.show_shortcuts()
    table = window._help.findChild(QTableWidget)
    assert any(table.item(r, 1).text() == "F2" for r in range(table.rowCount()))


def test_the_quick_tour_says_what_to_press_first_and_what_the_colours_mean(qtbot):
    from PySide6.QtWidgets import QTextBrowser
    window = window_on(qtbot)
    window.show_tour()
    text = window._help.findChild(QTextBrowser).toPlainText()
    for words in ("F10", "PgDn", "Ctrl+T", "Ctrl+N", "✓ exact", "≈ drift", "✗ flagged",
                  "blue is negative"):
        assert words in text, words
    assert window._help.isVisible()

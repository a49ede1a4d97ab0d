"""A shown main window on a session, for the window tests."""

from engine.session import Session
from gui.main_window import MainWindow
from gui.session_model import SessionModel


def window_on(qtbot, session: Session | None = None) -> MainWindow:
    """The main window on `session` (a new default one when None), shown and exposed."""
    window = MainWindow(SessionModel(session or Session()))
    qtbot.addWidget(window)
    window.show()
    qtbot.waitExposed(window)
    return window

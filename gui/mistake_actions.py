"""Tools > Inject a mistake: the catalogue of classic backprop mistakes (engine/check/mistakes.py)
as exclusive checkable actions, with "No mistake (correct backprop)" first. Choosing one makes the
session's scratch engine make it; the stage list, the network and the stage card then show where its
pass departs from torch and what it computed instead.

A mistake this network cannot make is shown disabled, with the reason as its tooltip. The
actions follow the session: a new network re-enables what it can make, and one that drops the
chosen mistake says so in the status bar."""

from PySide6.QtCore import QObject, Slot
from PySide6.QtGui import QAction, QActionGroup
from PySide6.QtWidgets import QMainWindow, QMenu

from engine.check.mistakes import MISTAKES, Injection
from engine.net.stages import stage_plan
from gui.session_model import SessionModel
from gui.stepping.formula import plain_symbol

STATUS_MS = 10_000
NO_MISTAKE = ""  # the key of "No mistake" in `actions`


class MistakeActions(QObject):
    """The actions on `model`'s session, `actions[name]` ("" for none), and `menu()`."""

    def __init__(self, window: QMainWindow, model: SessionModel):
        super().__init__(window)
        self.window, self.model = window, model
        self.group = QActionGroup(self)
        self.group.setExclusive(True)
        self.actions: dict[str, QAction] = {}
        none = self._action(NO_MISTAKE, "&No mistake (correct backprop)")
        none.setToolTip("The scratch engine computes every stage right")
        for mistake in MISTAKES.values():
            self._action(mistake.name, mistake.title)
        self._shown: Injection | None = model.session.mistake
        model.networkChanged.connect(self._follow_session)
        model.mistakeChanged.connect(self._follow_session)
        self._follow_session()

    def _action(self, name: str, text: str) -> QAction:
        action = QAction(text, self.window)
        action.setCheckable(True)
        action.setActionGroup(self.group)
        action.triggered.connect(lambda _checked=False, name=name: self.choose(name))
        self.actions[name] = action
        return action

    def menu(self) -> QMenu:
        """Tools, holding Inject a mistake with the catalogue."""
        tools = QMenu("&Tools", self.window)
        inject_menu = tools.addMenu("&Inject a mistake")
        inject_menu.setToolTip("Make the scratch engine make a classic backprop mistake, and "
                               "see where its pass departs from torch")
        inject_menu.addAction(self.actions[NO_MISTAKE])
        inject_menu.addSeparator()
        for name in MISTAKES:
            inject_menu.addAction(self.actions[name])
        for menu in (tools, inject_menu):
            menu.setToolTipsVisible(True)
        return tools

    # choosing
    def choose(self, name: str) -> None:
        """Make the scratch engine make mistake `name` ("" or None: none)."""
        session = self.model.session
        session.set_mistake(name or None)
        self.window.statusBar().showMessage(self._where(session.mistake), STATUS_MS)

    def _where(self, injection: Injection | None) -> str:
        """A sentence for the status bar: what the scratch engine does now, and where to look."""
        if injection is None:
            return "No mistake: the scratch engine computes every stage right"
        symbol = plain_symbol(_symbols(injection)[injection.first_stage])
        title = injection.mistake.title
        if injection.mistake.needs_updates:
            return (f"{title}: the gradients stay right; train a few steps, and the scratch "
                    f"pass departs from torch at {symbol}")
        if injection.from_sample > 1:
            return (f"{title}: from sample {injection.from_sample} on, the scratch pass "
                    f"departs from torch at {symbol} (Next sample)")
        return f"{title}: the scratch pass departs from torch at {symbol}"

    # following the session
    @Slot()
    def _follow_session(self) -> None:
        session = self.model.session
        spec = session.spec
        for name, mistake in MISTAKES.items():
            action = self.actions[name]
            if mistake.layers(spec):
                action.setEnabled(True)
                action.setToolTip(mistake.description)
            else:
                action.setEnabled(False)
                action.setToolTip("Not in this network: "
                                  + mistake.unavailable.format(**spec.to_dict()))
            action.setStatusTip(action.toolTip())
        chosen = session.mistake.name if session.mistake is not None else NO_MISTAKE
        self.actions[chosen].setChecked(True)
        dropped = self._shown is not None and session.mistake is None
        if dropped and session.mistake_note:
            self.window.statusBar().showMessage(session.mistake_note, STATUS_MS)
        self._shown = session.mistake


def _symbols(injection: Injection) -> dict[str, str]:
    return {info.key: info.symbol for info in stage_plan(injection.spec)}

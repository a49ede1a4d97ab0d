"""The debugger-like controls: Step, Back, Run sample, Next and Previous sample, Reset. Each is
a QAction with an icon, a shortcut and a tooltip naming it; each is enabled only where it can
do something (no Step at the last stage, no Previous at the first sample)."""

from dataclasses import dataclass

from PySide6.QtCore import QObject, Qt
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QMenu, QToolBar, QWidget

from gui.icons import icon
from gui.session_model import SessionModel


@dataclass(frozen=True)
class _Control:
    name: str
    text: str
    shortcut: QKeySequence.StandardKey | Qt.Key | int
    tip: str
    method: str


_CONTROLS = (
    _Control("step", "&Step", Qt.Key.Key_F10, "Step to the next stage", "step"),
    _Control("back", "&Back", Qt.Modifier.SHIFT | Qt.Key.Key_F10,
             "Back to the previous stage", "back"),
    _Control("run", "&Run sample", Qt.Key.Key_F5,
             "Run this sample to the end of the backward pass", "run_sample"),
    _Control("next", "&Next sample", Qt.Key.Key_PageDown,
             "The next sample, at the same stage", "next_sample"),
    _Control("previous", "&Previous sample", Qt.Key.Key_PageUp,
             "The previous sample, at the same stage", "previous_sample"),
    _Control("reset", "R&eset", Qt.Modifier.CTRL | Qt.Key.Key_R,
             "Back to the first stage of the first sample", "reset"),
)


class RunActions(QObject):
    """The six controls for `model`'s session, as `actions[name]`, a menu and a toolbar."""

    def __init__(self, model: SessionModel, parent: QWidget):
        super().__init__(parent)
        self._model = model
        self.actions: dict[str, QAction] = {}
        for control in _CONTROLS:
            action = QAction(icon(control.name), control.text, parent)
            sequence = QKeySequence(control.shortcut)
            action.setShortcut(sequence)
            action.setShortcutContext(Qt.ShortcutContext.WindowShortcut)
            shortcut = sequence.toString(QKeySequence.SequenceFormat.NativeText)
            action.setToolTip(f"{control.tip} ({shortcut})")
            action.setStatusTip(control.tip)
            action.triggered.connect(
                lambda _checked=False, method=control.method: getattr(model.session, method)())
            parent.addAction(action)  # shortcuts work even when the toolbar is hidden
            self.actions[control.name] = action
        model.changed.connect(self._update_enabled)
        self._update_enabled()

    def menu(self, parent: QWidget) -> QMenu:
        menu = QMenu("&Run", parent)
        for name in ("step", "back", "run"):
            menu.addAction(self.actions[name])
        menu.addSeparator()
        for name in ("next", "previous"):
            menu.addAction(self.actions[name])
        menu.addSeparator()
        menu.addAction(self.actions["reset"])
        return menu

    def toolbar(self, parent: QWidget) -> QToolBar:
        bar = QToolBar("Run", parent)
        bar.setObjectName("run_toolbar")  # saveState needs a name
        bar.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        for name in ("back", "step", "run"):
            bar.addAction(self.actions[name])
        bar.addSeparator()
        for name in ("previous", "next"):
            bar.addAction(self.actions[name])
        bar.addSeparator()
        bar.addAction(self.actions["reset"])
        return bar

    def _update_enabled(self, _event: str = "") -> None:
        session = self._model.session
        first_stage = session.stage_index == 0
        last_stage = session.stage_index == len(session.pairs) - 1
        first_sample = session.sample_index == 0
        self.actions["step"].setEnabled(not last_stage)
        self.actions["run"].setEnabled(not last_stage)
        self.actions["back"].setEnabled(not first_stage)
        self.actions["next"].setEnabled(session.sample_index < session.n_samples - 1)
        self.actions["previous"].setEnabled(not first_sample)
        self.actions["reset"].setEnabled(not (first_stage and first_sample))

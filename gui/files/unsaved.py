"""Nothing lost by a click: before the window closes, another network replaces this one or a
model is opened, the user is asked what to do with a network or parameters changed since they
were last saved or opened, and with a training run in progress: Save, Discard or Cancel.

The question is the module function `ask`, which tests replace."""

from collections.abc import Callable
from dataclasses import dataclass

from PySide6.QtCore import QEventLoop, QObject, QTimer, Slot
from PySide6.QtWidgets import QMessageBox, QWidget

from gui.session_model import SessionModel
from gui.training.panel import TrainingPanel

SAVE, DISCARD, CANCEL = "save", "discard", "cancel"
SETTLE_MS = 5000   # how long a run may take to pause before the session is saved anyway


@dataclass(frozen=True)
class Occasion:
    """What is about to replace the session: the question's title and its sentence."""

    title: str
    question: str


CLOSING = Occasion("Close Backprop Explorer", "Save the network before closing?")
NEW_NETWORK = Occasion("Network and data", "Save the network before replacing it?")
OPENING = Occasion("Open model", "Save the network before opening the model?")


def ask(parent: QWidget, title: str, question: str, detail: str, can_save: bool) -> str:
    """SAVE, DISCARD or CANCEL, from a message box (Escape cancels)."""
    Button = QMessageBox.StandardButton
    box = QMessageBox(QMessageBox.Icon.Question, title, question, parent=parent)
    box.setInformativeText(detail)
    box.setStandardButtons((Button.Save if can_save else Button.NoButton)
                           | Button.Discard | Button.Cancel)
    if can_save:
        box.button(Button.Save).setText("&Save…")
    box.button(Button.Discard).setText("&Discard")
    box.setDefaultButton(Button.Save if can_save else Button.Cancel)
    box.setEscapeButton(Button.Cancel)
    answer = box.exec()
    box.deleteLater()
    return {Button.Save: SAVE, Button.Discard: DISCARD}.get(Button(answer), CANCEL)


class UnsavedGuard(QObject):
    """Tracks whether `model`'s network or parameters changed since they were last saved or
    opened (`mark_saved`), and asks before they or `panel`'s running training are discarded.
    `save` saves the model (asking where) and says whether it did; None when it cannot."""

    def __init__(self, parent: QWidget, model: SessionModel, panel: TrainingPanel,
                 save: Callable[[], bool] | None):
        super().__init__(parent)
        self._parent = parent
        self.panel = panel
        self.save = save
        self.dirty = False
        model.networkChanged.connect(self._on_changed)

    @Slot()
    def _on_changed(self) -> None:
        self.dirty = True

    @Slot()
    def mark_saved(self, *_) -> None:
        """The session is as a file holds it: nothing to ask about until it changes."""
        self.dirty = False

    def confirm(self, occasion: Occasion) -> bool:
        """True when the session may be replaced: nothing would be lost, or the user saved it
        or chose to discard it. A running training is paused first unless the window is
        closing (which stops it anyway)."""
        controller = self.panel.controller
        if not (self.dirty or controller.running):
            return True
        details = []
        if self.dirty:
            details.append("The network or its parameters changed since they were last saved "
                           "or opened.")
        if controller.running:
            training = self.panel.training
            details.append(f"A training run is in progress (step {training.step:,} of "
                           f"{training.total:,}); it stops here.")
        answer = ask(self._parent, occasion.title, occasion.question, " ".join(details),
                     self.save is not None)
        if answer == CANCEL:
            return False
        if answer == SAVE or occasion is not CLOSING:
            self._settle()
        return answer == DISCARD or self.save()

    def _settle(self) -> None:
        """Pause a running training and wait until its parameters are in the session."""
        controller = self.panel.controller
        if not controller.running:
            return
        loop = QEventLoop()
        ends = (controller.stopped, controller.failed, controller.refused, controller.lost)
        for signal in ends:
            signal.connect(loop.quit)
        timer = QTimer(loop)
        timer.setSingleShot(True)
        timer.timeout.connect(loop.quit)
        timer.start(SETTLE_MS)
        controller.pause()
        loop.exec()
        for signal in ends:
            signal.disconnect(loop.quit)

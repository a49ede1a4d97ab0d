"""The Qt adapter of the session: the same object, its events as signals. Panels connect to
these signals and read every number from `session`; they never compute one.

A session made with torch_later gets torch's side of its stages from `load_torch()`: torch is
imported on a thread of its own while the window paints and answers, and the session is told on
the GUI thread once it is in."""

import logging
import threading
from typing import ClassVar

from PySide6.QtCore import QObject, Signal, Slot

from engine.session import (
    DATA,
    MISTAKE,
    NETWORK,
    NO_TORCH,
    SAMPLE,
    STAGE,
    TORCH,
    YOURS,
    Session,
    import_reference,
)

log = logging.getLogger(__name__)


class SessionModel(QObject):
    """Wraps a Qt-free Session and re-emits its events. A network change also means new data,
    sample and stage; a data change a new sample and stage; another mistake of the scratch
    engine new stages of the same sample (as a sample change), and so do torch's arrival and the
    user's own code taking the scratch engine's place (with new values or none); a sample change
    a new stage: listeners connect to the narrowest signal that covers what they show, and
    `changed` fires after any of them. torch that cannot be imported is also a new
    look of the same sample's stages, and `torchFailed` carries why."""

    networkChanged = Signal()
    mistakeChanged = Signal()
    torchReady = Signal()
    yoursChanged = Signal()
    dataChanged = Signal()
    sampleChanged = Signal()
    stageChanged = Signal()
    changed = Signal(str)
    torchFailed = Signal(str)
    _imported = Signal(str)  # from the import's thread: "" when torch is in, else the error

    _SIGNALS: ClassVar[dict[str, tuple[str, ...]]] = {
        NETWORK: ("networkChanged", "dataChanged", "sampleChanged", "stageChanged"),
        DATA: ("dataChanged", "sampleChanged", "stageChanged"),
        SAMPLE: ("sampleChanged", "stageChanged"),
        STAGE: ("stageChanged",),
        MISTAKE: ("mistakeChanged", "sampleChanged", "stageChanged"),
        TORCH: ("torchReady", "sampleChanged", "stageChanged"),
        NO_TORCH: ("sampleChanged", "stageChanged"),
        YOURS: ("yoursChanged", "sampleChanged", "stageChanged"),
    }

    def __init__(self, session: Session | None = None, parent: QObject | None = None):
        super().__init__(parent)
        self.session = session or Session()
        self.session.subscribe(self._relay)
        self._imported.connect(self._on_imported)
        self._loader: threading.Thread | None = None

    def _relay(self, event: str) -> None:
        for name in self._SIGNALS[event]:
            getattr(self, name).emit()
        self.changed.emit(event)

    def load_torch(self) -> None:
        """Import torch on a thread of its own and give the session its torch side when it is
        in (torchReady), or say why not (torchFailed). Nothing to do when the session has it."""
        if self.session.torch_ready or self._loader is not None:
            return
        # not a daemon: an interpreter that exits mid-import waits for it rather than tearing
        # torch's half-made modules down under it
        self._loader = threading.Thread(target=self._import, name="torch import")
        self._loader.start()

    def wait_for_torch(self) -> None:
        """Wait for torch's import to end, if it runs (before the window goes)."""
        if self._loader is not None:
            self._loader.join()

    def _import(self) -> None:
        try:
            import_reference()
        except Exception as e:  # a broken torch install: a message, not a crash
            log.exception("torch could not be imported")
            self._imported.emit(f"torch could not be loaded ({type(e).__name__}: {e})")
        else:
            self._imported.emit("")

    @Slot(str)
    def _on_imported(self, error: str) -> None:
        if error:
            self.session.torch_failed(error)
            self.torchFailed.emit(error)
        else:
            self.session.torch_loaded()

"""The Qt adapter of the session: the same object, its events as signals. Panels connect to
these signals and read every number from `session`; they never compute one."""

from typing import ClassVar

from PySide6.QtCore import QObject, Signal

from engine.session import DATA, MISTAKE, NETWORK, SAMPLE, STAGE, Session


class SessionModel(QObject):
    """Wraps a Qt-free Session and re-emits its events. A network change also means new data,
    sample and stage; a data change a new sample and stage; another mistake of the scratch
    engine new stages of the same sample (as a sample change); a sample change a new stage:
    listeners connect to the narrowest signal that covers what they show, and `changed` fires
    after any of them."""

    networkChanged = Signal()
    mistakeChanged = Signal()
    dataChanged = Signal()
    sampleChanged = Signal()
    stageChanged = Signal()
    changed = Signal(str)

    _SIGNALS: ClassVar[dict[str, tuple[str, ...]]] = {
        NETWORK: ("networkChanged", "dataChanged", "sampleChanged", "stageChanged"),
        DATA: ("dataChanged", "sampleChanged", "stageChanged"),
        SAMPLE: ("sampleChanged", "stageChanged"),
        STAGE: ("stageChanged",),
        MISTAKE: ("mistakeChanged", "sampleChanged", "stageChanged"),
    }

    def __init__(self, session: Session | None = None, parent: QObject | None = None):
        super().__init__(parent)
        self.session = session or Session()
        self.session.subscribe(self._relay)

    def _relay(self, event: str) -> None:
        for name in self._SIGNALS[event]:
            getattr(self, name).emit()
        self.changed.emit(event)

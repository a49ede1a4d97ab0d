"""How a stage looks while torch's side of it is still loading (the first second or so after
the window opens): grey, with "torch loading…" where torch's numbers and the grade will be; and
"torch unavailable" there, with the reason in its tooltip, when torch could not be imported."""

from dataclasses import dataclass

from PySide6.QtCore import Qt
from PySide6.QtGui import QIcon, QPixmap

from engine.session import Session
from gui.colors import MUTED, MUTED_BACKGROUND, GradeLook

TORCH_LOADING, TORCH_UNAVAILABLE = "torch loading…", "torch unavailable"


@dataclass(frozen=True)
class TorchMark:
    """What stands where torch's side of a stage is missing: a text, a tooltip, a look."""

    text: str
    tip: str
    look: GradeLook


LOADING = TorchMark(TORCH_LOADING, "torch is loading: its value, the difference and the grade "
                    "follow in a moment", GradeLook("…", "loading", MUTED, MUTED_BACKGROUND))


def torch_mark(session: Session) -> TorchMark:
    """The mark for `session`'s pending stages: loading, or unavailable and why."""
    if not session.torch_error:
        return LOADING
    return TorchMark(TORCH_UNAVAILABLE, session.torch_error,
                     GradeLook("…", "no torch", MUTED, MUTED_BACKGROUND))


def look_style(look: GradeLook) -> str:
    """A label's style sheet in `look`'s colours."""
    return f"color: {look.color.name()}; background: {look.background.name()}"


def blank_icon() -> QIcon:
    """A transparent icon the size of a grade's: a row keeps its height when the grade comes."""
    pixmap = QPixmap(16, 16)
    pixmap.fill(Qt.GlobalColor.transparent)
    return QIcon(pixmap)

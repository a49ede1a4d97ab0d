"""How a stage looks while torch's side of it is still loading (the first second or so after
the window opens): grey, with "torch loading…" where torch's numbers and the grade will be."""

from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QIcon, QPixmap

from gui.colors import GradeLook

TORCH_LOADING = "torch loading…"
LOADING_TIP = "torch is loading: its value, the difference and the grade follow in a moment"
PENDING_LOOK = GradeLook("…", "loading", QColor("#546e7a"), QColor("#eceff1"))


def look_style(look: GradeLook) -> str:
    """A label's style sheet in `look`'s colours."""
    return f"color: {look.color.name()}; background: {look.background.name()}"


def blank_icon() -> QIcon:
    """A transparent icon the size of a grade's: a row keeps its height when the grade comes."""
    pixmap = QPixmap(16, 16)
    pixmap.fill(Qt.GlobalColor.transparent)
    return QIcon(pixmap)

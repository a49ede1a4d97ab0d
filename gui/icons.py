"""Icons of the toolbar and menus, read from resources/icons with importlib.resources."""

from importlib.resources import files

from PySide6.QtCore import QByteArray, QSize, Qt
from PySide6.QtGui import QIcon, QIconEngine, QImage, QPainter, QPixmap
from PySide6.QtSvg import QSvgRenderer

NAMES = ("step", "back", "run", "next", "previous", "reset", "open", "save", "export",
         "compare", "network", "code")
_CACHE: dict[str, QIcon] = {}


class _SvgEngine(QIconEngine):
    """Draws the SVG at whatever size is asked, so icons stay sharp at 16, 24 or 48 px; the
    SVG comes as bytes, which works whether resources/ is a folder or inside a zip."""

    def __init__(self, data: bytes):
        super().__init__()
        self._data = data
        self._renderer = QSvgRenderer(QByteArray(data))

    def paint(self, painter: QPainter, rect, mode, state) -> None:
        if mode == QIcon.Mode.Disabled:
            painter.setOpacity(0.35)
        self._renderer.render(painter, rect)

    def pixmap(self, size: QSize, mode, state) -> QPixmap:
        image = QImage(size, QImage.Format.Format_ARGB32_Premultiplied)
        image.fill(Qt.GlobalColor.transparent)
        painter = QPainter(image)
        self.paint(painter, image.rect(), mode, state)
        painter.end()
        return QPixmap.fromImage(image)

    def clone(self) -> QIconEngine:
        return _SvgEngine(self._data)


def icon(name: str) -> QIcon:
    """The icon resources/icons/<name>.svg; an unknown name lists the valid ones."""
    if name not in NAMES:
        raise KeyError(f"unknown icon {name!r}; valid: {', '.join(NAMES)}")
    if name not in _CACHE:
        data = (files("resources") / "icons" / f"{name}.svg").read_bytes()
        _CACHE[name] = QIcon(_SvgEngine(data))
    return _CACHE[name]

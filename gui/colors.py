"""Colours of the window: a diverging scale for values (blue below zero, white at zero, red
above, symmetric around zero), the sign colours of weights, and the look of each agreement
grade. A grade is never shown by colour alone: each has a glyph and a word too."""

from dataclasses import dataclass

import numpy as np
from PySide6.QtCore import QRectF, Qt
from PySide6.QtGui import QColor, QIcon, QLinearGradient, QPainter, QPen, QPixmap

from engine.check.compare import ACCEPTABLE, FLAGGED, GOOD
from engine.check.rounding import DRIFT, EXACT
from engine.session import UNCHECKED
from gui.numbers import short

# ColorBrewer RdBu, reversed so that positive is red: readable by most colour-blind people
_STOPS = np.array([-1.0, -0.5, 0.0, 0.5, 1.0])
_RGB = np.array([[33, 102, 172], [146, 197, 222], [247, 247, 247], [244, 165, 130],
                 [178, 24, 43]], dtype=float)
NAN_COLOR = QColor("#9e9e9e")
POSITIVE = QColor(214, 96, 77)
NEGATIVE = QColor(67, 147, 195)
HIGHLIGHT = QColor("#e08a00")
HIGHLIGHT_BACKGROUND = QColor(255, 236, 179, 150)
NEUTRAL_FILL = QColor("#ffffff")
CANVAS = QColor("#fbfbfb")      # behind the network drawing
WHITE = QColor("#ffffff")       # behind the plots
NEUTRAL_LINE = QColor("#9a9a9a")
# what has no grade (yet): torch still loading, a stage the user's code does not give
MUTED, MUTED_BACKGROUND = QColor("#546e7a"), QColor("#eceff1")
# the stages from the first where the scratch pass departs from torch, in every panel
DEPARTED = QColor("#c62828")
DEPARTED_BACKGROUND = QColor(253, 226, 223, 170)


def scale_of(values: np.ndarray) -> float:
    """The largest finite |value| (1 when there is none or it is 0): the end of the scale."""
    finite = np.abs(np.asarray(values, dtype=np.float64))
    finite = finite[np.isfinite(finite)]
    top = float(finite.max()) if finite.size else 0.0
    return top if top > 0 else 1.0


def diverging_rgb(values: np.ndarray, scale: float) -> np.ndarray:
    """RGB rows (…, 3) for `values` on the diverging scale that ends at ±`scale`; NaN rows
    are NaN."""
    t = np.clip(np.asarray(values, dtype=np.float64) / scale, -1.0, 1.0)
    return np.stack([np.interp(t, _STOPS, _RGB[:, i]) for i in range(3)], axis=-1)


def diverging(values: np.ndarray, scale: float) -> list[QColor]:
    """One QColor per element of `values` (flattened) on the diverging scale."""
    flat = np.ravel(np.asarray(values, dtype=np.float64))
    rgb = diverging_rgb(flat, scale)
    return [NAN_COLOR if np.isnan(v) else QColor(int(r), int(g), int(b))
            for v, (r, g, b) in zip(flat, rgb, strict=True)]


def flattened(color: QColor, background: QColor) -> QColor:
    """`color` as if laid on `background` at its own opacity, but opaque. Qt's raster engine
    strokes a translucent pen many times slower than an opaque one (100 antialiased weight
    edges: 23 ms against 1.3 ms), and a drawing repainted while a run goes must stay cheap."""
    mix = color.alphaF()
    return QColor(*(round(c * mix + b * (1 - mix)) for c, b in
                    zip(color.getRgb()[:3], background.getRgb()[:3], strict=True)))


def sign_color(value: float, alpha: int = 255) -> QColor:
    """Red for a positive weight, blue for a negative one."""
    color = QColor(POSITIVE if value >= 0 else NEGATIVE)
    color.setAlpha(alpha)
    return color


def text_on(color: QColor) -> QColor:
    """Black or white, whichever reads better on `color`."""
    return QColor("#000000") if color.lightnessF() > 0.55 else QColor("#ffffff")


@dataclass(frozen=True)
class GradeLook:
    """How a grade is shown: a glyph, a word, a strong colour and a pale background."""

    glyph: str
    word: str
    color: QColor
    background: QColor

    @property
    def label(self) -> str:
        return f"{self.glyph} {self.word}"


GRADES: dict[str, GradeLook] = {
    GOOD: GradeLook("✓", "good", QColor("#1b7a3a"), QColor("#e3f4e6")),
    ACCEPTABLE: GradeLook("≈", "acceptable", QColor("#9a6700"), QColor("#fff4cc")),
    FLAGGED: GradeLook("✗", "flagged", QColor("#b3261e"), QColor("#fde2df")),
    EXACT: GradeLook("✓", "exact", QColor("#1b7a3a"), QColor("#e3f4e6")),
    DRIFT: GradeLook("≈", "drift", QColor("#9a6700"), QColor("#fff4cc")),
    # a stage the user's own code does not give: nothing of theirs to grade
    UNCHECKED: GradeLook("–", "not checked", MUTED, MUTED_BACKGROUND),
}
NOT_IN_YOUR_CODE = ("your code gives no value for this stage: the scratch engine's is shown, "
                    "not checked (a stages() function in your file gives it)")


def grade_text(grade: str, dtype: str) -> str:
    """The grade with its glyph as a person reads it: "✓ exact to float32", ..."""
    look = GRADES[grade]
    if grade == EXACT:
        return f"{look.label} to {dtype}"
    if grade == DRIFT:
        return f"{look.label} from {dtype} rounding"
    return look.label


def grade_legend(dtype: str, yours: bool = False) -> str:
    """One line saying what the stage grades mean for a run in `dtype` (`yours`: with the
    user's own code in the scratch engine's place)."""
    return (f"✓ exact: within {dtype} rounding of a float64 pass · ≈ drift: parameters parted "
            "by rounding in training · ✗ flagged: beyond rounding"
            + (" · – not checked: not given by your code" if yours else ""))


_ICONS: dict[str, QIcon] = {}


def grade_icon(grade: str) -> QIcon:
    """A filled dot in the grade's colour with its glyph on it."""
    if grade not in _ICONS:
        look = GRADES[grade]
        pixmap = QPixmap(16, 16)
        pixmap.fill(Qt.GlobalColor.transparent)
        painter = QPainter(pixmap)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(look.color)
        painter.drawEllipse(1, 1, 14, 14)
        painter.setPen(QColor("#ffffff"))
        font = painter.font()
        font.setPixelSize(11)
        font.setBold(True)
        painter.setFont(font)
        painter.drawText(pixmap.rect(), Qt.AlignmentFlag.AlignCenter, look.glyph)
        painter.end()
        _ICONS[grade] = QIcon(pixmap)
    return _ICONS[grade]


def paint_scale(painter: QPainter, box: QRectF, title: str, scale: float) -> None:
    """A legend of the diverging scale in `box`: `title`, the colour bar, and its ends ±scale
    and middle 0 under it."""
    painter.setPen(QPen(QColor("#cfd8dc")))
    painter.setBrush(QColor(255, 255, 255, 225))
    painter.drawRoundedRect(box, 4, 4)
    bar = QRectF(box.left() + 8, box.top() + 22, box.width() - 16, 9)
    gradient = QLinearGradient(bar.topLeft(), bar.topRight())
    for stop, (r, g, b) in zip((_STOPS + 1) / 2, _RGB, strict=True):
        gradient.setColorAt(float(stop), QColor(int(r), int(g), int(b)))
    painter.setPen(QPen(QColor("#90a4ae")))
    painter.setBrush(gradient)
    painter.drawRect(bar)
    painter.setPen(QColor("#37474f"))
    painter.drawText(QRectF(bar.left(), box.top() + 3, bar.width(), 17),
                     Qt.AlignmentFlag.AlignLeft, title)
    below = QRectF(bar.left(), bar.bottom() + 1, bar.width(), 16)
    painter.drawText(below, Qt.AlignmentFlag.AlignLeft, f"−{short(scale)}")
    painter.drawText(below, Qt.AlignmentFlag.AlignHCenter, "0")
    painter.drawText(below, Qt.AlignmentFlag.AlignRight, f"+{short(scale)}")

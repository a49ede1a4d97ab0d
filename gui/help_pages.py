"""Help > Quick tour and Help > Keyboard shortcuts.

The tour is a short page: what to press first and what the colours mean. The shortcuts are
read from the window's own actions (its menus and the actions it holds), so the list is never
out of date with the keys that work."""

from PySide6.QtCore import Qt
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import (
    QAbstractItemView,
    QDialog,
    QDialogButtonBox,
    QHeaderView,
    QMainWindow,
    QMenu,
    QTableWidget,
    QTableWidgetItem,
    QTextBrowser,
    QVBoxLayout,
    QWidget,
)

from gui.colors import GRADES

TOUR = """
<h3>Backprop Explorer in five keys</h3>
<ol>
<li><b>F10</b> steps through the current sample one stage at a time: forward from z₁ to the
loss, then backward to every gradient. <b>Shift+F10</b> steps back. <b>F5</b> runs the sample
to the end.</li>
<li>The <b>stage card</b> shows the stage's formula with this sample's numbers, and three
tables: our scratch engine's values, torch autograd's, and how far apart they are.</li>
<li><b>PgDn</b> / <b>PgUp</b> go to the next / previous sample at the same stage.</li>
<li><b>Ctrl+T</b> starts SGD on both engines (Training dock); the live plots show the loss and
how far the two engines' gradients and parameters part. The time-travel slider goes back to
any step.</li>
<li><b>Ctrl+N</b> picks another network and its data; <b>File</b> exports and compares
gradient files; <b>Tools &gt; Inject a mistake</b> makes the scratch engine make a classic
backprop mistake, to see where it shows.</li>
</ol>
<h3>What the colours mean</h3>
<table cellpadding="3">
<tr><td style="color:{exact}">✓ exact</td><td>scratch and torch agree to the rounding of the
dtype (float32 or float64): a right pass</td></tr>
<tr><td style="color:{drift}">≈ drift</td><td>they part by more, but only because training
made their parameters part by rounding</td></tr>
<tr><td style="color:{flagged}">✗ flagged</td><td>they part beyond rounding: a mistake
starts at the first flagged stage</td></tr>
</table>
<p>In the network, <span style="color:#2166ac">blue</span> is negative and
<span style="color:#b2182b">red</span> positive, deeper for larger values; the colour bar gives
the scale.</p>
"""


def shortcut_rows(window: QMainWindow) -> list[tuple[str, str]]:
    """(what, keys) of every action of `window` with a shortcut: its menus' (as "Menu >
    Action"), then those it holds outside them; each once, in menu order."""
    rows: list[tuple[str, str]] = []
    seen: set[int] = set()

    def add(action: QAction, where: str) -> None:
        if id(action) in seen or action.isSeparator():
            return
        seen.add(id(action))
        menu = action.menu()
        text = action.text().replace("&", "").rstrip("…").rstrip(".")
        if isinstance(menu, QMenu):
            for child in menu.actions():
                add(child, f"{where}{text} > ")
            return
        keys = [k.toString(QKeySequence.SequenceFormat.NativeText) for k in action.shortcuts()]
        keys = [k for k in keys if k]
        if keys:
            rows.append((f"{where}{text}", ", ".join(keys)))

    for action in window.menuBar().actions():
        add(action, "")
    for action in window.actions():
        add(action, "")
    return rows


class HelpDialog(QDialog):
    """A small non-modal window beside the main one."""

    def __init__(self, title: str, body: QWidget, parent: QWidget | None = None):
        super().__init__(parent)
        self.setWindowTitle(title)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.close)
        layout = QVBoxLayout(self)
        layout.addWidget(body)
        layout.addWidget(buttons)
        self.resize(560, 520)


def tour_dialog(parent: QWidget) -> HelpDialog:
    page = QTextBrowser()
    page.setOpenExternalLinks(False)
    page.setHtml(TOUR.format(**{name: GRADES[name].color.name() for name in ("exact", "drift",
                                                                          "flagged")}))
    return HelpDialog("Quick tour", page, parent)


def shortcuts_dialog(window: QMainWindow) -> HelpDialog:
    rows = shortcut_rows(window)
    table = QTableWidget(len(rows), 2)
    table.setHorizontalHeaderLabels(["Action", "Keys"])
    for row, (what, keys) in enumerate(rows):
        for column, text in enumerate((what, keys)):
            item = QTableWidgetItem(text)
            item.setFlags(Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable)
            table.setItem(row, column, item)
    table.verticalHeader().hide()
    table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
    header = table.horizontalHeader()
    header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
    header.setSectionResizeMode(1, QHeaderView.ResizeMode.ResizeToContents)
    return HelpDialog("Keyboard shortcuts", table, window)

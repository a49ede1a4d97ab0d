"""The File menu: open and save a model, open data, export gradients, compare gradient files,
recent files, quit.

Every file a user picks may be wrong: its UserInputError message goes into a message box and
neither the window nor the session changes. File pickers are the `_ask_*` methods so tests can
replace them."""

import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from PySide6.QtCore import QObject, Qt, QUrl, Signal, Slot
from PySide6.QtGui import QAction, QDesktopServices, QIcon, QKeySequence
from PySide6.QtWidgets import QMainWindow, QMenu, QMessageBox, QStyle

from engine.budget import check_export
from engine.errors import UserInputError, printable
from engine.export import DATA_FILE, MODEL_FILE, SCRATCH_FILE, TORCH_FILE, Exported
from engine.files.datasets import load_csv
from engine.files.model_file import read_model, write_model
from gui.files.compare_dialog import CompareDialog
from gui.files.export_dialog import export_with_progress
from gui.files.file_dialogs import (
    DATA_FILTER,
    GRADIENT_FILTER,
    MODEL_FILTER,
    ask_folder,
    ask_open_file,
    ask_save_file,
)
from gui.session_model import SessionModel
from gui.settings import open_settings

RECENT_KEY = "files/recent"
MAX_RECENT = 8
MODEL, DATA, GRADIENTS = "model", "data", "gradients"
STATUS_MS = 8000
_KIND_TEXT = {MODEL: "Model", DATA: "Data", GRADIENTS: "Compare"}


@dataclass(frozen=True)
class RecentEntry:
    """A model file, a data file, or a pair of gradient files compared."""

    kind: str
    paths: tuple[str, ...]

    def exists(self) -> bool:
        return all(os.path.isfile(p) for p in self.paths)

    def text(self) -> str:
        names = " ↔ ".join(os.path.basename(p) for p in self.paths)
        return f"{_KIND_TEXT[self.kind]}: {names} — {os.path.dirname(self.paths[0])}"


class FileActions(QObject):
    """The File menu's actions on `window` for the session of `model`. Each action is a public
    attribute (for toolbars); `menu()` holds them all. `before_replacing()` is asked once a
    model file has been read and before it replaces the session (the window's question about
    unsaved changes); `modelSaved` and `modelOpened` carry the path of a model file written or
    read."""

    modelSaved = Signal(str)
    modelOpened = Signal(str)

    def __init__(self, window: QMainWindow, model: SessionModel):
        super().__init__(window)
        self.window = window
        self.model = model
        self.before_replacing: Callable[[], bool] = lambda: True
        self.compare_dialogs: list[CompareDialog] = []
        style = window.style()
        self.open_model_action = self._action(
            "&Open model…", QKeySequence("Ctrl+O"), self._on_open_model,
            "Open a model file (.json): a network and, optionally, its parameters",
            style.standardIcon(QStyle.StandardPixmap.SP_DialogOpenButton))
        self.save_model_action = self._action(
            "&Save model…", QKeySequence("Ctrl+S"), self._on_save_model,
            "Save the network and its parameters as a model file (.json)",
            style.standardIcon(QStyle.StandardPixmap.SP_DialogSaveButton))
        self.open_data_action = self._action(
            "Open &data…", QKeySequence("Ctrl+Shift+O"), self._on_open_data,
            "Open a CSV file of samples (inputs, then targets) for the current network")
        self.export_action = self._action(
            "&Export gradients…", QKeySequence("Ctrl+E"), self._on_export,
            "Write every sample's gradients from both engines (torch_autograd.dat, "
            "my_autograd.dat) with model.json and data.csv into a folder")
        self.compare_action = self._action(
            "&Compare gradient files…", QKeySequence("Ctrl+Shift+C"), self._on_compare,
            "Compare two gradient files parameter by parameter, sample by sample")
        self.quit_action = self._action(
            "&Quit", QKeySequence("Ctrl+Q"), self._on_quit, "Close the explorer")
        self.quit_action.setMenuRole(QAction.MenuRole.QuitRole)

        self._menu = QMenu("&File", window)
        self.recent_menu = QMenu("Open &recent", self._menu)
        self.recent_menu.setToolTipsVisible(True)
        self.recent_menu.aboutToShow.connect(self._fill_recent_menu)
        self._menu.addActions([self.open_model_action, self.save_model_action])
        self._menu.addSeparator()
        self._menu.addAction(self.open_data_action)
        self._menu.addSeparator()
        self._menu.addActions([self.export_action, self.compare_action])
        self._menu.addSeparator()
        self._menu.addMenu(self.recent_menu)
        self._menu.addSeparator()
        self._menu.addAction(self.quit_action)
        self._menu.setToolTipsVisible(True)

    def _action(self, text: str, shortcut: QKeySequence, slot: Callable[[], None], tip: str,
                icon: QIcon | None = None) -> QAction:
        action = QAction(text, self.window)
        if icon is not None:
            action.setIcon(icon)
        action.setShortcut(shortcut)
        shown = action.shortcut().toString(QKeySequence.SequenceFormat.NativeText)
        action.setToolTip(f"{tip} ({shown})" if shown else tip)
        action.setStatusTip(tip)
        action.triggered.connect(slot)
        return action

    def menu(self) -> QMenu:
        """The File menu, for the window's menu bar."""
        return self._menu

    # file pickers and messages, replaced in tests
    def _ask_open_file(self, title: str, file_filter: str) -> str | None:
        return ask_open_file(self.window, title, file_filter)

    def _ask_save_file(self, title: str, file_filter: str, name: str) -> str | None:
        return ask_save_file(self.window, title, file_filter, name, suffix=".json")

    def _ask_folder(self, title: str) -> str | None:
        return ask_folder(self.window, title)

    # the texts below carry file names: escaped, a newline or control character in one shows
    # as \n or \x1b instead of breaking the line
    def _confirm(self, title: str, text: str) -> bool:
        answer = QMessageBox.question(self.window, title, printable(text))
        return answer == QMessageBox.StandardButton.Yes

    def _error(self, title: str, message: str) -> None:
        QMessageBox.warning(self.window, title, printable(message))

    def _status(self, text: str) -> None:
        self.window.statusBar().showMessage(printable(text), STATUS_MS)

    # the actions
    @Slot()
    def _on_open_model(self) -> None:
        self.open_model()

    def open_model(self, path: str | None = None) -> bool:
        """Read a model file into the session (network and parameters); True when it worked."""
        path = path or self._ask_open_file("Open model", MODEL_FILTER)
        if not path:
            return False
        session = self.model.session
        try:
            model = read_model(path, seed=session.seed)
        except UserInputError as e:
            self._error("Open model", str(e))
            return False
        if not self.before_replacing():
            return False
        # a file that names no dtype runs in the window's: its numbers, read at float64, are
        # converted once to it
        kept = "dtype" not in model.stated
        spec, params = model.run(session.spec.dtype if kept else None)
        session.set_network(spec, params)
        self.modelOpened.emit(path)
        self.add_recent(MODEL, path)
        note = f" (the file names no dtype: {spec.dtype} as before)" if kept else ""
        self._status(f"Opened {os.path.basename(path)}: {spec.describe()}{note}")
        return True

    @Slot()
    def _on_save_model(self) -> None:
        self.save_model()

    def save_model(self, path: str | None = None) -> bool:
        """Write the session's network and parameters to a model file; True when it worked."""
        path = path or self._ask_save_file("Save model", MODEL_FILTER, MODEL_FILE)
        if not path:
            return False
        session = self.model.session
        try:
            write_model(path, session.spec, session.params)
        except OSError as e:
            self._error("Save model", f"{path}: cannot write it ({e.strerror or e})")
            return False
        self.modelSaved.emit(path)
        self.add_recent(MODEL, path)
        self._status(f"Saved the model to {path}")
        return True

    @Slot()
    def _on_open_data(self) -> None:
        self.open_data()

    def open_data(self, path: str | None = None) -> bool:
        """Read a CSV of samples for the current network into the session."""
        path = path or self._ask_open_file("Open data", DATA_FILTER)
        if not path:
            return False
        session = self.model.session
        try:
            data = load_csv(path, session.spec)
        except UserInputError as e:
            self._error("Open data", str(e))
            return False
        session.set_data(data)
        self.add_recent(DATA, path)
        self._status(f"Opened {data.name}")
        return True

    @Slot()
    def _on_export(self) -> None:
        self.export_gradients()

    def export_gradients(self, folder: str | None = None) -> Exported | None:
        """Export every sample's gradients of both engines into a folder, with progress, as
        the window shows them: the scratch engine makes the session's mistake, and after a
        training run each engine starts from its own parameters."""
        session = self.model.session
        mistake = session.mistake
        if mistake is not None and mistake.mistake.needs_updates \
                and session.torch_params is None:
            self._error("Export gradients", f"{mistake.mistake.title} changes only the SGD "
                        "update, so before any training both files would hold the same "
                        "gradients: train a few steps first, and the export then takes each "
                        "engine's gradients at its own parameters")
            return None
        try:
            check_export(session.spec, session.n_samples)
        except UserInputError as e:
            self._error("Export gradients", str(e))
            return None
        folder = folder or self._choose_export_folder()
        if not folder:
            return None
        names = (TORCH_FILE, SCRATCH_FILE, MODEL_FILE, DATA_FILE)
        present = [n for n in names if os.path.exists(os.path.join(folder, n))]
        if present and not self._confirm(
                "Export gradients", f"{folder} already holds {', '.join(present)}. "
                "Replace them?"):
            return None
        self._status(f"Exporting {session.n_samples} samples…")
        trained = session.torch_params is not None
        # the session's arrays are copied by the runner before its worker starts
        exported = export_with_progress(self.window, folder, session.spec, session.params,
                                        session.data, mistake=mistake,
                                        torch_params=session.torch_params,
                                        buffers=session.buffers)
        if exported is None:
            self._status("Export cancelled or failed; nothing was written")
            return None
        made = []
        if mistake is not None:
            made.append(f"the scratch engine made the mistake {mistake.label} "
                        f"({SCRATCH_FILE} says so)")
        if trained:
            made.append("each engine's gradients at its own parameters after training")
        said = (f"Exported {session.n_samples} samples to {folder}: "
                f"{', '.join(p.name for p in exported.files)}" + "".join(f"; {m}" for m in made))
        self._status(said)
        self._tell_exported(folder, said)
        return exported

    def _choose_export_folder(self) -> str | None:
        """The folder the user chose; one that does not exist yet is made once they agree
        (as `app.py export OUTDIR` makes OUTDIR), never a folder they did not choose."""
        folder = self._ask_folder("Export gradients to folder")
        if not folder or os.path.lexists(folder):
            return folder     # a file where the folder should be: the export says so
        if not self._confirm("Export gradients", f"{folder} does not exist. Create it?"):
            return None
        try:
            os.makedirs(folder)
        except OSError as e:
            self._error("Export gradients", f"cannot create {folder}: {e.strerror or e}")
            return None
        return folder

    def _tell_exported(self, folder: str, text: str) -> None:
        """Where the files went, in a message that stays out of the way (not modal), with a
        button that opens the folder."""
        box = QMessageBox(QMessageBox.Icon.Information, "Export gradients", printable(text),
                          QMessageBox.StandardButton.Close, self.window)
        opener = box.addButton("Open folder", QMessageBox.ButtonRole.ActionRole)
        opener.clicked.connect(lambda: QDesktopServices.openUrl(QUrl.fromLocalFile(folder)))
        box.setModal(False)
        box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        self.exported_message = box
        box.show()

    @Slot()
    def _on_compare(self) -> None:
        self.compare_files()

    def compare_files(self, path_a: str | None = None,
                      path_b: str | None = None) -> CompareDialog | None:
        """Compare two gradient files in a dialog (not modal); None when the user stopped or
        the files could not be compared (a message box said why)."""
        path_a = path_a or self._ask_open_file("Compare: first gradient file (A)",
                                               GRADIENT_FILTER)
        if not path_a:
            return None
        path_b = path_b or self._ask_open_file("Compare: second gradient file (B)",
                                               GRADIENT_FILTER)
        if not path_b:
            return None
        dialog = CompareDialog(path_a, path_b, session_model=self.model, parent=self.window)
        if not dialog.ok:
            if dialog.cancelled:
                self._status("Compare cancelled")
            dialog.deleteLater()
            return None
        self.compare_dialogs.append(dialog)
        dialog.finished.connect(self._on_compare_closed)
        self.add_recent(GRADIENTS, path_a, path_b)
        dialog.show()
        verdict = "agree" if dialog.comparison.report.agree else "disagree"
        self._status(f"{os.path.basename(path_a)} and {os.path.basename(path_b)} {verdict}")
        return dialog

    @Slot()
    def _on_compare_closed(self) -> None:
        dialog = self.sender()
        if dialog in self.compare_dialogs:
            self.compare_dialogs.remove(dialog)
            dialog.deleteLater()

    @Slot()
    def _on_quit(self) -> None:
        self.window.close()

    # recent files
    def recent_files(self) -> list[RecentEntry]:
        """The recent entries, newest first, without the ones whose files are gone."""
        try:
            raw = json.loads(str(open_settings().value(RECENT_KEY, "[]") or "[]"))
            entries = [RecentEntry(str(e["kind"]), tuple(map(str, e["paths"])))
                       for e in raw if e.get("kind") in _KIND_TEXT and e.get("paths")]
        except (ValueError, TypeError, KeyError, AttributeError):
            entries = []
        kept = [e for e in entries if e.exists()][:MAX_RECENT]
        if kept != entries:
            self._store_recent(kept)
        return kept

    def add_recent(self, kind: str, *paths: str) -> None:
        entry = RecentEntry(kind, tuple(str(Path(p).resolve()) for p in paths))
        entries = [entry] + [e for e in self.recent_files() if e != entry]
        self._store_recent(entries[:MAX_RECENT])

    def _store_recent(self, entries: list[RecentEntry]) -> None:
        open_settings().setValue(RECENT_KEY, json.dumps(
            [{"kind": e.kind, "paths": list(e.paths)} for e in entries]))

    @Slot()
    def _fill_recent_menu(self) -> None:
        self.recent_menu.clear()
        entries = self.recent_files()
        for i, entry in enumerate(entries, 1):
            action = self.recent_menu.addAction(f"&{i} {entry.text()}")
            action.setToolTip("\n".join(entry.paths))
            action.setData(entry)
            action.triggered.connect(self._on_recent)
        if not entries:
            self.recent_menu.addAction("No recent files").setEnabled(False)
        self.recent_menu.addSeparator()
        clear = self.recent_menu.addAction("Clear recent files")
        clear.setEnabled(bool(entries))
        clear.triggered.connect(self._on_clear_recent)

    @Slot()
    def _on_recent(self) -> None:
        self.open_recent(self.sender().data())

    def open_recent(self, entry: RecentEntry) -> bool:
        """Open a recent entry again as it was opened first."""
        gone = [p for p in entry.paths if not os.path.isfile(p)]
        if gone:
            self._error("Open recent", f"{gone[0]}: the file is gone")
            self.recent_files()
            return False
        if entry.kind == MODEL:
            return self.open_model(entry.paths[0])
        if entry.kind == DATA:
            return self.open_data(entry.paths[0])
        return self.compare_files(*entry.paths) is not None

    @Slot()
    def _on_clear_recent(self) -> None:
        self._store_recent([])

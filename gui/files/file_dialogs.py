"""File pickers that start in the last folder used and remember the folder chosen. Dialogs and
actions call these through small methods of their own so tests can replace them."""

import os

from PySide6.QtWidgets import QFileDialog, QWidget

from gui.settings import open_settings

LAST_FOLDER = "files/last_folder"

MODEL_FILTER = "Model files (*.json);;All files (*)"
DATA_FILTER = "CSV files (*.csv *.txt);;All files (*)"
GRADIENT_FILTER = ("Gradient files (*.dat *.txt *.npy *.npz *.pt *.pth);;All files (*)")


def last_folder() -> str:
    """The folder of the last file chosen, or the home folder."""
    folder = str(open_settings().value(LAST_FOLDER, "") or "")
    return folder if folder and os.path.isdir(folder) else os.path.expanduser("~")


def remember_folder(path: str | os.PathLike) -> None:
    """Remember `path`'s folder (or `path` itself when it is a folder) for the next picker."""
    path = os.fspath(path)
    folder = path if os.path.isdir(path) else os.path.dirname(os.path.abspath(path))
    open_settings().setValue(LAST_FOLDER, folder)


def ask_open_file(parent: QWidget | None, title: str, file_filter: str,
                  folder: str | None = None) -> str | None:
    """An existing file chosen by the user, or None."""
    path, _ = QFileDialog.getOpenFileName(parent, title, folder or last_folder(), file_filter)
    if not path:
        return None
    remember_folder(path)
    return path


def ask_save_file(parent: QWidget | None, title: str, file_filter: str, name: str,
                  suffix: str = "") -> str | None:
    """A file name to write, proposed as `name` in the last folder, or None. `suffix` (".json")
    is added when the user typed a name without one."""
    path, _ = QFileDialog.getSaveFileName(parent, title, os.path.join(last_folder(), name),
                                          file_filter)
    if not path:
        return None
    if suffix and not os.path.splitext(path)[1]:
        path += suffix
    remember_folder(path)
    return path


def ask_folder(parent: QWidget | None, title: str) -> str | None:
    """A folder chosen by the user, or None."""
    folder = QFileDialog.getExistingDirectory(parent, title, last_folder())
    if not folder:
        return None
    remember_folder(folder)
    return folder

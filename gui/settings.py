"""What the window remembers between runs, in QSettings: geometry, splitters, docks and the
last network (its spec as JSON). A stored value that no longer reads back (an older version, a
hand-edited file) is ignored: the window then starts with the defaults."""

import json
import logging

from PySide6.QtCore import QByteArray, QSettings
from PySide6.QtWidgets import QMainWindow, QSplitter

from engine.errors import SpecError
from engine.net.spec import NetworkSpec

ORGANIZATION = "BackpropExplorer"
APPLICATION = "Backprop Explorer"
GEOMETRY, STATE, NETWORK = "window/geometry", "window/state", "session/network"

log = logging.getLogger(__name__)


def open_settings() -> QSettings:
    """The user's settings of this application, in QSettings' default format (tests point it
    at a temporary ini file with setDefaultFormat and setPath)."""
    return QSettings(QSettings.defaultFormat(), QSettings.Scope.UserScope, ORGANIZATION,
                     APPLICATION)


def last_network(settings: QSettings) -> NetworkSpec | None:
    """The network of the last run, or None when there is none or it does not read back."""
    text = settings.value(NETWORK)
    if not text:
        return None
    try:
        return NetworkSpec.from_dict(json.loads(str(text)))
    except (ValueError, TypeError, SpecError) as error:
        log.warning("ignoring the stored network %r: %s", text, error)
        return None


def remember_network(settings: QSettings, spec: NetworkSpec) -> None:
    settings.setValue(NETWORK, json.dumps(spec.to_dict()))


def save_window(settings: QSettings, window: QMainWindow,
                splitters: dict[str, QSplitter]) -> None:
    """Geometry, toolbars and docks of `window`, and each named splitter's sizes."""
    settings.setValue(GEOMETRY, window.saveGeometry())
    settings.setValue(STATE, window.saveState())
    for name, splitter in splitters.items():
        settings.setValue(f"splitters/{name}", splitter.saveState())


def restore_window(settings: QSettings, window: QMainWindow,
                   splitters: dict[str, QSplitter]) -> bool:
    """Put back what `save_window` stored; False when nothing was stored."""
    geometry = settings.value(GEOMETRY)
    if not isinstance(geometry, QByteArray):
        return False
    window.restoreGeometry(geometry)
    state = settings.value(STATE)
    if isinstance(state, QByteArray):
        window.restoreState(state)
    for name, splitter in splitters.items():
        sizes = settings.value(f"splitters/{name}")
        if isinstance(sizes, QByteArray):
            splitter.restoreState(sizes)
    return True

"""Crash recovery in the window: the session is autosaved every few seconds while it changes
(engine/autosave.py writes it), offered back at the next start when the window that wrote it
did not close cleanly, and removed when it does close cleanly.

The autosaves live in the user's application data folder (QStandardPaths.AppDataLocation,
sub-folder "autosave"), or in the folder the BACKPROP_EXPLORER_AUTOSAVE environment variable
names. The question is the module function `ask_restore`, which tests replace."""

import dataclasses
import logging
import os
import time
from pathlib import Path

from PySide6.QtCore import QObject, QStandardPaths, QTimer, Slot
from PySide6.QtWidgets import QMainWindow, QMessageBox, QWidget

from engine.autosave import (
    AutosaveError,
    RunSnapshot,
    SessionFolder,
    Snapshot,
    Writer,
    discard,
    orphans,
    read_autosave,
)

ENV = "BACKPROP_EXPLORER_AUTOSAVE"
AUTOSAVE_MS = 2000

log = logging.getLogger(__name__)


def autosave_root() -> Path:
    """Where session folders are kept: $BACKPROP_EXPLORER_AUTOSAVE, else the user's
    application data folder's "autosave"."""
    override = os.environ.get(ENV)
    if override:
        return Path(override)
    base = QStandardPaths.writableLocation(QStandardPaths.StandardLocation.AppDataLocation)
    return Path(base) / "autosave"


def ask_restore(parent: QWidget, when: str, detail: str) -> bool:
    """Whether to restore the session autosaved at `when`."""
    answer = QMessageBox.question(
        parent, "Restore session", f"Restore the session from {when}?\n\n{detail}",
        QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No,
        QMessageBox.StandardButton.Yes)
    return answer == QMessageBox.StandardButton.Yes


class Recovery(QObject):
    """Autosaves `window`'s session (a MainWindow) into a folder of its own under `root`
    (autosave_root() by default) while the window lives. `offer_restore()` at start,
    `finish()` after a clean close."""

    def __init__(self, window: QMainWindow, root: str | os.PathLike[str] | None = None):
        super().__init__(window)
        self.window = window
        self.root = Path(root) if root is not None else autosave_root()
        self.folder: SessionFolder | None = None
        self.writer: Writer | None = None
        try:
            self.folder = SessionFolder.create(self.root)
            self.writer = Writer(self.folder)
        except OSError as e:
            log.warning("no autosave: cannot make a folder in %s (%s)", self.root, e)
        self._changed = True
        self._latest: tuple | None = None   # the child's last (step, scratch, torch)
        # the run a restored session came back with, and the network, data and mistake it was
        # on: autosaved again until a run or a reset replaces it or the session leaves them
        self._restored: tuple[RunSnapshot, tuple] | None = None
        docks = window.training
        window.model.changed.connect(self._on_change)
        docks.panel.runReset.connect(self._on_run_reset)
        docks.panel.controller.records.connect(self._on_change)
        docks.panel.controller.snapshot.connect(self._on_snapshot)
        self.timer = QTimer(self)
        self.timer.setInterval(AUTOSAVE_MS)
        self.timer.timeout.connect(self._on_timer)
        if self.folder is not None:
            self.timer.start()

    @Slot()
    def _on_change(self, *_) -> None:
        self._changed = True

    @Slot(object)
    def _on_run_reset(self, _training) -> None:
        self._latest = None
        self._restored = None
        self._changed = True

    @Slot(object)
    def _on_snapshot(self, snapshot: tuple) -> None:
        self._latest = snapshot
        self._changed = True

    @Slot()
    def _on_timer(self) -> None:
        """Hand the session to the writer's thread when it changed: the event loop never
        waits for the disk."""
        if self.writer is None:
            return
        if self.writer.error is not None:
            self._stopped(self.writer.error)
        elif self._changed:
            self._changed = False
            self.writer.put(self.snapshot())

    def snapshot(self) -> Snapshot:
        """The session as it is now; during a run, with the parameters the child last sent."""
        docks = self.window.training
        session = self.window.model.session
        saved = Snapshot.of(session)
        training = docks.panel.training
        if training is None:
            return dataclasses.replace(saved, run=self._restored_run())
        step = training.step
        if docks.panel.controller.running and self._latest is not None:
            step, scratch, theirs = self._latest
            saved = dataclasses.replace(saved, params=scratch, torch_params=theirs)
        run = RunSnapshot(training.config, step, training.total, docks.plots.history())
        return dataclasses.replace(saved, run=run)

    def save_now(self) -> None:
        """Write the autosave now, on this thread; a disk that refuses is logged once and
        autosaving stops."""
        if self.writer is None:
            return
        try:
            self.writer.write_now(self.snapshot())
        except OSError as e:
            self._stopped(e)
            return
        self._changed = False

    def _stopped(self, error: OSError) -> None:
        log.warning("autosave stopped: cannot write %s (%s)", self.folder.path, error)
        self.timer.stop()
        self.writer = None

    def offer_restore(self) -> bool:
        """When a session under the root was left by a window that did not close cleanly, ask
        whether to restore the newest and do it; the others are deleted either way. True when
        a session was restored."""
        found = orphans(self.root)
        if not found:
            return False
        restored = False
        try:
            snapshot = read_autosave(found[0])
        except AutosaveError as e:
            log.warning("an autosaved session could not be restored: %s", e)
        else:
            when = _when(snapshot.saved_at)
            if ask_restore(self.window, when, _describe(snapshot)):
                self.restore(snapshot)
                said = f"Restored the session autosaved at {when}"
                if snapshot.mistake_note:
                    log.warning("%s: %s", found[0], snapshot.mistake_note)
                    said += f"; {snapshot.mistake_note}"
                self.window.status.say(said)
                restored = True
        for folder in found:
            discard(folder)
        return restored

    def restore(self, snapshot: Snapshot) -> None:
        """Put `snapshot` into the window: network, data, the scratch engine's mistake, both
        engines' parameters, sample, stage, the run's settings and plots. Written to this
        session's autosave at once, the run included, and so on until a new run or a reset
        replaces it (or another network, data or mistake leaves it behind): a second crash
        loses nothing the first did not."""
        window = self.window
        session = window.model.session
        session.seed = snapshot.seed
        session.set_network(snapshot.spec, snapshot.params, snapshot.data)
        session.set_mistake(snapshot.mistake)
        if snapshot.torch_params is not None:
            session.set_params(snapshot.params, snapshot.torch_params)
        session.go_to_sample(snapshot.sample_index)
        keys = [pair.key for pair in session.pairs]
        if snapshot.stage_key in keys:
            session.go_to_stage(keys.index(snapshot.stage_key))
        if snapshot.run is not None:
            panel, config = window.training.panel, snapshot.run.config
            panel.lr.setText(repr(config.lr))
            panel.epochs.setValue(config.epochs)
            panel.batch.setValue(config.batch_size)
            panel.shuffle.setChecked(config.shuffle)
            panel.seed.setValue(config.seed)
            window.training.plots.restore_history(snapshot.spec, snapshot.run.history)
            window.training.plots_dock.show()
        self._restored = None if snapshot.run is None else (snapshot.run, self._on_what())
        self.save_now()

    def _restored_run(self) -> RunSnapshot | None:
        """The restored run, while the session is still on its network, data and mistake."""
        if self._restored is not None and not self._still_on(self._restored[1]):
            self._restored = None
        return None if self._restored is None else self._restored[0]

    def _on_what(self) -> tuple:
        session = self.window.model.session
        mistake = session.mistake.label if session.mistake is not None else None
        return session.spec, session.data, mistake

    def _still_on(self, then: tuple) -> bool:
        (spec, data, mistake), (now_spec, now_data, now_mistake) = then, self._on_what()
        # the data by identity: new data of equal values is still another data set
        return spec == now_spec and data is now_data and mistake == now_mistake

    def finish(self) -> None:
        """A clean close: stop autosaving and delete this session's autosave."""
        self.timer.stop()
        if self.writer is not None:
            self.writer.close()     # a write under way, then the folder goes
            self.writer = None
        if self.folder is not None:
            self.folder.remove()
            self.folder = None


def _when(saved_at: float) -> str:
    moment = time.localtime(saved_at)
    today = time.localtime()
    if moment[:3] == today[:3]:
        return time.strftime("%H:%M", moment)
    return time.strftime("%Y-%m-%d %H:%M", moment)


def _describe(snapshot: Snapshot) -> str:
    text = f"{snapshot.spec.describe()}; {snapshot.data.name}."
    if snapshot.mistake is not None:
        text += f" The scratch engine made the mistake {snapshot.mistake} on purpose."
    elif snapshot.mistake_note:
        text += f" Not all of it comes back: {snapshot.mistake_note}."
    if snapshot.run is not None:
        text += (f" A training run had reached step {snapshot.run.step:,} of "
                 f"{snapshot.run.total:,}: its parameters, settings and plots come back, and "
                 "Start begins a new run from those parameters.")
    return text

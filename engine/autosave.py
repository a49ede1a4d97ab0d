"""Crash recovery: a session autosaved into a folder of its own every few seconds, and read
back at the next start when the process that wrote it is gone without cleaning up.

A session folder holds

    session.json     the network (as a model file states it), the seed, the current sample and
                     stage, the mistake the scratch engine makes (its label, "name@layer"), the
                     data's name, the training run's settings, step and the names of its
                     plotted series, and the names of the two files below
    data-<n>.csv     the samples as given, at float64 (rewritten only when the data changes)
    arrays-<n>.npz   both engines' parameters and the run's plotted history: plain arrays,
                     no pickles
    lock             locked by the writing process while it lives; the operating system drops
                     the lock when the process ends, however it ends (kill -9 included)

Every file is written atomically and session.json last, naming the other two, so a kill at any
moment leaves the previous autosave or the new one, never a mix. Reading runs nothing from the
folder: JSON, the data reader, np.load without pickles, each checked against the network, and each
file only when it is a regular file, read up to a bound (engine/files/regularfile.py): a pipe or a
link to a device in the folder would otherwise hold the window from ever appearing. A mistake entry
that cannot be made again (garbled, or from an older catalogue) is left out with a note saying why,
and the rest of the session still comes back; an autosave written before mistakes were recorded has
none.
"""

import contextlib
import dataclasses
import io
import json
import math
import os
import re
import shutil
import threading
import time
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from engine.check.mistakes import inject
from engine.errors import UserInputError, printable
from engine.files.atomic import atomic_write_bytes, atomic_write_text
from engine.files.datasets import Dataset, load_csv, to_csv_text
from engine.files.regularfile import NotRegularFile, open_regular, size_of
from engine.files.textfile import read_text
from engine.net.params import Params
from engine.net.spec import NetworkSpec
from engine.session import Session
from engine.train.lockstep import TrainConfig

FORMAT, VERSION = "backprop-explorer autosave", 1
SESSION_FILE, LOCK_FILE = "session.json", "lock"
MAX_SESSION_BYTES = 2**20   # a session.json names files and settings: a few kB
# beyond both engines' parameters, the arrays file holds the run's plotted series
# (RunHistory.saved, engine/train/history.py): each at most 8,192 (step, value) pairs of float64
# (a RunHistory keeps 4,096), and the deepest network has ~205 (two a layer, and the losses and
# drift): 26 MB at most
MAX_HISTORY_BYTES = 64 * 2**20
_DATA_NAME = re.compile(r"data-\d+\.csv")
_ARRAYS_NAME = re.compile(r"arrays-\d+\.npz")
_MAX_SAME_NAME = 100   # session folders one process may start within a second
_MAX_LABEL = 100   # a mistake's label is a name and a layer: anything longer is not one

if os.name == "nt":
    import msvcrt

    def _try_lock(fd: int) -> bool:
        try:
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
        except OSError:
            return False
        return True
else:
    import fcntl

    def _try_lock(fd: int) -> bool:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            return False
        return True


class AutosaveError(UserInputError):
    """An autosave folder that cannot be read back; the message starts with the folder."""


@dataclass(frozen=True)
class RunSnapshot:
    """A training run as far as it went: its settings, the step reached of `total`, and each
    plotted series as (steps, values), 1-D arrays of one length (RunHistory.saved, which
    RunHistory.restored takes back)."""

    config: TrainConfig
    step: int
    total: int
    history: Mapping[str, tuple[np.ndarray, np.ndarray]]


@dataclass(frozen=True)
class Snapshot:
    """What a session needs to come back: network, both engines' parameters (engine layout;
    torch's None while it has not parted from scratch), data, seed, current sample (from 0)
    and stage (its key), the training run (None without one), when it was taken (seconds
    since the epoch), and the mistake the scratch engine makes (its label, as
    engine.check.mistakes.inject takes it; None: none). Read back, `mistake_note` says why an
    autosaved mistake was left out ("" when none was)."""

    spec: NetworkSpec
    params: Params
    torch_params: Params | None
    data: Dataset
    seed: int
    sample_index: int
    stage_key: str
    run: RunSnapshot | None = None
    saved_at: float = 0.0
    mistake: str | None = None
    mistake_note: str = ""

    @classmethod
    def of(cls, session: Session, run: RunSnapshot | None = None) -> "Snapshot":
        """The session as it is now, its arrays copied."""
        mistake = session.mistake.label if session.mistake is not None else None
        return cls(session.spec, _copy(session.params), _copy(session.torch_params),
                   session.data, session.seed, session.sample_index, session.stage.key, run,
                   time.time(), mistake)


class SessionFolder:
    """The autosave folder of one running session, locked for as long as this object lives
    (or until `remove`)."""

    def __init__(self, path: Path, lock_fd: int):
        self.path = path
        self._lock_fd: int | None = lock_fd
        self._written = 0
        self._data: tuple[Dataset, str] | None = None

    @classmethod
    def create(cls, root: str | os.PathLike[str]) -> "SessionFolder":
        """A new locked folder under `root` (made if missing); OSError when it cannot be."""
        base = Path(root) / f"{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}"
        base.parent.mkdir(parents=True, exist_ok=True)
        for i in range(1, _MAX_SAME_NAME + 1):
            # another window of this process, started within the same second, takes the next
            path = base if i == 1 else base.with_name(f"{base.name}-{i}")
            try:
                path.mkdir()
                break
            except FileExistsError:
                if i == _MAX_SAME_NAME:
                    raise
        fd = os.open(path / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o600)
        if not _try_lock(fd):
            os.close(fd)
            raise OSError(f"{path}: cannot lock it")
        return cls(path, fd)

    def write(self, snapshot: Snapshot) -> None:
        """Replace the autosave with `snapshot`; OSError when the disk refuses."""
        self._written += 1
        n = self._written
        if self._data is None or self._data[0] is not snapshot.data:
            name = f"data-{n}.csv"
            atomic_write_text(self.path / name, to_csv_text(snapshot.data, given=True))
            self._data = (snapshot.data, name)
        arrays_name = f"arrays-{n}.npz"
        buffer = io.BytesIO()
        np.savez(buffer, **_arrays(snapshot))
        atomic_write_bytes(self.path / arrays_name, buffer.getvalue())
        atomic_write_text(self.path / SESSION_FILE,
                          json.dumps(_document(snapshot, self._data[1], arrays_name), indent=1))
        for stale in self.path.iterdir():
            if stale.name not in (SESSION_FILE, LOCK_FILE, self._data[1], arrays_name):
                with contextlib.suppress(OSError):
                    stale.unlink()

    def remove(self) -> None:
        """Delete the folder (a clean close) and let go of its lock."""
        if self._lock_fd is not None:
            os.close(self._lock_fd)   # first: Windows deletes no open file
            self._lock_fd = None
        shutil.rmtree(self.path, ignore_errors=True)


class Writer:
    """Writes a SessionFolder's autosaves on a thread of its own, so that the event loop of
    the window that asks never waits for the disk (an autosave took 9 ms here, a third of it
    fsync, and over 30 ms on a busy machine). `put` hands over the newest snapshot: one not
    written yet is replaced, never queued. The thread is started by the first `put` and then
    waits for the next one (IDLE seconds at most, then it ends until another comes): started
    at every put, the caller waited for it to start and then for the GIL while it wrote, 4-5
    ms of a window's event loop every two seconds of a run. `close` ends it. `error` is the
    OSError that stopped it, for the caller to report."""

    IDLE = 30.0     # seconds the thread waits for a snapshot before it ends

    def __init__(self, folder: SessionFolder):
        self.folder = folder
        self.error: OSError | None = None
        self._lock = threading.Lock()          # held while the folder is written
        self._pending: Snapshot | None = None
        self._writing = False
        self._thread: threading.Thread | None = None
        self._closed = False
        # guards _pending, _writing, _thread and _closed; told of each change of them
        self._changed = threading.Condition()

    def put(self, snapshot: Snapshot) -> None:
        with self._changed:
            if self.error is not None or self._closed:
                return
            self._pending = snapshot
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="autosave",
                                                daemon=True)
                self._thread.start()
            self._changed.notify_all()

    def write_now(self, snapshot: Snapshot) -> None:
        """Write `snapshot` on the caller's thread, after any write under way; OSError when
        the disk refuses."""
        with self._changed:
            self._pending = None
        with self._lock:
            self.folder.write(snapshot)

    def wait(self) -> None:
        """Until nothing is left to write."""
        with self._changed:
            self._changed.wait_for(lambda: self._thread is None or (
                self._pending is None and not self._writing))

    def close(self) -> None:
        """Write what is left, then end the thread; `put` writes nothing more."""
        with self._changed:
            self._closed = True
            thread = self._thread
            self._changed.notify_all()
        if thread is not None:
            thread.join()

    @property
    def running(self) -> bool:
        """Whether the writer's thread is up (waiting or writing)."""
        with self._changed:
            return self._thread is not None

    def _run(self) -> None:
        while True:
            with self._changed:
                self._changed.wait_for(lambda: self._pending is not None or self._closed,
                                       timeout=self.IDLE)
                snapshot, self._pending = self._pending, None
                if snapshot is None:        # closed, or idle for IDLE seconds
                    self._thread = None
                    self._changed.notify_all()
                    return
                self._writing = True
            try:
                with self._lock:
                    self.folder.write(snapshot)
            except OSError as e:
                with self._changed:
                    self.error, self._pending, self._thread = e, None, None
                    self._writing = False
                    self._changed.notify_all()
                return
            with self._changed:
                self._writing = False
                self._changed.notify_all()


def orphans(root: str | os.PathLike[str]) -> list[Path]:
    """The session folders under `root` whose process is gone (their lock is free), the most
    recently written first. A missing `root` has none."""
    found = []
    with contextlib.suppress(OSError):
        for path in Path(root).iterdir():
            if path.is_dir() and not _locked(path / LOCK_FILE):
                found.append(path)
    return sorted(found, key=_written_at, reverse=True)


def _locked(lock: Path) -> bool:
    try:
        # a pipe in its place must not hold the start of the window
        fd = os.open(lock, os.O_RDWR | getattr(os, "O_NONBLOCK", 0))
    except FileNotFoundError:
        return False
    except OSError:
        return True   # not ours to judge: leave it alone
    try:
        return not _try_lock(fd)
    finally:
        os.close(fd)   # closing drops a lock we just took


def _written_at(path: Path) -> float:
    try:
        return (path / SESSION_FILE).stat().st_mtime
    except OSError:
        return 0.0


def discard(folder: str | os.PathLike[str]) -> None:
    """Delete an orphaned session folder."""
    shutil.rmtree(folder, ignore_errors=True)


def read_autosave(folder: str | os.PathLike[str]) -> Snapshot:
    """The snapshot in `folder`; AutosaveError (one line, naming the folder) when it is
    missing, cut short, of another version or does not fit its own network."""
    folder = Path(folder)
    try:
        return _read(folder)
    except AutosaveError:
        raise
    except UserInputError as e:
        told = str(e)   # a file of the folder names itself, and so the folder
        raise AutosaveError(told if told.startswith(f"{folder}{os.sep}") else f"{folder}: {told}"
                            ) from None
    except (OSError, ValueError, KeyError, TypeError, zipfile.BadZipFile, RecursionError,
            SyntaxError, EOFError) as e:
        raise AutosaveError(f"{folder}: cannot be read back ({type(e).__name__}: {e})") from None


def _read(folder: Path) -> Snapshot:
    doc = json.loads(read_text(folder / SESSION_FILE, MAX_SESSION_BYTES,
                               "an autosave's session file", AutosaveError))
    if not isinstance(doc, dict) or doc.get("format") != FORMAT or doc.get("version") != VERSION:
        raise AutosaveError(f"{folder}: not an autosave of this version of Backprop Explorer")
    spec = NetworkSpec.from_dict(doc["network"])
    data_name, arrays_name = str(doc["data"]["file"]), str(doc["arrays"])
    if not (_DATA_NAME.fullmatch(data_name) and _ARRAYS_NAME.fullmatch(arrays_name)):
        raise AutosaveError(f"{folder}: {SESSION_FILE} names files that are not its own")
    loaded = load_csv(folder / data_name, spec)
    data = dataclasses.replace(loaded, name=str(doc["data"]["name"]))
    run_doc = doc["training"]
    with _open_arrays(folder / arrays_name, spec) as f, \
            np.load(f, allow_pickle=False) as arrays:
        params = _params(arrays, "scratch", spec, folder)
        torch_params = _params(arrays, "torch", spec, folder) if doc["torch_params"] else None
        run = None if run_doc is None else _run(run_doc, arrays, folder)
    sample = min(max(int(doc["sample"]), 0), len(data) - 1)
    mistake, note = _mistake(doc.get("mistake"), spec)
    return Snapshot(spec, params, torch_params, data, int(doc["seed"]), sample,
                    str(doc["stage"]), run, float(doc["saved_at"]), mistake, note)


def _open_arrays(path: Path, spec: NetworkSpec) -> BinaryIO:
    """The arrays file opened, when it is a regular file of at most what `spec`'s two engines'
    parameters and the plotted series take, every array in it no larger than the bytes it
    unpacks from (np.load allocates what a header says before it reads)."""
    shown = printable(str(path))
    limit = 2 * spec.n_params * np.dtype(spec.np_dtype).itemsize + MAX_HISTORY_BYTES
    try:
        f = open_regular(path)
    except NotRegularFile as e:
        raise AutosaveError(f"{shown}: {e}") from None
    try:
        if size_of(f) > limit:
            raise AutosaveError(f"{shown}: {size_of(f):,} bytes is more than the {limit:,} "
                                f"bytes an autosave of {spec.describe()} takes")
        with zipfile.ZipFile(f) as z:
            infos = z.infolist()
            if sum(info.file_size for info in infos) > limit:
                raise AutosaveError(f"{shown}: unpacks to more than an autosave of "
                                    f"{spec.describe()} takes")
            for info in infos:
                with z.open(info) as member:
                    _check_header(member, info.file_size, shown)
        f.seek(0)
    except BaseException:
        f.close()
        raise
    return f


def _check_header(member: BinaryIO, size: int, shown: str) -> None:
    version = np.lib.format.read_magic(member)
    read = (np.lib.format.read_array_header_1_0 if version == (1, 0)
            else np.lib.format.read_array_header_2_0)
    shape, _, dtype = read(member)
    if dtype.hasobject or math.prod(shape) * dtype.itemsize > size:
        raise AutosaveError(f"{shown}: holds an array that is not plain numbers of the size "
                            "its file holds")


def _mistake(entry: object, spec: NetworkSpec) -> tuple[str | None, str]:
    """The autosaved mistake's label made again for `spec`, or (None, why it was left out)."""
    if entry is None:
        return None, ""
    left_out = "the injected mistake was not restored"
    if not isinstance(entry, str) or len(entry) > _MAX_LABEL:
        shown = json.dumps(entry)
        shown = shown if len(shown) <= 40 else shown[:37] + "..."
        return None, f"{left_out}: the autosave gives {shown}, which is not a mistake's name"
    try:
        return inject(spec, entry).label, ""
    except UserInputError as e:
        return None, f"{left_out}: {e}"


def _params(arrays: Any, engine: str, spec: NetworkSpec, folder: Path) -> Params:
    params = {}
    for name in spec.param_names:
        value = arrays[f"{engine}.{name}"]
        shape = spec.param_shape(name, "out_in")
        if value.shape != shape or value.dtype != spec.np_dtype:
            raise AutosaveError(f"{folder}: {engine} {name} is {value.dtype} {value.shape}, but "
                                f"{spec.describe()} needs {spec.dtype} {shape}")
        params[name] = value
    return params


def _run(doc: dict, arrays: Any, folder: Path) -> RunSnapshot:
    config = TrainConfig(**doc["config"])
    history = {}
    for i, name in enumerate(doc["history"]):
        steps, values = arrays[f"history.{i}.steps"], arrays[f"history.{i}.values"]
        if steps.ndim != 1 or steps.shape != values.shape:
            raise AutosaveError(f"{folder}: the history of {name!r} is not two arrays of one "
                                "length")
        history[str(name)] = (steps.astype(np.float64), values.astype(np.float64))
    return RunSnapshot(config, int(doc["step"]), int(doc["total"]), history)


def _document(snapshot: Snapshot, data_name: str, arrays_name: str) -> dict[str, Any]:
    run = snapshot.run
    return {
        "format": FORMAT, "version": VERSION, "saved_at": snapshot.saved_at,
        "network": snapshot.spec.to_dict(), "seed": snapshot.seed,
        "sample": snapshot.sample_index, "stage": snapshot.stage_key,
        "mistake": snapshot.mistake,
        "data": {"file": data_name, "name": snapshot.data.name},
        "arrays": arrays_name, "torch_params": snapshot.torch_params is not None,
        "training": None if run is None else {
            "config": dataclasses.asdict(run.config), "step": run.step, "total": run.total,
            "history": list(run.history)},
    }


def _arrays(snapshot: Snapshot) -> dict[str, np.ndarray]:
    arrays = {f"scratch.{k}": v for k, v in snapshot.params.items()}
    if snapshot.torch_params is not None:
        arrays.update({f"torch.{k}": v for k, v in snapshot.torch_params.items()})
    if snapshot.run is not None:
        for i, (steps, values) in enumerate(snapshot.run.history.values()):
            arrays[f"history.{i}.steps"] = np.asarray(steps, dtype=np.float64)
            arrays[f"history.{i}.values"] = np.asarray(values, dtype=np.float64)
    return arrays


def _copy(params: Mapping[str, np.ndarray] | None) -> Params | None:
    return None if params is None else {k: np.array(v) for k, v in params.items()}

"""The torch half of a long training run, computed ahead in a process of its own.

Each engine updates with its own gradients, so torch's trajectory depends only on where it
starts, the data and the settings: a second process can compute it while this one runs the
scratch engine and compares, and the machine's two cores work at once. The helper runs the very
TorchNet.step that the run's TorchNet.train_step would have called here, with as many threads,
writing each step's numbers straight into the chunk it sends (engine.net.reference.Trainer), so
the numbers are bit-identical whether or not it is used.

The helper imports torch as it starts, reading the run's settings meanwhile; `app.py train`
starts it before it has read its own options (engine/train/launch.py). A run that knows
torch's start (the headless `train`, engine/train/run.py) sends it at once: the helper computes
from step 0 as soon as torch is loaded, and this process need not load torch at all. A run
that goes on in-process meanwhile (TrainingRun) hands over the torch engine's parameters and
the step reached once the helper says it is ready. From then on the helper sends each step's
(loss, gradient, parameters) in chunks through a pipe. If it cannot start or dies, the run
goes on in-process from the last step it sent: the helper only ever makes a run faster.

Messages are pickled between this process and the child it started (never read from a file).
"""

import contextlib
import importlib
import os
import pickle
import subprocess
import sys
import threading
import weakref
from multiprocessing.connection import Connection

import numpy as np

from engine.files.datasets import Dataset
from engine.net.params import Params, unflat
from engine.net.spec import NetworkSpec
from engine.train.launch import adopt
from engine.train.lockstep import LocalTorch, Lockstep, Schedule, TrainConfig

MIN_STEPS = 5_000          # shorter runs stay in-process: starting the helper costs ~2 s of CPU
MAX_PARAMS = 100_000       # bigger nets would spend more on the pipe than the helper saves
CHUNK_BYTES = 256 * 1024   # the most one message carries; the first ones are smaller
SILENCE = 10.0             # seconds without a chunk after which the helper counts as dead
FIRST_SILENCE = 60.0       # the same for the first chunk, which comes after torch's import
CHECK_EVERY = 64           # steps between looks at whether a starting helper is ready
_READY = b"ready"
_HEADER = 2                # int64 first step and step count, before the rows
_HEADER_BYTES = 8 * _HEADER


def worthwhile(spec: NetworkSpec, steps: int) -> bool:
    """Whether a run of `steps` steps of `spec` goes faster with a helper (POSIX only: it
    hands the child its pipes by file descriptor)."""
    return os.name == "posix" and steps >= MIN_STEPS and spec.n_params <= MAX_PARAMS


def torch_threads_here() -> int | None:
    """The intra-op threads torch uses in this process; None when it has not loaded torch
    (a helper then keeps the default, which a later import here would get too)."""
    if "torch" not in sys.modules:
        return None
    from engine.net.reference import torch_threads

    return torch_threads()


class TorchHelper:
    """A child process that will compute the torch engine's steps of a run of `config` on
    `data`; `threads`: the intra-op threads torch uses here, and so there (None: torch's
    default). `start` (step, flat parameters): where torch's steps begin, so the child
    begins as soon as it has loaded torch; None: given later, by `take_over`."""

    def __init__(self, spec: NetworkSpec, data: Dataset, config: TrainConfig,
                 threads: int | None, start: tuple[int, np.ndarray] | None = None):
        self.spec, self.data, self.config, self.threads = spec, data, config, threads
        self.process, ctrl, incoming = adopt()
        self._ready = False
        self.ctrl = Connection(ctrl, readable=False)
        self.incoming = Connection(incoming, writable=False)
        self._finalizer = weakref.finalize(self, _stop, self.process, self.ctrl, self.incoming)
        if self.process is not None:
            try:   # read by the child while it imports torch: a large set waits little
                self.ctrl.send((spec, data, config, threads, start))
            except OSError:
                self.close()

    @property
    def alive(self) -> bool:
        return (self.process is not None and self.process.poll() is None
                and not self.incoming.closed)

    def ready(self) -> bool:
        """True once the child has imported torch and waits for its start; never blocks."""
        if not self._ready:
            try:
                self._ready = (self.alive and self.incoming.poll()
                               and self.incoming.recv_bytes() == _READY)
            except (OSError, EOFError):
                return False
        return self._ready and self.alive

    def take_over(self, step: int, local: LocalTorch) -> "RemoteTorch":
        """The torch engine, `step` steps into the run, from now on computed by the child
        (one started without `start`)."""
        params = local.net.flat_params()
        self.ctrl.send((step, params))
        return RemoteTorch(self, step, params)

    def close(self) -> None:
        """Stop the child and wait for it; safe to call twice."""
        self._finalizer()


def _stop(process: subprocess.Popen | None, ctrl: Connection, incoming: Connection) -> None:
    ctrl.close()
    incoming.close()
    if process is not None and process.poll() is None:
        process.terminate()   # it holds nothing worth a goodbye
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _row_bytes(spec: NetworkSpec) -> int:
    """Bytes of one step's row: its loss, gradient and parameters after."""
    return (1 + 2 * spec.n_params) * np.dtype(spec.np_dtype).itemsize


def _chunk_rows(spec: NetworkSpec) -> int:
    """Steps in a full chunk."""
    return max(1, CHUNK_BYTES // _row_bytes(spec))


def _chunk_bytes(spec: NetworkSpec, count: int) -> int:
    """Bytes of a message of `count` steps: the header, then their rows."""
    return _HEADER_BYTES + count * _row_bytes(spec)


def ahead(spec: NetworkSpec, data: Dataset, config: TrainConfig,
          params: np.ndarray) -> "RemoteTorch | None":
    """The torch side of a run of `config` on `data` from the flat parameters `params`, all
    of its steps computed by a helper that starts now; None if it cannot start."""
    helper = TorchHelper(spec, data, config, torch_threads_here(), (0, params))
    if not helper.alive:
        helper.close()
        return None
    return RemoteTorch(helper, 0, params)


class RemoteTorch:
    """The torch side of a Lockstep (see TorchSide) whose steps the helper computes; each
    call of `step` takes the next one, `waiting` says whether it would wait for it. Should
    the helper fail, it goes on in-process."""

    def __init__(self, helper: TorchHelper, step: int, params: np.ndarray):
        self.helper, self.spec = helper, helper.spec
        self.step_reached = step
        self.local: LocalTorch | None = None
        self._last_params = params
        width = 1 + 2 * self.spec.n_params
        self._rows = np.empty((0, width), dtype=self.spec.np_dtype)
        self._buffer = bytearray(_chunk_bytes(self.spec, _chunk_rows(self.spec)))
        self._next = 0

    def step(self, x: np.ndarray, y: np.ndarray,
             lr: float) -> tuple[float, np.ndarray, np.ndarray]:
        if self.local is None and self._next == len(self._rows) and not self._receive():
            self.local = LocalTorch(self.spec, self.params())
            self.helper.close()
        self.step_reached += 1
        if self.local is not None:
            return self.local.step(x, y, lr)
        row = self._rows[self._next]
        self._next += 1
        n = self.spec.n_params
        self._last_params = row[1 + n:]
        return float(row[0]), row[1:1 + n], self._last_params

    def waiting(self) -> bool:
        """Whether the next step's numbers have yet to come from the helper; never blocks."""
        if self.local is not None or self._next < len(self._rows):
            return False
        try:
            return not self.helper.incoming.poll()
        except (OSError, EOFError):
            return False      # `step` will find out and go on in-process

    def _receive(self) -> bool:
        """The next chunk of steps from the helper; False when it has none to give."""
        # the last parameters are a view of the buffer the chunk is read into
        self._last_params = self._last_params.copy()
        try:
            if not self.helper.incoming.poll(SILENCE if self._rows.size else FIRST_SILENCE):
                return False          # stuck: better slow than hung
            size = self.helper.incoming.recv_bytes_into(self._buffer)
        except (OSError, EOFError):
            return False
        first, count = np.frombuffer(self._buffer, dtype=np.int64, count=_HEADER).tolist()
        width = self._rows.shape[1]
        if first != self.step_reached + 1 or size != _chunk_bytes(self.spec, count):
            return False
        self._rows = np.frombuffer(self._buffer, dtype=self._rows.dtype, offset=_HEADER_BYTES,
                                   count=count * width).reshape(count, width)
        self._next = 0
        return True

    def params(self) -> Params:
        if self.local is not None:
            return self.local.params()
        return {name: v.copy() for name, v in unflat(self.spec, self._last_params).items()}


class Handover:
    """Gives a run's torch engine to a helper once the helper is ready: call `poll` before
    each step. Does nothing for runs too short or nets too big to gain from one, unless
    `enabled` says otherwise."""

    def __init__(self, spec: NetworkSpec, data: Dataset, config: TrainConfig, steps: int,
                 threads: int, enabled: bool | None = None):
        wanted = worthwhile(spec, steps) if enabled is None else enabled
        self.helper = TorchHelper(spec, data, config, threads) if wanted else None
        self.remote: RemoteTorch | None = None
        self._countdown = 0

    @property
    def active(self) -> bool:
        """Whether the helper computes the torch steps now."""
        return self.remote is not None and self.remote.local is None

    def poll(self, step: int, lockstep: Lockstep) -> None:
        """Before step `step` + 1: hand the torch engine over if the helper is ready."""
        if self.helper is None or self.remote is not None:
            return
        self._countdown -= 1
        if self._countdown > 0:
            return
        self._countdown = CHECK_EVERY
        if self.helper.ready() and isinstance(lockstep.torch, LocalTorch):
            try:
                self.remote = self.helper.take_over(step, lockstep.torch)
            except OSError:     # it died since it said it was ready
                self.close()
                return
            lockstep.torch = self.remote
        elif not self.helper.alive:
            self.close()

    def close(self) -> None:
        """End the helper; a Lockstep it served goes on in-process."""
        if self.helper is not None:
            self.helper.close()
            self.helper = None


def _serve(incoming: Connection, outgoing: Connection) -> None:
    """The child: import torch while the settings come, then compute the steps asked for
    (from the start that came with them, or from the one sent after it says it is ready)."""
    settings = _read_beside(incoming, "engine.net.reference")
    spec, data, config, threads, start = pickle.loads(settings)
    from engine.net.reference import TorchNet, Trainer, set_torch_threads  # imported by now

    if threads is not None:
        set_torch_threads(threads)
    if start is None:
        outgoing.send_bytes(_READY)
        start = incoming.recv()
    step, params = start
    trainer = Trainer(TorchNet(spec, unflat(spec, params)), data.x, data.y)
    schedule = Schedule(len(data), config)
    full = _chunk_rows(spec)
    chunk = np.empty(_chunk_bytes(spec, full), dtype=np.uint8)
    header = chunk[:_HEADER_BYTES].view(np.int64)
    rows = chunk[_HEADER_BYTES:].view(spec.np_dtype).reshape(full, -1)
    wanted = 8       # the first chunks are small, so the parent hears soon
    while step < schedule.total:
        count = min(wanted, schedule.total - step)
        trainer.steps_into((schedule.batch(step + k + 1) for k in range(count)), config.lr,
                           rows[:count])
        header[:] = step + 1, count
        outgoing.send_bytes(chunk[:_chunk_bytes(spec, count)])
        step += count
        wanted = min(full, wanted * 2)
    incoming.recv_bytes()  # nothing more to send: wait for the parent to go (EOF)


def _read_beside(incoming: Connection, module: str) -> bytes:
    """The next message on `incoming`, read on a thread while `module` is imported here: the
    parent never waits for the import to send (a started helper spends a second on torch's),
    and neither waits for the other. EOFError if the parent went away."""
    message: list[bytes] = []

    def read() -> None:
        with contextlib.suppress(EOFError, OSError):
            message.append(incoming.recv_bytes())

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    importlib.import_module(module)
    reader.join()
    if not message:
        raise EOFError
    return message[0]


def main(argv: list[str]) -> int:
    incoming = Connection(int(argv[0]), writable=False)
    outgoing = Connection(int(argv[1]), readable=False)
    # the parent went away: nothing is left to do
    with contextlib.suppress(EOFError, BrokenPipeError, KeyboardInterrupt):
        _serve(incoming, outgoing)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

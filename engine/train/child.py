"""A whole training run in a process of its own, and the protocol the window speaks with it.

The child is `python -m engine.train.child <fd_in> <fd_out>`, started by engine/train/client.py
with two pipes handed over by file descriptor, as the torch helper (torch_process.py) is. Not
multiprocessing's spawn context: that pickles what it starts and talks through pickles, and
here nothing is pickled; a plain pipe gives the window a file descriptor its event loop can
watch (QSocketNotifier) and leaves the child's stdout and stderr to stray prints and the log.

Frames, both ways: two little-endian uint32 (the header's length, the payload's), a UTF-8 JSON
object (the header), then the payload: the arrays the header lists under "arrays" as
[name, dtype, shape] (dtype "<f8", "<f4" or "<i8"), one after the other in C order. Nothing
read is ever unpickled or evaluated; a frame that does not parse is a ProtocolError.

Commands (parent to child), the header's "cmd":
  start        spec (NetworkSpec.to_dict), config (TrainConfig's fields), mistake (a label or
               null), breakpoints (Breakpoints' fields), snapshot_every, parallel, threads,
               data_dtype, data_name; arrays x, y and params (float64, params flat in
               spec.param_names order), and for engines that have parted start.scratch,
               start.torch (flat) and start.buffer.<name>. Replaces any run the child has.
  run          steps (null: until done); resume is run until done, step is run 1
  pause, stop, breakpoints (Breakpoints' fields), lr (before the first step only: the
  timeline replays every step with the run's one learning rate), state_at (step), drop (end
  the run and its torch helper; the child waits for the next start)
Events (child to parent), the header's "kind":
  ready        total, step, columns: the run is built
  records      array rows: float64, one row per StepRecord in RecordLayout's columns
  snapshot     step; arrays scratch, torch (flat, the spec's dtype), buffer.<name>: every
               SNAPSHOT_EVERY seconds while running, and whenever a run pauses or ends
  state        as snapshot, the answer to state_at
  paused       step, reason: "interrupted" (asked), "steps" (the steps asked for were taken)
               or a breakpoint's sentence; after a breakpoint, a state of the step before
               comes first (the window shows the step that broke from there)
  finished     step: the run has taken all its steps
  error        message, user (an error the user caused: the message is for them), traceback
The child ends on stop, when the pipe from its parent closes, and when its parent dies.
"""

import contextlib
import json
import os
import select
import struct
import sys
import time
import traceback
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import fields
from typing import Any

import numpy as np

from engine.check.mistakes import inject
from engine.errors import UserInputError
from engine.files.datasets import Dataset
from engine.net.params import Params, unflat
from engine.net.spec import NetworkSpec
from engine.train.lockstep import Lockstep, StepRecord, TrainConfig
from engine.train.run import DONE, INTERRUPTED, STEPS, Breakpoints, TrainingRun, run

PREFIX = struct.Struct("<II")
MAX_HEADER = 1 << 20              # bytes of JSON a frame may carry
MAX_PAYLOAD = 1 << 30             # bytes of arrays a frame may carry
DTYPES = {"<f8": np.float64, "<f4": np.float32, "<i8": np.int64}
REPORT_EVERY = 0.03               # s between batches of records: the rate the window draws
SNAPSHOT_EVERY = 0.5              # s between snapshots of the parameters while running
POLL_EVERY = 0.005                # s between looks at the commands while running
IDLE_CHECK = 0.5                  # s between looks at the parent while waiting for commands
READ_BYTES = 1 << 20
FIXED_COLUMNS = ("step", "epoch", "epoch_end", "loss_scratch", "loss_torch", "drift")


class ProtocolError(ValueError):
    """Bytes that are not a frame of this protocol, or a frame that is not a message of it."""


class BrokenStream(ProtocolError):
    """A pipe whose bytes stopped being frames: nothing after can be trusted."""


def encode(header: Mapping[str, Any], arrays: Mapping[str, np.ndarray] | None = None) -> bytes:
    """One frame: `header` (JSON-able) and `arrays`, listed in the header as they go."""
    arrays = arrays or {}
    parts, listed = [], []
    for name, value in arrays.items():
        value = np.ascontiguousarray(value)
        dtype = value.dtype.newbyteorder("<").str
        if dtype not in DTYPES:
            raise ValueError(f"{name}: arrays of {value.dtype} do not travel")
        listed.append([name, dtype, list(value.shape)])
        parts.append(value.astype(dtype, copy=False).tobytes())
    text = json.dumps({**header, "arrays": listed}, allow_nan=False).encode()
    payload = b"".join(parts)
    return PREFIX.pack(len(text), len(payload)) + text + payload


def decode(text: bytes, payload: bytes) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """The header and the arrays of one frame, from its two parts; ProtocolError if either is
    not what the protocol says."""
    try:
        header = json.loads(text.decode())
    except (UnicodeDecodeError, ValueError) as e:
        raise ProtocolError(f"the header is not JSON ({e})") from None
    if not isinstance(header, dict):
        raise ProtocolError("the header is not a JSON object")
    listed = header.pop("arrays", [])
    arrays: dict[str, np.ndarray] = {}
    offset = 0
    try:
        for name, dtype, shape in listed:
            if dtype not in DTYPES or not isinstance(name, str) or \
                    not all(isinstance(n, int) and n >= 0 for n in shape):
                raise ProtocolError(f"array {name!r}: {dtype} {shape} is not an array of ours")
            count = int(np.prod(shape, dtype=np.int64))
            size = count * np.dtype(dtype).itemsize
            if offset + size > len(payload):
                raise ProtocolError(f"array {name!r} runs past the payload's {len(payload)} "
                                    "bytes")
            arrays[name] = np.frombuffer(payload, dtype=dtype, count=count,
                                         offset=offset).reshape(shape)
            offset += size
    except (TypeError, ValueError) as e:
        if isinstance(e, ProtocolError):
            raise
        raise ProtocolError(f"the list of arrays is malformed ({e})") from None
    if offset != len(payload):
        raise ProtocolError(f"{len(payload) - offset} bytes of payload belong to no array")
    return header, arrays


class FrameReader:
    """Frames out of a byte stream that comes in pieces; a partial frame waits for the rest."""

    def __init__(self) -> None:
        self._buffer = bytearray()

    def feed(self, data: bytes) -> list[tuple[dict[str, Any], dict[str, np.ndarray]]]:
        """The frames `data` completes, in order; BrokenStream once it has stopped being
        frames."""
        self._buffer += data
        frames = []
        while len(self._buffer) >= PREFIX.size:
            n_text, n_payload = PREFIX.unpack_from(self._buffer)
            if n_text > MAX_HEADER or n_payload > MAX_PAYLOAD:
                raise BrokenStream(f"a frame of {n_text} + {n_payload} bytes (at most "
                                   f"{MAX_HEADER} + {MAX_PAYLOAD})")
            end = PREFIX.size + n_text + n_payload
            if len(self._buffer) < end:
                break
            text = bytes(self._buffer[PREFIX.size:PREFIX.size + n_text])
            payload = bytes(self._buffer[PREFIX.size + n_text:end])
            del self._buffer[:end]
            try:
                frames.append(decode(text, payload))
            except ProtocolError as e:
                raise BrokenStream(str(e)) from None
        return frames

    @property
    def pending(self) -> int:
        """Bytes of a frame not complete yet."""
        return len(self._buffer)


def write_all(fd: int, data: bytes) -> None:
    """Write all of `data` to a blocking `fd` (a pipe may take it in parts)."""
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


class RecordLayout:
    """The columns of a record row of a run of `spec` with batches of up to `batch` rows:
    FIXED_COLUMNS, the gradient difference of each parameter in spec.param_names order, then
    the batch's dataset rows (-1 where a shorter last batch has none). float64 holds each
    field exactly: the losses and differences are Python floats, the rest small integers."""

    def __init__(self, spec: NetworkSpec, batch: int):
        self.names = spec.param_names
        self.batch = batch
        self.columns = (*FIXED_COLUMNS, *(f"grad_diff.{n}" for n in self.names),
                        *(f"sample.{i}" for i in range(batch)))

    def rows(self, records: Sequence[StepRecord]) -> np.ndarray:
        """(len(records), len(columns)) float64."""
        rows = np.full((len(records), len(self.columns)), -1.0)
        start = len(FIXED_COLUMNS) + len(self.names)
        for row, r in zip(rows, records, strict=True):
            row[:start] = (r.step, r.epoch, r.epoch_end, r.loss_scratch, r.loss_torch, r.drift,
                           *(r.grad_diff[n] for n in self.names))
            row[start:start + len(r.samples)] = r.samples
        return rows

    def records(self, rows: np.ndarray) -> "RecordRows":
        """The StepRecords `rows` (as `rows` gives them) stand for."""
        return RecordRows(self, rows)

    def record(self, row: Sequence[float]) -> StepRecord:
        start = len(FIXED_COLUMNS)
        samples = start + len(self.names)
        return StepRecord(
            step=int(row[0]), epoch=int(row[1]), epoch_end=bool(row[2]),
            loss_scratch=row[3], loss_torch=row[4], drift=row[5],
            grad_diff=dict(zip(self.names, row[start:samples], strict=True)),
            samples=tuple(int(s) for s in row[samples:] if s >= 0))


class RecordRows(Sequence[StepRecord]):
    """StepRecords held as the rows they came in, each made when it is read: the window takes
    in a batch of hundreds of steps 30 times a second and reads the rows as columns
    (`table`), seldom as records."""

    def __init__(self, layout: RecordLayout, rows: np.ndarray):
        self.layout, self.rows = layout, rows

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, index):
        if isinstance(index, slice):
            return [self.layout.record(row) for row in self.rows[index].tolist()]
        return self.layout.record(self.rows[index].tolist())

    def __iter__(self):
        return (self.layout.record(row) for row in self.rows.tolist())

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Sequence) and list(self) == list(other)

    __hash__ = None

    def table(self, names: Sequence[str]) -> np.ndarray:
        """(n, 5 + len(names)) float64: step, loss_scratch, loss_torch, drift, epoch_end and
        the gradient difference of each parameter in `names`, as RunHistory reads them."""
        columns = self.layout.columns
        picked = [columns.index(c) for c in ("step", "loss_scratch", "loss_torch", "drift",
                                             "epoch_end")]
        picked += [columns.index(f"grad_diff.{n}") for n in names]
        # row-major, as a table made of records is: numpy's sums depend on the layout
        return np.ascontiguousarray(self.rows[:, picked])


def flat_params(spec: NetworkSpec, params: Mapping[str, np.ndarray]) -> np.ndarray:
    """`params` as one vector in spec.param_names order, in their own dtype."""
    return np.concatenate([np.ravel(params[n]) for n in spec.param_names])


def state_arrays(spec: NetworkSpec, scratch: Params, theirs: Params,
                 buffers: Params) -> dict[str, np.ndarray]:
    """The arrays of a snapshot or a state: both engines flat, the gradient sums by name."""
    return {"scratch": flat_params(spec, scratch), "torch": flat_params(spec, theirs),
            **{f"buffer.{n}": v for n, v in buffers.items()}}


def unflat_copy(spec: NetworkSpec, vector: np.ndarray, dtype: type[np.floating]) -> Params:
    """The parameters a flat vector holds, as arrays of their own in `dtype`."""
    if vector.shape != (spec.n_params,):
        raise ProtocolError(f"{vector.shape[0] if vector.ndim == 1 else vector.shape} "
                            f"parameters for a network of {spec.n_params}")
    return {k: np.array(v, dtype=dtype) for k, v in unflat(spec, vector).items()}


def buffers_of(arrays: Mapping[str, np.ndarray], prefix: str = "buffer.") -> Params:
    return {k.removeprefix(prefix): v.copy() for k, v in arrays.items() if k.startswith(prefix)}


class ParentGone(Exception):
    """The parent closed its pipe or died: nothing is left to do."""


class Child:
    """The child's side: builds a run from a start command and obeys the others. Also the
    RunState engine.train.run.run asks between steps (`interrupted`, `report`)."""

    def __init__(self, fd_in: int, fd_out: int):
        self.fd_in, self.fd_out = fd_in, fd_out
        self.parent = os.getppid()
        self.reader = FrameReader()
        self.commands: deque[tuple[dict[str, Any], dict[str, np.ndarray]]] = deque()
        self.training: TrainingRun | None = None
        self.layout: RecordLayout | None = None
        self.breakpoints = Breakpoints()
        self.parallel: bool | None = None
        self.stopping = False
        self._interrupt = self._restart = False
        self._next_poll = self._next_snapshot = 0.0

    # the pipes
    def send(self, header: Mapping[str, Any], arrays: Mapping[str, np.ndarray] | None = None
             ) -> None:
        write_all(self.fd_out, encode(header, arrays))

    def _read(self, timeout: float) -> None:
        """Take in what the parent has sent, waiting up to `timeout` s for something."""
        if os.getppid() != self.parent:
            raise ParentGone
        readable, _, _ = select.select([self.fd_in], [], [], timeout)
        if not readable:
            return
        data = os.read(self.fd_in, READ_BYTES)
        if not data:
            raise ParentGone
        self.commands.extend(self.reader.feed(data))

    def serve(self) -> None:
        """Obey commands until stop."""
        while not self.stopping:
            if not self.commands:
                self._read(IDLE_CHECK)
                continue
            self._obey(*self.commands.popleft())

    def _obey(self, command: dict[str, Any], arrays: dict[str, np.ndarray]) -> None:
        try:
            self._dispatch(command, arrays)
        except (ParentGone, BrokenStream, BrokenPipeError):
            raise
        except UserInputError as e:
            self._error(command, str(e), user=True)
        except Exception as e:   # a bug of ours: the window logs it and lives on
            self._error(command, f"{type(e).__name__}: {e}", user=False,
                        traceback=traceback.format_exc())

    def _error(self, command: Mapping[str, Any], message: str, user: bool,
               traceback: str = "") -> None:
        self.send({"kind": "error", "cmd": str(command.get("cmd")), "message": message,
                   "user": user, "traceback": traceback})

    def _dispatch(self, command: dict[str, Any], arrays: dict[str, np.ndarray]) -> None:
        name = command.get("cmd")
        if name == "start":
            self._start(command, arrays)
        elif name in ("run", "resume", "step"):
            steps = {"run": command.get("steps"), "resume": None, "step": 1}[name]
            self._run(steps)
        elif name == "pause":
            pass   # nothing runs: a pause that came too late has nothing to pause
        elif name == "stop":
            self.stopping = True
        elif name == "drop":
            self.close()
            self.training = None
        elif name == "breakpoints":
            self.breakpoints = _breakpoints(command)
        elif name == "lr":
            self._set_lr(command.get("lr"))
        elif name == "state_at":
            self._send_state(command.get("step"))
        else:
            raise ProtocolError(f"unknown command {name!r}")

    def _start(self, command: dict[str, Any], arrays: dict[str, np.ndarray]) -> None:
        from engine.net.reference import set_torch_threads  # torch loads when a run starts

        self.close()
        spec = NetworkSpec.from_dict(command["spec"])
        known = {f.name for f in fields(TrainConfig)}
        config = TrainConfig(**{k: v for k, v in command["config"].items() if k in known})
        dtype = DTYPES[command.get("data_dtype", "<f8")]
        x, y = arrays["x"], arrays["y"]
        if x.ndim != 2 or y.ndim != 2 or len(x) != len(y) or x.shape[1] != spec.n_inputs \
                or y.shape[1] != spec.n_outputs:
            raise ProtocolError(f"data x {x.shape}, y {y.shape} for {spec.describe()}")
        data = Dataset(x.astype(dtype), y.astype(dtype), command.get("data_name", "data"))
        params = unflat_copy(spec, arrays["params"], spec.np_dtype)
        label = command.get("mistake")
        mistake = inject(spec, label) if label else None
        lockstep = None
        if "start.scratch" in arrays:
            lockstep = Lockstep.from_params(
                spec, unflat_copy(spec, arrays["start.scratch"], spec.np_dtype),
                unflat_copy(spec, arrays["start.torch"], spec.np_dtype), data, mistake,
                buffers_of(arrays, "start.buffer.") or None)
            params = lockstep.params()[0]
        set_torch_threads(int(command.get("threads", 1)))
        self.breakpoints = _breakpoints(command.get("breakpoints", {}))
        self.parallel = command.get("parallel")
        self.training = TrainingRun(spec, params, data, config,
                                    snapshot_every=int(command.get("snapshot_every", 256)),
                                    mistake=mistake, lockstep=lockstep, parallel=self.parallel)
        self.layout = RecordLayout(spec, min(config.batch_size, len(data)))
        self.send({"kind": "ready", "total": self.training.total, "step": self.training.step,
                   "columns": list(self.layout.columns)})

    def _set_lr(self, lr: object) -> None:
        training = self._training()
        if training.step:
            raise UserInputError("the learning rate of a run can change only before its first "
                                 "step; reset the run to train with another")
        config = TrainConfig(**{**{f.name: getattr(training.config, f.name)
                                   for f in fields(TrainConfig)}, "lr": lr})
        training.close()
        self.training = TrainingRun(training.spec, training.timeline.snapshots[0][0],
                                    training.data, config,
                                    snapshot_every=training.timeline.every,
                                    mistake=training.mistake, lockstep=training.lockstep,
                                    parallel=self.parallel)

    def _training(self) -> TrainingRun:
        if self.training is None:
            raise ProtocolError("no run has started")
        return self.training

    def _run(self, steps: int | None) -> None:
        training = self._training()
        if training.done:
            self._send_snapshot()
            self.send({"kind": "finished", "step": training.step})
            return
        self._interrupt = False
        while True:
            self._restart = False
            before = training.step
            outcome = run(training, self, steps, self.breakpoints, REPORT_EVERY)
            if steps is not None:
                steps -= training.step - before
            # new breakpoints: the loop goes on with them, unseen by the parent
            if not (outcome == INTERRUPTED and self._restart and not self._interrupt):
                break
        if self.stopping:
            return
        self._send_snapshot()
        if outcome == DONE:
            self.send({"kind": "finished", "step": training.step})
            return
        if outcome not in (INTERRUPTED, STEPS):
            self._send_state(training.step - 1)   # a breakpoint: where the broken step began
        self.send({"kind": "paused", "step": training.step, "reason": outcome})

    # the RunState engine.train.run.run asks
    def interrupted(self) -> bool:
        now = time.monotonic()
        if now >= self._next_poll:
            self._next_poll = now + POLL_EVERY
            self._read(0)
            while self.commands and not (self._interrupt or self._restart):
                command, arrays = self.commands[0]
                name = command.get("cmd")
                if name == "pause":
                    self._interrupt = True
                elif name == "stop":
                    self._interrupt = self.stopping = True
                elif name == "start":
                    self._interrupt = True
                    break          # left for the loop in serve, once this run has paused
                elif name == "breakpoints":
                    self.breakpoints = _breakpoints(command)
                    self._restart = True
                elif name == "state_at":
                    self._obey(command, arrays)
                elif name == "lr":
                    self._error(command, "the learning rate cannot change while a run runs",
                                user=True)
                # run, resume, step: it runs already
                self.commands.popleft()
        return self._interrupt or self._restart

    def report(self, records: list[StepRecord]) -> None:
        self.send({"kind": "records"}, {"rows": self.layout.rows(records)})
        if time.monotonic() >= self._next_snapshot:
            self._send_snapshot()

    def _send_snapshot(self) -> None:
        training = self._training()
        self._next_snapshot = time.monotonic() + SNAPSHOT_EVERY
        arrays = state_arrays(training.spec, *training.lockstep.params(),
                              training.lockstep.buffers())
        self.send({"kind": "snapshot", "step": training.step}, arrays)

    def _send_state(self, step: object) -> None:
        training = self._training()
        if not isinstance(step, int) or isinstance(step, bool):
            raise ProtocolError(f"state_at needs a step, not {step!r}")
        state = training.timeline.state_at(step)
        self.send({"kind": "state", "step": step}, state_arrays(training.spec, *state))

    def close(self) -> None:
        """End the run's torch helper, if any."""
        if self.training is not None:
            self.training.close()


def _breakpoints(given: Mapping[str, Any]) -> Breakpoints:
    known = {f.name for f in fields(Breakpoints)}
    return Breakpoints(**{k: v for k, v in given.items() if k in known})


def main(argv: list[str]) -> int:
    child = Child(int(argv[0]), int(argv[1]))
    # torch loads now, while the child waits for its first run: a window that starts its
    # child early (TrainController.warm) has it ready when the user presses Start
    import engine.net.reference  # noqa: F401
    try:
        # the parent went away, or broke the stream it sends: nothing is left to do
        with contextlib.suppress(ParentGone, BrokenPipeError, KeyboardInterrupt):
            try:
                child.serve()
            except BrokenStream as e:
                child._error({}, f"the training process received a malformed command: {e}",
                             user=False)
                return 1
    finally:
        child.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

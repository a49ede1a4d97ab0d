"""The window's side of a training run in its own process (engine/train/child.py): Qt-free.

`TrainingClient.start` starts the child and hands it a run; commands go down with `send` (or
the methods named after them), and `receive` gives what has come back, without ever waiting:
both pipes are non-blocking, a partial frame waits in a buffer for the rest, and a command
the pipe cannot take yet waits for the next `send` or `receive`. `fileno` is the pipe to watch
for something to read (a QSocketNotifier). A child that dies, hangs or sends what is not a
frame is reported once, as an Exited message saying why; the client never raises for it.
"""

import contextlib
import os
import signal
import subprocess
import sys
import time
import weakref
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from engine.check.mistakes import Injection
from engine.files.datasets import Dataset
from engine.net.params import Params
from engine.net.spec import NetworkSpec
from engine.train.child import (
    DTYPES,
    READ_BYTES,
    BrokenStream,
    FrameReader,
    ProtocolError,
    RecordLayout,
    RecordRows,
    buffers_of,
    encode,
    flat_params,
    unflat_copy,
)
from engine.train.launch import child_env, enlarge
from engine.train.lockstep import TrainConfig
from engine.train.run import Breakpoints
from engine.train.timeline import State

SILENCE = 10.0        # s without a frame from a child that is running before it counts as hung
STARTING = 120.0      # s a child may take to import torch and build its run, on a loaded machine
CLOSE_WAIT = 2.0      # s a stopped child has to exit before it is killed
MAX_READ = 16 * READ_BYTES   # bytes one `receive` takes in: the caller's event loop goes on
RUNS = ("run", "resume", "step")      # commands after which records or a pause are due
ANSWERED = ("start", "state_at")      # commands a message answers


@dataclass(frozen=True)
class Ready:
    """The child has built the run: `total` steps, `step` taken so far."""

    total: int
    step: int


@dataclass(frozen=True)
class Records:
    """A batch of steps: as StepRecords (made as they are read), and as the rows they came in
    (float64)."""

    records: RecordRows
    rows: np.ndarray


@dataclass(frozen=True)
class Snapshot:
    """Both engines' parameters and the scratch engine's gradient sums after `step` steps."""

    step: int
    scratch: Params
    torch: Params
    buffers: Params

    @property
    def state(self) -> State:
        return self.scratch, self.torch, self.buffers


@dataclass(frozen=True)
class StateAt(Snapshot):
    """The answer to `state_at`: the timeline's exact state at `step`."""


@dataclass(frozen=True)
class Paused:
    """The run paused after `step` steps: `reason` is "interrupted", "steps" or a
    breakpoint's sentence, as engine.train.run.run returns them."""

    step: int
    reason: str


@dataclass(frozen=True)
class Finished:
    """The run has taken all its steps."""

    step: int


@dataclass(frozen=True)
class Failed:
    """A command failed: `user` True for an error the user caused (the message is for them),
    else a bug of ours whose `traceback` goes to the log. The child lives on."""

    message: str
    user: bool
    traceback: str
    command: str    # the command that failed ("start", "run", ...)


@dataclass(frozen=True)
class Exited:
    """The child is gone: `message` says why ("the training process stopped: ..."), `code` is
    its exit status (negative: the signal that ended it). `expected` after stop or close."""

    message: str
    code: int | None
    expected: bool


Message = Ready | Records | Snapshot | StateAt | Paused | Finished | Failed | Exited


class TrainingClient:
    """One child process, running one training run at a time. `command` is what to run (the
    child by default); it gets the two file descriptors as its last arguments. `silence`: the
    seconds a running child may stay silent before it counts as hung and is ended. `nice`: how
    much lower the child's scheduling priority is than ours (its torch helper inherits it): a
    window gives its child a lower one, so that on a machine whose cores the run keeps busy the
    window is never kept waiting for a core."""

    def __init__(self, command: Sequence[str] | None = None, silence: float = SILENCE,
                 nice: int = 0):
        self.silence = silence
        to_child, fd_out = os.pipe()
        fd_in, from_child = os.pipe()
        enlarge(from_child)
        command = list(command or [sys.executable, "-m", "engine.train.child"])
        try:
            self.process = subprocess.Popen(
                [*command, str(to_child), str(from_child)], pass_fds=(to_child, from_child),
                stdin=subprocess.DEVNULL, env=child_env(),
                # out of the terminal's process group: Ctrl-C goes to the window, which stops
                # the child itself; the child watches its parent should it die. A process
                # group, not a session: where the kernel groups processes by session
                # (autogroup), a new session would share the cores equally with the window's
                # whatever its nice value
                process_group=0)
        finally:
            os.close(to_child)
            os.close(from_child)
        if nice:
            with contextlib.suppress(OSError):   # it went already: receive will say so
                os.setpriority(os.PRIO_PROCESS, self.process.pid,
                               os.getpriority(os.PRIO_PROCESS, 0) + nice)
        os.set_blocking(fd_in, False)
        os.set_blocking(fd_out, False)
        self._fds = [fd_in, fd_out]   # shared with the finalizer: each closed once
        self.pid = self.process.pid
        self._reader = FrameReader()
        self._unsent = bytearray()
        self._spec: NetworkSpec | None = None
        self._layout: RecordLayout | None = None
        # the runs asked for whose Ready has not come: records before it are the old run's
        self._coming: list[tuple[NetworkSpec, RecordLayout]] = []
        self._eof = False
        self._verdict: str | None = None      # why we ended it, when we did
        self._expected = False
        self._exited: Exited | None = None
        # what the child owes us: a run's records (running), answers to start and state_at
        self._running = False
        self._asked: list[str] = []
        self._last_word = time.monotonic()
        self._finalizer = weakref.finalize(self, _reap, self.process, self._fds)

    @classmethod
    def start(cls, spec: NetworkSpec, params: Mapping[str, np.ndarray], data: Dataset,
              config: TrainConfig, mistake: Injection | str | None = None,
              breakpoints: Breakpoints | None = None, start: State | None = None,
              snapshot_every: int = 256, parallel: bool | None = None, threads: int = 1,
              command: Sequence[str] | None = None, silence: float = SILENCE
              ) -> "TrainingClient":
        """A child running a run of `config` on `data` from `params` (engine layout), the
        scratch engine making `mistake` (a label such as "dropped_factor_2@2"; None: right),
        or from `start` (scratch, torch, buffers) for engines that have parted. `threads`:
        torch's intra-op threads in the child. It waits for `run`."""
        client = cls(command, silence)
        client.begin(spec, params, data, config, mistake, breakpoints, start, snapshot_every,
                     parallel, threads)
        return client

    def begin(self, spec: NetworkSpec, params: Mapping[str, np.ndarray], data: Dataset,
              config: TrainConfig, mistake: Injection | str | None = None,
              breakpoints: Breakpoints | None = None, start: State | None = None,
              snapshot_every: int = 256, parallel: bool | None = None, threads: int = 1
              ) -> None:
        """A new run in the same child (see `start`), replacing the one it had."""
        arrays = {"x": data.x.astype(np.float64), "y": data.y.astype(np.float64),
                  "params": flat_params(spec, params).astype(np.float64)}
        if start is not None:
            scratch, theirs, buffers = start
            arrays["start.scratch"] = flat_params(spec, scratch).astype(np.float64)
            arrays["start.torch"] = flat_params(spec, theirs).astype(np.float64)
            arrays.update({f"start.buffer.{k}": v for k, v in buffers.items()})
        self._coming.append((spec, RecordLayout(spec, min(config.batch_size, len(data)))))
        if isinstance(mistake, Injection):
            mistake = mistake.label
        self.send({"cmd": "start", "spec": spec.to_dict(), "config": asdict(config),
                   "mistake": mistake, "breakpoints": asdict(breakpoints or Breakpoints()),
                   "snapshot_every": snapshot_every, "parallel": parallel, "threads": threads,
                   "data_dtype": data.x.dtype.newbyteorder("<").str, "data_name": data.name},
                  arrays)

    # commands
    def send(self, command: Mapping[str, Any], arrays: Mapping[str, np.ndarray] | None = None
             ) -> None:
        """Queue `command` for the child and write what the pipe takes now; never waits.
        Commands to a child that is gone are dropped (receive says it is gone)."""
        if not self.alive:
            return
        self._unsent += encode(command, arrays)
        name = command.get("cmd")
        if name in RUNS or name in ANSWERED:
            if not self._expecting:
                self._last_word = time.monotonic()   # silence counts from the ask
            if name in RUNS:
                self._running = True
            else:
                self._asked.append(name)
        self._flush()

    @property
    def _expecting(self) -> bool:
        return self._running or bool(self._asked)

    def run(self, steps: int | None = None) -> None:
        """Run `steps` steps (None: until the run is done, a breakpoint or a pause)."""
        self.send({"cmd": "run", "steps": steps})

    def resume(self) -> None:
        self.send({"cmd": "resume"})

    def step(self) -> None:
        self.send({"cmd": "step"})

    def pause(self) -> None:
        self.send({"cmd": "pause"})

    def set_breakpoints(self, breakpoints: Breakpoints) -> None:
        self.send({"cmd": "breakpoints", **asdict(breakpoints)})

    def set_lr(self, lr: float) -> None:
        """Before the run's first step only (else a Failed message says why)."""
        self.send({"cmd": "lr", "lr": lr})

    def state_at(self, step: int) -> None:
        """Ask for the state after `step` steps; a StateAt message answers."""
        self.send({"cmd": "state_at", "step": step})

    def stop(self) -> None:
        """Ask the child to end the run and exit; an Exited message (expected) follows."""
        self._expected = True
        self.send({"cmd": "stop"})

    def drop(self) -> None:
        """End the run (and its torch helper); the child waits for the next `begin`."""
        self.send({"cmd": "drop"})

    def fileno(self) -> int:
        """The pipe from the child, readable when `receive` has something to take in (-1
        once the child is gone)."""
        return self._fds[0]

    def write_fileno(self) -> int:
        """The pipe to the child, writable when `receive` (or `send`) can hand it more of the
        commands not sent yet (`unsent`); -1 once the child is gone."""
        return self._fds[1]

    @property
    def alive(self) -> bool:
        """Whether the child may still answer (False once an Exited message is due)."""
        return self._verdict is None and not self._eof and self.process.poll() is None

    @property
    def exit_reason(self) -> str | None:
        """Why the child is gone ("the training process stopped: ..."); None while it runs."""
        return self._exited.message if self._exited else None

    @property
    def unsent(self) -> int:
        """Bytes of commands the pipe has not taken yet (a watcher of writability may
        call `receive` until it is 0)."""
        return len(self._unsent)

    # what comes back
    def receive(self) -> list[Message]:
        """What the child has sent since the last call, in order; never waits, never raises
        for anything the child does. The last message of a child that is gone is Exited."""
        if self._exited is not None:
            return []
        messages: list[Message] = []
        self._flush()
        self._take_in(messages, MAX_READ)
        patience = STARTING if "start" in self._asked else self.silence
        if self._verdict is None and self._expecting and \
                time.monotonic() - self._last_word > patience:
            self._end(f"it stopped answering (no word in {patience:g} s) and was ended")
        if self.process.poll() is not None:
            self._take_in(messages, None)   # what it wrote before it went: up to the EOF
            messages.append(self._exit())
        return messages

    def _take_in(self, messages: list[Message], most: int | None) -> None:
        """Read what the pipe holds (up to `most` bytes) and add the messages it completes."""
        taken = 0
        while self._verdict is None and not self._eof and (most is None or taken < most):
            try:
                data = os.read(self._fds[0], READ_BYTES)
            except BlockingIOError:
                return
            except OSError as e:
                self._end(f"its pipe failed ({e})")
                return
            if not data:
                self._eof = True
                return
            taken += len(data)
            self._last_word = time.monotonic()
            try:
                for frame in self._reader.feed(data):
                    messages.append(self._note(self._message(*frame)))
            except ProtocolError as e:
                self._end(f"it sent a malformed message ({e})")

    def _note(self, message: Message) -> Message:
        """Keep track of what the child still owes us."""
        if isinstance(message, Records):
            self._running = True
        elif isinstance(message, Paused | Finished):
            self._running = False
        elif isinstance(message, Ready | StateAt):
            self._answered("start" if isinstance(message, Ready) else "state_at")
        elif isinstance(message, Failed):
            self._answered(message.command)
            if message.command == "start" and self._coming:
                self._coming.pop(0)
            if message.command in RUNS:
                self._running = False
        return message

    def _answered(self, name: str) -> None:
        if name in self._asked:
            self._asked.remove(name)

    def _message(self, header: dict[str, Any], arrays: dict[str, np.ndarray]) -> Message:
        kind = header.get("kind")
        try:
            if kind in ("records", "snapshot", "state") and self._layout is None:
                raise BrokenStream(f"a {kind!r} message before any run was ready")
            if kind == "records":
                rows = arrays["rows"]
                if rows.ndim != 2 or rows.shape[1] != len(self._layout.columns):
                    raise BrokenStream(f"records of shape {rows.shape}, not (n, "
                                       f"{len(self._layout.columns)})")
                rows = rows.copy()
                return Records(self._layout.records(rows), rows)
            if kind in ("snapshot", "state"):
                dtype = self._spec.np_dtype
                made = StateAt if kind == "state" else Snapshot
                return made(int(header["step"]), unflat_copy(self._spec, arrays["scratch"], dtype),
                            unflat_copy(self._spec, arrays["torch"], dtype), buffers_of(arrays))
            if kind == "ready":
                if not self._coming:
                    raise BrokenStream("a run is ready that was never asked for")
                self._spec, self._layout = self._coming.pop(0)
                if tuple(header["columns"]) != self._layout.columns:
                    raise BrokenStream(f"records with columns {header['columns']}")
                return Ready(int(header["total"]), int(header["step"]))
            if kind == "paused":
                return Paused(int(header["step"]), str(header["reason"]))
            if kind == "finished":
                return Finished(int(header["step"]))
            if kind == "error":
                return Failed(str(header["message"]), bool(header["user"]),
                              str(header.get("traceback", "")), str(header.get("cmd", "")))
        except (KeyError, TypeError, ValueError, AttributeError) as e:
            if isinstance(e, ProtocolError):
                raise
            raise BrokenStream(f"a {kind!r} message without what it needs ({e!r})") from None
        raise BrokenStream(f"an unknown kind of message, {kind!r}")

    def _flush(self) -> None:
        while self._unsent and self.alive:
            try:
                written = os.write(self._fds[1], self._unsent)
            except BlockingIOError:
                return
            except OSError:        # BrokenPipeError: it is gone, and receive will say so
                self._unsent.clear()
                return
            del self._unsent[:written]

    def _exit(self) -> Exited:
        """The message saying why the child, now exited, is gone; the pipes close."""
        code = self.process.returncode
        if self._verdict is not None:
            message = f"the training process stopped: {self._verdict}"
        elif code == 0:
            message = "the training process stopped" + ("" if self._expected
                                                        else ": it exited unasked")
        elif code < 0:
            message = (f"the training process stopped: it was killed by signal {-code} "
                       f"({_signal_name(-code)})")
        else:
            message = f"the training process stopped: it exited with code {code}"
        self._exited = Exited(message, code, self._expected and self._verdict is None)
        self._finalizer()
        return self._exited

    def _end(self, verdict: str) -> None:
        """Kill the child for `verdict`; it is reaped by `_watch` (SIGKILL takes no time)."""
        self._verdict = verdict
        if self.process.poll() is None:
            self.process.kill()
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(timeout=1)

    def close(self) -> None:
        """Stop the child and reap it: asked first, killed after CLOSE_WAIT s. Safe to call
        twice; the only call that may wait."""
        if self._exited is not None:
            return
        self._expected = True
        if self.process.poll() is None:
            self.send({"cmd": "stop"})
            # a child writing to a pipe nobody reads would never read the stop: it ends at
            # its next write instead
            os.close(self._fds[0])
            self._fds[0] = -1
            try:
                self.process.wait(timeout=CLOSE_WAIT)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._exited = Exited("the training process stopped", self.process.returncode, True)
        self._finalizer()


def _reap(process: subprocess.Popen, fds: list[int]) -> None:
    """Close the pipes, kill and reap the child: the last of every client, and what close
    does for a client dropped without it."""
    for i, fd in enumerate(fds):
        if fd >= 0:
            os.close(fd)
            fds[i] = -1
    if process.poll() is None:
        process.kill()
        process.wait()


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return "unknown"


__all__ = ["DTYPES", "Exited", "Failed", "Finished", "Message", "Paused", "Ready", "Records",
           "Snapshot", "StateAt", "TrainingClient"]

"""The process a user's own backpropagation runs in (`python -m engine.usercode_child
IN OUT [PARENT]`): the one place the explorer runs code, and only the file the user chose. It
ends when process PARENT does.

It reads one request frame from IN (engine.train.child's frames: a JSON header, arrays that are
never pickles): the file, the function's name, the limits, the parameters by name, the samples
x (N, n0) and y (N, nL), and the stages' sizes. It lowers its own limits (address space, size
of a file it writes) and imports the file as a module.

With two samples or more it first calls the function once with the whole batch, x (N, n0) and
y (N, nL) (engine/usercode_batch.py reads whether the return holds the samples), then the
file's stages(params, x, y) likewise when it defines one. A call that is not taken, for
whatever reason, leaves no trace: what it printed is dropped, and the file is imported afresh
so that globals it changed do not reach the calls that follow. Those call the function on each
sample, always with fresh copies of the parameters (a function that changes them in place
cannot change the next sample's).

It writes to OUT "ready", one "batch" frame for each call with the whole batch (taken or not,
and the sentence saying so) and "imported" after a fresh import, each saying what comes next;
then one "sample" frame per sample with the arrays returned, by name (and the stage values),
then "done"; or one "error" frame saying what went wrong, with the traceback's frames in the
user's file. What the code prints goes to this process's stdout and stderr, which the parent
points at a file and reads a bounded part of. Nothing here imports torch: the user's function
runs beside numpy only.
"""

import contextlib
import importlib.util
import io
import os
import resource
import signal
import sys
import traceback
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from engine.check.stage_check import STAGES
from engine.train.child import FrameReader, encode, write_all
from engine.usercode_batch import (
    BatchReading,
    raised,
    read_gradient_batch,
    read_stage_batch,
    refused,
)

MODULE_NAME = "user_backprop"
PR_SET_PDEATHSIG = 1          # linux/prctl.h
PRINTED_LIMIT = 1 << 20       # bytes of print() output kept; the rest is counted, not written
FRAMES_SHOWN = 6              # of the traceback's frames in the user's file, the last


class CallTimeout(BaseException):
    """SIGALRM: a call ran past its time limit (raised in the user's Python code; code stuck
    in C is ended by the parent)."""


class BoundedText(io.TextIOBase):
    """A stdout that writes up to PRINTED_LIMIT bytes to `stream` and counts the rest: a
    function printing megabytes a sample neither fills the disk nor slows the check."""

    def __init__(self, stream: Any):
        self._stream, self.written, self.dropped = stream, 0, 0

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        data = text.encode("utf-8", "replace")
        room = max(PRINTED_LIMIT - self.written, 0)
        if room:
            self._stream.write(data[:room])
            self._stream.flush()
        self.written += min(room, len(data))
        self.dropped += len(data) - min(room, len(data))
        return len(text)


def _limit(memory_mb: int) -> None:
    """At most `memory_mb` of address space (an allocation past it is a MemoryError) and files
    of at most 64 MB (a write past it an error, not a kill)."""
    with contextlib.suppress(ValueError, OSError):
        size = memory_mb * 2**20
        resource.setrlimit(resource.RLIMIT_AS, (size, size))
    with contextlib.suppress(ValueError, OSError, AttributeError):
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (64 * 2**20, 64 * 2**20))


def _on_alarm(_signum: int, _frame: object) -> None:
    raise CallTimeout


def user_frames(error: BaseException, path: str) -> str:
    """The traceback of `error` as the user reads it: its frames in their file (the last
    FRAMES_SHOWN), then the exception's own line."""
    mine = [f for f in traceback.extract_tb(error.__traceback__)
            if os.path.realpath(f.filename) == path]
    lines = [f'  File "{os.path.basename(f.filename)}", line {f.lineno}, in {f.name}\n'
             + (f"    {f.line.strip()}\n" if f.line else "") for f in mine[-FRAMES_SHOWN:]]
    return "".join(lines) + "".join(traceback.format_exception_only(type(error), error))


def returned_arrays(result: object, function: str) -> tuple[list[str], dict[str, np.ndarray]]:
    """The names and the arrays of what the function returned, or a TypeError saying what it
    returned instead."""
    if not isinstance(result, Mapping):
        raise TypeError(f"{function}() returned {type(result).__name__}, not a dict of "
                        "gradients by parameter name ({'w1': ..., 'b1': ..., ...})")
    names, arrays = [], {}
    for i, (name, value) in enumerate(result.items()):
        if not isinstance(name, str):
            raise TypeError(f"{function}() returned a dict whose key {name!r} is "
                            f"{type(name).__name__}, not a parameter's name such as 'w1'")
        try:
            array = np.asarray(value)
        except Exception as e:   # a ragged list, an object numpy cannot take
            raise TypeError(f"{function}() returned {name!r} as {type(value).__name__}, "
                            f"which is not an array of numbers ({e})") from None
        if array.dtype.kind not in "fiub" or array.dtype.hasobject:
            raise TypeError(f"{function}() returned {name!r} as an array of {array.dtype}, "
                            "not of numbers")
        if array.dtype not in (np.float32, np.float64):
            array = array.astype(np.float32 if array.dtype == np.float16 else np.float64)
        names.append(name)
        arrays[f"g{i}"] = array
    return names, arrays


def serve(fd_in: int, fd_out: int) -> int:
    reader, frames = FrameReader(), []
    while not frames:
        data = os.read(fd_in, 1 << 20)
        if not data:
            return 1
        frames = reader.feed(data)
    request, arrays = frames[0]
    path, function, timeout = request["path"], request["function"], float(request["timeout"])

    def send(header: dict[str, Any], payload: dict[str, np.ndarray] | None = None) -> None:
        write_all(fd_out, encode(header, payload))

    def failed(where: str, error: BaseException, sample: int | None = None,
               which: str = function) -> int:
        text = (f"{which}() did not return within {timeout:g} s"
                if isinstance(error, CallTimeout) else user_frames(error, path))
        send({"kind": "error", "where": where, "sample": sample, "message": text,
              "function": which,
              "exception": type(error).__name__, "memory": isinstance(error, MemoryError)})
        return 0

    _limit(int(request["memory_mb"]))
    sys.stdout = BoundedText(sys.stdout.buffer)
    sys.stderr = sys.stdout
    sys.path.insert(0, str(Path(path).parent))
    signal.signal(signal.SIGALRM, _on_alarm)
    params = {name[len("param."):]: value for name, value in arrays.items()
              if name.startswith("param.")}
    x, y = arrays["x"], arrays["y"]
    try:
        with open(path, "rb") as file:
            source = file.read()
        module = _load(path, source, timeout)
    except BaseException as e:   # anything the user's file raises is theirs to see
        return failed("import", e)
    target = getattr(module, function, None)
    if not callable(target):
        defined = sorted(n for n, v in vars(module).items()
                         if callable(v) and getattr(v, "__module__", None) == MODULE_NAME)
        send({"kind": "error", "where": "function", "sample": None, "exception": "NameError",
              "message": f"{os.path.basename(path)} defines no function {function!r}"
                         + (f" (it defines {', '.join(defined)})" if defined else "")})
        return 0
    # the optional stages(params, x, y) beside it: its intermediate values by stage name
    staged = getattr(module, STAGES, None) if function != STAGES else None
    functions = [(function, "g")] + ([(STAGES, "s")] if callable(staged) else [])
    readers = {"g": lambda found: read_gradient_batch(
                   found, x, y, [value.shape for value in params.values()], function),
               "s": lambda found: read_stage_batch(
                   found, x, y, request["stage_sizes"], int(request["n_layers"]), STAGES)}
    # a batch of one cannot be told from one sample: it is called as one
    tries = functions if len(x) >= 2 and request.get("batch", True) else []
    send({"kind": "ready", "stages": len(functions) > 1, **_next(tries, 0)})
    batched: dict[str, list[dict[str, np.ndarray]]] = {}
    for i, (which, prefix) in enumerate(tries):
        found = _batch_call(which, getattr(module, which), params, x, y, timeout,
                            readers[prefix])
        told = {"kind": "batch", "function": which, "taken": found.samples is not None,
                "note": found.note, "explains": found.explains}
        if found.samples is not None:
            batched[prefix] = found.samples
            send({**told, **_next(tries, i + 1)})
            continue
        # what the call changed (a global sum, a cache) must not reach the calls per sample
        send({**told, "next": "import"})
        try:
            with _held():
                module = _load(path, source, timeout)
        except BaseException as e:
            return failed("import", e)
        send({"kind": "imported", **_next(tries, i + 1)})
    for k in range(len(x)):
        header: dict[str, Any] = {"kind": "sample", "index": k}
        payload: dict[str, np.ndarray] = {}
        for which, prefix in functions:
            if prefix in batched:
                names, returned = _as_frame(batched[prefix][k])
            else:
                copies = {name: value.copy() for name, value in params.items()}
                try:
                    signal.setitimer(signal.ITIMER_REAL, timeout)
                    result = getattr(module, which)(copies, x[k].copy(), y[k].copy())
                    signal.setitimer(signal.ITIMER_REAL, 0)
                    names, returned = returned_arrays(result, which)
                except BaseException as e:   # SystemExit and KeyboardInterrupt included
                    signal.setitimer(signal.ITIMER_REAL, 0)
                    return failed("call", e, k, which)
            header["names" if prefix == "g" else "stage_names"] = names
            payload.update({prefix + key[1:]: value for key, value in returned.items()})
        send(header, payload)
    send({"kind": "done", "printed_dropped": sys.stdout.dropped})
    return 0


def _load(path: str, source: bytes, timeout: float) -> ModuleType:
    """The user's file run as a module (again after a call with the whole batch that was not
    taken, so that globals it changed start afresh), from `source`, read once: a file saved in
    between does not change the code checked. Within the time limit of a call."""
    signal.setitimer(signal.ITIMER_REAL, timeout)
    try:
        spec = importlib.util.spec_from_file_location(MODULE_NAME, path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[MODULE_NAME] = module
        exec(compile(source, path, "exec"), module.__dict__)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
    return module


def _next(tries: list[tuple[str, str]], i: int) -> dict[str, str]:
    """What the child does after this frame, for the parent's time limit and its message."""
    return {"next": "batch", "next_function": tries[i][0]} if i < len(tries) else {
        "next": "samples"}


@contextlib.contextmanager
def _held() -> Iterator[io.BytesIO]:
    """What the code prints meanwhile, held apart from its output: a call with the whole batch
    that is not taken (and the import after it) prints nothing the user sees."""
    shown, held = sys.stdout, io.BytesIO()
    sys.stdout = sys.stderr = BoundedText(held)
    try:
        yield held
    finally:
        sys.stdout = sys.stderr = shown


def _batch_call(which: str, call: Any, params: Mapping[str, np.ndarray], x: np.ndarray,
                y: np.ndarray, timeout: float,
                read: Callable[[dict[str, np.ndarray]], BatchReading]) -> BatchReading:
    """One call of `which` with every sample, within one call's time limit; read by `read`.
    Whatever goes wrong says only that it is called one sample at a time."""
    copies = {name: value.copy() for name, value in params.items()}
    with _held() as held:
        try:
            signal.setitimer(signal.ITIMER_REAL, timeout)
            result = call(copies, x.copy(), y.copy())
            signal.setitimer(signal.ITIMER_REAL, 0)
        except BaseException as e:   # a function for one sample, most likely
            signal.setitimer(signal.ITIMER_REAL, 0)
            if isinstance(e, CallTimeout):
                return refused(which, x, y, f"it did not return within {timeout:g} s")
            return raised(which, x, y, e)
    try:
        names, returned = returned_arrays(result, which)
    except TypeError as e:
        return refused(which, x, y, f"what it returned is not read ({e})")
    found = read({name: returned[f"g{i}"] for i, name in enumerate(names)})
    if found.samples is not None:
        sys.stdout.write(held.getvalue().decode("utf-8", "replace"))
    return found


def _as_frame(sample: Mapping[str, np.ndarray]) -> tuple[list[str], dict[str, np.ndarray]]:
    """One sample of a batch call's return as a per-sample call's reads."""
    return list(sample), {f"g{i}": np.ascontiguousarray(value)
                          for i, value in enumerate(sample.values())}


def _die_with(parent: int) -> None:
    """End this process when `parent` does, even by kill -9 and even while the user's code
    is stuck in compiled code: Linux's parent-death signal, then a look that the parent did
    not go before it was set."""
    with contextlib.suppress(OSError, AttributeError, TypeError):
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent:
        os._exit(1)


def main(argv: list[str]) -> int:
    fd_in, fd_out = int(argv[0]), int(argv[1])
    if len(argv) > 2:
        _die_with(int(argv[2]))
    try:
        return serve(fd_in, fd_out)
    except BrokenPipeError:   # the parent went or ended us
        return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

"""A student's own backpropagation beside torch autograd: run their `gradients(params, x, y)` on
every sample (batch size 1) and compare what it returns with torch's gradients, as `compare`
compares two files. A function written for the whole batch (x (N, n0), y (N, nL)) that returns
each gradient with a leading axis of the N samples is taken at its word in one call
(engine/usercode_batch.py says how strictly); any other is called one sample at a time.

    from engine.usercode import check_code, UserCode
    checked = check_code(UserCode.parse("my_backprop.py"), spec, params, data)
    checked.comparison.report.agree

This is the one place the explorer runs code, and only the file the user names: in a child
process of its own (engine/usercode_child.py), with a time limit per call and a limit
on memory, so an endless loop, a crash or a huge allocation ends in a message. What the code
prints is kept (a bounded part) and shown. Data files are still never executed.

What the function returns is read as a gradient file holding it would be (any name the readers
accept: w1/b1, weight_1, dW1, fc1.weight, ...; a bias as (n,) or (1, n)), in the layout the
parameters were given in, and compared with torch's file of the same samples: the same table,
first disagreement, diagnosis and catalogued mistake as `compare`.
"""

import contextlib
import hashlib
import io
import math
import os
import select
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from engine.check.report import FileComparison, compare_sets, format_report
from engine.check.stage_check import StageComparison, compare_stages
from engine.errors import UserInputError
from engine.export import gradient_sets
from engine.files.datasets import Dataset
from engine.files.gradset import GradientSet, StackedSamples
from engine.files.readers import read_arrays
from engine.net.params import to_layout
from engine.net.spec import NetworkSpec
from engine.train.child import BrokenStream, FrameReader, encode, write_all
from engine.train.launch import child_env
from engine.usercode_batch import (
    BATCH,
    PER_SAMPLE,
    BatchReading,
    raised,
    read_gradient_batch,
    read_stage_batch,
    refused,
    stage_sizes,
)
from engine.usercode_child import returned_arrays

DEFAULT_FUNCTION = "gradients"
TIMEOUT = 10.0           # s a call (or the import of the file) may take
MEMORY_MB = 2048         # the child's address space
OUTPUT_SHOWN = 20_000    # characters of what the code printed that a report shows
START_GRACE = 20.0       # s for the child's own start (Python, numpy) on a loaded machine
# A call with the whole batch has one call's limit, then the samples are called one at a time
# instead; the child's own alarm says so. Only code stuck in C outlasts it: the parent waits
# this many limits before it stops the child.
BATCH_PATIENCE = 2


class CheckCancelled(Exception):
    """Raised by a `started` callback of check_code to stop the check: the child it was told
    of is ended, and the exception reaches check_code's caller."""


class UserCodeError(UserInputError):
    """The user's code could not be run to the end: what happened, in their terms, and what
    it printed before."""

    def __init__(self, message: str, output: str = ""):
        super().__init__(message)
        self.output = output


@dataclass(frozen=True)
class UserCode:
    """A function in a file: FILE.py or FILE.py:NAME (default NAME: gradients)."""

    path: Path
    function: str = DEFAULT_FUNCTION

    @classmethod
    def parse(cls, text: str) -> "UserCode":
        path, colon, name = text.rpartition(":")
        if not colon or not name.isidentifier() or not path:
            path, name = text, DEFAULT_FUNCTION
        return cls(Path(path), name)

    @property
    def label(self) -> str:
        return f"{self.path.name}:{self.function}"


@dataclass
class CodeRun:
    """What the code returned for each sample (its own names, as arrays), and what it
    printed; how the function (and stages()) was called, BATCH or PER_SAMPLE, and the
    sentences saying so."""

    samples: list[dict[str, np.ndarray]]
    output: str = ""
    stages: list[dict[str, np.ndarray]] | None = None   # what stages() returned, if defined
    calls: str = PER_SAMPLE
    stage_calls: str | None = None                      # None when there is no stages()
    notes: list[str] = field(default_factory=list)


@dataclass
class Checked:
    """The user's code (`label`: FILE.py:NAME, or a function's name) run and compared with
    torch's gradients of the same samples."""

    label: str
    run: CodeRun
    comparison: FileComparison
    stages: StageComparison | None = None
    notes: list[str] = field(default_factory=list)


def check_code(code: UserCode, spec: NetworkSpec, params: Mapping[str, np.ndarray],
               data: Dataset, timeout: float = TIMEOUT, memory_mb: int = MEMORY_MB,
               rtol: float | None = None, atol: float | None = None,
               started: Callable[[int], None] | None = None) -> Checked:
    """Run `code` on every sample of `data` at `params` (given in spec.layout) and compare with
    torch autograd. UserCodeError when the code cannot be run to the end or what it returns
    cannot be read as gradients of this network. `started(pid)` is told of each child process
    (its own process group) as it starts, for a window to end it early; it may raise
    CheckCancelled to stop the check there."""
    return check_run(code.label, run_code(code, spec, params, data, timeout, memory_mb,
                                          started), spec, params, data, rtol, atol)


def check_function(function: Callable, spec: NetworkSpec, params: Mapping[str, np.ndarray],
                   data: Dataset, rtol: float | None = None, atol: float | None = None,
                   stages: Callable | None = None) -> Checked:
    """check_code for a function of this process (a notebook's), and its `stages` when given:
    called here, with the whole batch first as the child calls them (what a call that is not
    taken prints is dropped, what it raises swallowed), else on each sample with fresh copies
    of the parameters; what a per-sample call raises reaches the caller as it is."""
    label = getattr(function, "__name__", "gradients")
    arrays = to_layout(dict(params), spec.layout)
    shapes = [value.shape for value in arrays.values()]
    samples, calls, notes = _calls_here(function, label, arrays, data, lambda found:
                                        read_gradient_batch(found, data.x, data.y, shapes,
                                                            label))
    run = CodeRun(samples, calls=calls, notes=notes)
    if stages is not None:
        sizes = stage_sizes(spec)
        run.stages, run.stage_calls, more = _calls_here(
            stages, "stages", arrays, data, lambda found: read_stage_batch(
                found, data.x, data.y, sizes, spec.n_layers, "stages"))
        run.notes += more
    return check_run(label, run, spec, params, data, rtol, atol)


def _calls_here(function: Callable, label: str, arrays: Mapping[str, np.ndarray],
                data: Dataset, read: Callable[[dict[str, np.ndarray]], BatchReading]
                ) -> tuple[list[dict[str, np.ndarray]], str, list[str]]:
    """What `function` returned for each sample, how it was called, and the note saying so."""
    def fresh() -> dict[str, np.ndarray]:
        return {name: value.copy() for name, value in arrays.items()}

    found = _batch_here(function, label, fresh(), data, read) if len(data) >= 2 else None
    if found is not None and found.samples is not None:
        return found.samples, BATCH, [found.note]
    before = found.note if found is not None and found.explains else ""
    samples = []
    for k in range(len(data)):
        try:
            result = function(fresh(), data.x[k].copy(), data.y[k].copy())
        except Exception as e:
            if before:
                e.add_note(before)
            raise
        try:
            names, returned = returned_arrays(result, label)
        except TypeError as e:
            raise UserCodeError((f"{before}\n" if before else "")
                                + f"sample {k + 1}: {e}") from None
        samples.append({name: returned[f"g{i}"] for i, name in enumerate(names)})
    return samples, PER_SAMPLE, [found.note] if found is not None else []


def _batch_here(function: Callable, label: str, params: dict[str, np.ndarray], data: Dataset,
                read: Callable[[dict[str, np.ndarray]], BatchReading]) -> BatchReading:
    """One call of `function` with every sample, read by `read`; what it prints is shown only
    when it is taken."""
    held = io.StringIO()
    try:
        with contextlib.redirect_stdout(held), contextlib.redirect_stderr(held):
            result = function(params, data.x.copy(), data.y.copy())
    except Exception as e:   # a function for one sample, most likely
        return raised(label, data.x, data.y, e)
    try:
        names, returned = returned_arrays(result, label)
    except TypeError as e:
        return refused(label, data.x, data.y, f"what it returned is not read ({e})")
    found = read({name: returned[f"g{i}"] for i, name in enumerate(names)})
    if found.samples is not None:
        sys.stdout.write(held.getvalue())
    return found


def check_run(label: str, run: CodeRun, spec: NetworkSpec, params: Mapping[str, np.ndarray],
              data: Dataset, rtol: float | None = None, atol: float | None = None) -> Checked:
    """What a user's code returned (`run`), read as gradients and compared with torch's."""
    try:
        theirs = read_arrays(run.samples, label, spec, spec.layout)
    except UserInputError as e:
        raise UserCodeError(str(e), run.output) from None
    torch_set, _ = gradient_sets(spec, params, data)
    torch_set.source = "torch autograd"
    try:
        comparison = compare_sets(torch_set, theirs, spec, rtol, atol, data, params)
    except UserInputError as e:   # shapes that fit no parameter of the network
        raise UserCodeError(str(e), run.output) from None
    stages = None
    if run.stages:
        try:
            stages = compare_stages(spec, params, data, run.stages, rtol, atol)
        except UserInputError as e:
            raise UserCodeError(str(e), run.output) from None
    # how the code was called is read with what it returned, as the alignment's notes are
    comparison.report.notes[:0] = run.notes
    return Checked(label, run, comparison, stages, list(run.notes))


def as_gradient_set(checked: Checked, data: Dataset) -> GradientSet:
    """What the user's code returned, as torch's set is: in the network's layout and shapes
    (a (1, n) bias as (n,)), with the samples, for my_autograd.dat."""
    aligned, torch_set = checked.comparison.aligned, checked.comparison.a
    stacked = StackedSamples({name: aligned.b[name] for name in aligned.names},
                             aligned.samples)
    return GradientSet(stacked, checked.label, torch_set.layout, None,
                       f"your code ({checked.label})", torch_set.spec, data.x.copy(),
                       data.y.copy(), None,
                       [f"the gradients {checked.label} returned, run by app.py check"])


def verdict_line(checked: Checked) -> str:
    """One line: agrees, or where it first disagrees and which mistake makes it; and the first
    stage that departs, where stages() says."""
    report = checked.comparison.report
    if report.agree:
        low = min(p.digits for p in report.params.values())
        text = (f"{checked.label} agrees with torch ({report.samples} samples, "
                f"{low:.1f} digits or more)")
    else:
        text = f"{checked.label} disagrees with torch, first at {report.first_disagreement}"
        text += f" ({report.reproduced_by})" if report.reproduced_by else ""
    if checked.stages is not None and checked.stages.first_stage:
        text += f"; first stage that departs: {checked.stages.first_stage}"
    return text


def run_code(code: UserCode, spec: NetworkSpec, params: Mapping[str, np.ndarray],
             data: Dataset, timeout: float = TIMEOUT, memory_mb: int = MEMORY_MB,
             started: Callable[[int], None] | None = None) -> CodeRun:
    """Call the user's function on each sample in a child process (see the module docstring);
    what it returned per sample. UserCodeError when it cannot."""
    path = code.path.resolve()
    if not path.is_file():
        raise UserCodeError(f"{code.path}: no such file" if not path.exists()
                            else f"{code.path}: not a file")
    if not (timeout > 0 and math.isfinite(timeout)):
        raise UserInputError(f"the time limit must be a number of seconds above 0, not {timeout}")
    request = {"path": str(path), "function": code.function, "timeout": timeout,
               "memory_mb": memory_mb, "stage_sizes": stage_sizes(spec),
               "n_layers": spec.n_layers}
    arrays = {f"param.{name}": np.ascontiguousarray(value)
              for name, value in to_layout(dict(params), spec.layout).items()}
    arrays["x"], arrays["y"] = data.x, data.y
    ended = None
    # a call with the whole batch that ends the process (a crash, os._exit, stuck in C) says
    # only that the function takes one sample: it is run again, without that call
    for batch in (True, False):
        with tempfile.TemporaryFile() as printed:
            found = _run_child(code, {**request, "batch": batch}, arrays, len(data), timeout,
                               printed, started)
            output = _printed(printed)
        if not isinstance(found, _BatchEnded):
            break
        ended = found.note
    if isinstance(found, str):
        raise UserCodeError(found, output)
    found.output = output
    found.notes[:0] = [ended] if ended else []
    return found


@dataclass(frozen=True)
class _BatchEnded:
    """The child ended, or was stopped, in a call with the whole batch (or the import after
    it): the sentence saying so."""

    note: str


def _run_child(code: UserCode, request: dict, arrays: dict[str, np.ndarray], n: int,
               timeout: float, printed, started: Callable[[int], None] | None = None
               ) -> CodeRun | _BatchEnded | str:
    """What the child sent (what the function returned for each sample, what stages() did,
    how they were called), or the sentence saying why there is nothing."""
    child_in, to_child = os.pipe()
    child_out, from_child = os.pipe()
    env = {**child_env(), "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1",
           "MKL_NUM_THREADS": "1"}
    try:
        process = subprocess.Popen(
            [sys.executable, "-m", "engine.usercode_child", str(child_in), str(from_child),
             str(os.getpid())], pass_fds=(child_in, from_child), stdin=subprocess.DEVNULL,
            stdout=printed, stderr=printed, env=env, cwd=code.path.resolve().parent,
            process_group=0)    # Ctrl-C goes to us, and we end it
    finally:
        os.close(child_in)
        os.close(from_child)
    try:
        if started is not None:
            started(process.pid)
        return _talk(code, process, to_child, child_out, request, arrays, n, timeout)
    finally:
        for fd in (to_child, child_out):
            os.close(fd)
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def _talk(code: UserCode, process: subprocess.Popen, to_child: int, child_out: int,
          request: dict, arrays: dict[str, np.ndarray], n: int,
          timeout: float) -> CodeRun | _BatchEnded | str:
    # if it went at once, what it said or how it ended tells why
    with contextlib.suppress(BrokenPipeError):
        write_all(to_child, encode(request, arrays))
    reader, samples, stages = FrameReader(), [], []
    run = CodeRun(samples)
    before: dict[str, str] = {}     # a batch call's note, by function, where it explains
    where = f"importing {code.path.name}"
    trying = None                   # the function called with the whole batch, meanwhile
    deadline = time.monotonic() + START_GRACE + timeout
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            if trying:
                return _BatchEnded(refused(trying, arrays["x"], arrays["y"],
                                           f"it did not return within "
                                           f"{BATCH_PATIENCE * timeout:g} s").note)
            return (f"{code.label} did not return within {timeout:g} s {where} (an endless "
                    "loop? --timeout sets the limit); it was stopped")
        ready, _, _ = select.select([child_out], [], [], left)
        if not ready:
            continue
        data = os.read(child_out, 1 << 20)
        if not data:
            if trying:
                return _BatchEnded(refused(trying, arrays["x"], arrays["y"],
                                           f"it ended the process running it, "
                                           f"{_how_ended(process)}").note)
            return _ended(code, process, where)
        try:
            frames = reader.feed(data)
        except BrokenStream as e:
            return f"{code.label}: the process running it sent something unreadable ({e})"
        for header, payload in frames:
            kind = header.get("kind")
            if kind == "error":
                text = _error_text(code, header)
                note = before.get(str(header.get("function")))
                # first: --watch's line and a traceback's reader end at the exception
                return f"{note}\n{text}" if note and header.get("where") == "call" else text
            if kind == "done":
                run.stages = stages or None
                return run
            if kind == "sample":
                names = header.get("names", [])
                samples.append({name: payload[f"g{i}"] for i, name in enumerate(names)})
                if "stage_names" in header:
                    stages.append({name: payload[f"s{i}"]
                                   for i, name in enumerate(header["stage_names"])})
            if kind == "ready" and header.get("stages"):
                run.stage_calls = PER_SAMPLE
            if kind == "batch":
                _called(run, header, code.function, before)
            limit, where = timeout, f"for sample {len(samples) + 1} of {n}"
            if header.get("next") == "batch":
                trying, limit = str(header.get("next_function")), BATCH_PATIENCE * timeout
            elif header.get("next") == "import":
                limit = BATCH_PATIENCE * timeout
            else:
                trying = None
            deadline = time.monotonic() + limit


def _called(run: CodeRun, header: dict, function: str, before: dict[str, str]) -> None:
    """A call with the whole batch, taken or not, in `run` (and in `before`, for an error of
    the calls per sample to begin with, where its note explains one)."""
    which, note = str(header.get("function")), str(header.get("note", ""))
    run.notes.append(note)
    how = BATCH if header.get("taken") else PER_SAMPLE
    if which == function:
        run.calls = how
    else:
        run.stage_calls = how
    if not header.get("taken") and header.get("explains"):
        before[which] = note


def _error_text(code: UserCode, header: dict) -> str:
    sample = header.get("sample")
    where = {"import": f"importing {code.path.name} failed",
             "function": "", "call": f"{code.path.name}:{header.get('function')} failed on "
                                     f"sample {(sample or 0) + 1}"}.get(header.get("where"), "")
    message = str(header.get("message", "")).rstrip()
    if header.get("memory"):
        message += ("\n(the check gives your code at most its memory limit; --memory sets it)")
    return f"{where}:\n{message}" if where else message


def _ended(code: UserCode, process: subprocess.Popen, where: str) -> str:
    """Why the child ended before it was done."""
    try:
        process.wait(timeout=5)
    except subprocess.TimeoutExpired:
        return f"{code.label}: the process running it closed its pipe {where} and hung"
    how = _how_ended(process)
    return f"{code.label} ended the process running it {where}" + (
        f": {how}" if process.returncode < 0 else f", {how}")


def _how_ended(process: subprocess.Popen) -> str:
    """"killed by SIGSEGV", "with exit status 3 (...)", or that it hung."""
    try:
        status = process.wait(timeout=5)
    except subprocess.TimeoutExpired:
        return "then closed its pipe and hung"
    if status < 0:
        name = signal.Signals(-status).name if -status in signal.Signals._value2member_map_ \
            else f"signal {-status}"
        return f"killed by {name}"
    return f"with exit status {status} (os._exit or a crash in compiled code?)"


def _printed(printed) -> str:
    """What the code printed: its beginning, up to OUTPUT_SHOWN characters, and how much
    more there was."""
    size = printed.seek(0, os.SEEK_END)
    printed.seek(0)
    text = printed.read(OUTPUT_SHOWN * 4).decode("utf-8", "replace")[:OUTPUT_SHOWN]
    if size > len(text.encode()):
        text += f"\n… ({size:,} bytes printed in all)"
    return text


def report_text(checked: Checked) -> str:
    """The check as `app.py check` prints it: the table, the verdict, the diagnosis, and the
    stages when stages() gave them."""
    text = format_report(checked.comparison.report, "torch autograd", checked.label,
                         subject="your code and torch")
    if checked.stages is not None:
        text += "\n" + "\n".join(checked.stages.lines())
    return text


def file_stamp(path: Path) -> tuple | None:
    """What changes when a file is saved: its time, its size and its bytes (None when it
    cannot be read: an editor between deleting and writing it)."""
    try:
        stat = path.stat()
        return stat.st_mtime_ns, stat.st_size, hashlib.sha1(path.read_bytes()).hexdigest()
    except OSError:
        return None

"""Starting the torch helper's process (engine/train/torch_process.py), early where it pays.

The standard library only is imported here: `app.py train` calls `start_early` before it
imports numpy or reads its options, so that the helper's Python and its import of torch (about
a second) run beside the command's own start instead of after it. The TorchHelper the run makes
then `adopt`s that process; a run that wants no helper `discard`s it, and so does the exit of a
command that ends first (a bad option, --help, Ctrl-C). A child nobody adopts also ends by
itself: it reads its settings from a pipe that closes when this process goes.
"""

import atexit
import os
import subprocess
import sys
from pathlib import Path
from typing import NamedTuple

PIPE_BYTES = 1024 * 1024   # the pipe holds a few chunks, so the helper can run ahead
# the folder holding engine/: the child imports it from there even when it is not installed
ROOT = Path(__file__).resolve().parents[2]


class Spawned(NamedTuple):
    """A helper's process (None: it could not start) and this end of its two pipes."""

    process: subprocess.Popen | None
    ctrl: int       # written here, read by the child
    incoming: int   # written by the child, read here


def spawn() -> Spawned:
    """A new helper process, waiting for its settings on `ctrl`."""
    to_child, ctrl = os.pipe()
    incoming, from_child = os.pipe()
    enlarge(from_child)
    enlarge(to_child)
    try:
        process: subprocess.Popen | None = subprocess.Popen(
            [sys.executable, "-m", "engine.train.torch_process", str(to_child), str(from_child)],
            pass_fds=(to_child, from_child), stdin=subprocess.DEVNULL,
            env=child_env(),
            # out of the terminal's process group: Ctrl-C goes to the run, which stops the
            # helper itself, and never prints a traceback of the helper's; in the run's
            # session, so that the run's nice value holds for it too (see engine.train.client)
            process_group=0)
    except (OSError, ValueError):   # ValueError: pass_fds where it does not exist
        process = None
    finally:
        os.close(to_child)
        os.close(from_child)
    return Spawned(process, ctrl, incoming)


def child_env() -> dict[str, str]:
    """This process's environment, with engine/'s folder first on PYTHONPATH: a child
    started with `python -m engine...` imports it from there even when it is not installed."""
    path = os.pathsep.join(filter(None, (str(ROOT), os.environ.get("PYTHONPATH"))))
    return {**os.environ, "PYTHONPATH": path}


def enlarge(fd: int) -> None:
    """A bigger pipe where the system allows it (Linux: F_SETPIPE_SZ)."""
    try:
        import fcntl

        fcntl.fcntl(fd, getattr(fcntl, "F_SETPIPE_SZ", 1031), PIPE_BYTES)
    except (ImportError, OSError):
        pass


_early: Spawned | None = None


def start_early() -> None:
    """Start a helper now, for the run this process is about to make (POSIX only, as the
    helper is)."""
    global _early
    if _early is None and os.name == "posix":
        _early = spawn()
        atexit.register(discard)


def adopt() -> Spawned:
    """The helper `start_early` started, or a new one."""
    global _early
    spawned, _early = _early, None
    return spawned or spawn()


def discard() -> None:
    """Stop the helper `start_early` started, if nobody adopted it."""
    global _early
    spawned, _early = _early, None
    if spawned is None:
        return
    os.close(spawned.ctrl)
    os.close(spawned.incoming)
    if spawned.process is not None:
        spawned.process.terminate()   # it has done nothing yet but import
        spawned.process.wait()

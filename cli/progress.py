"""A progress bar on stderr, shown only for work that takes long enough to need one."""

import signal
import sys
import time
from types import FrameType
from typing import TextIO

from engine.errors import printable

DELAY = 0.5     # seconds before the bar appears: short exports stay silent
WIDTH = 30
_interrupted = False   # Ctrl-C was pressed during a command


def _on_ctrl_c(_signum: int, _frame: FrameType | None) -> None:
    global _interrupted
    _interrupted = True
    raise KeyboardInterrupt


def catch_ctrl_c() -> None:
    """Make Ctrl-C stop a command even where a library swallows the KeyboardInterrupt (a bare
    `except:` during an import, seen under load): the press is remembered, and the next
    progress report raises it again."""
    signal.signal(signal.SIGINT, _on_ctrl_c)


class ProgressBar:
    """Call with (done, total) as work proceeds, then `close()`. On a terminal the bar redraws
    in place; elsewhere (a log) it prints a line every tenth of the way."""

    def __init__(self, label: str, stream: TextIO | None = None, unit: str = "",
                 scale: int = 1):
        self.label = label
        self.stream = stream or sys.stderr
        self.unit, self.scale = unit, scale   # counts are shown divided by scale, then unit
        self.start = time.monotonic()
        self.shown = False
        self.last_tenth = -1

    def __call__(self, done: int, total: int) -> bool:
        if _interrupted:
            raise KeyboardInterrupt
        if time.monotonic() - self.start < DELAY:
            return False
        if done >= total and not self.shown and self.last_tenth < 0:
            return False    # a bar that would first appear full says nothing: the work is done
        filled = WIDTH * done // max(total, 1)
        text = (f"{self.label}: [{'#' * filled}{'.' * (WIDTH - filled)}] "
                f"{done // self.scale}/{total // self.scale}{self.unit}")
        if self.stream.isatty():
            self.stream.write("\r" + text)
            self.shown = True
        elif (tenth := 10 * done // max(total, 1)) > self.last_tenth:
            self.last_tenth = tenth
            self.stream.write(text + "\n")
        self.stream.flush()
        return False

    def close(self) -> None:
        if self.shown:
            self.stream.write("\n")
            self.stream.flush()


class FileProgressBars:
    """Progress of reading files, called with (path, bytes done, bytes in all): a bar per file
    read, in MB, each closed when the next read starts. Call `close()` at the end."""

    def __init__(self, stream: TextIO | None = None):
        self.stream = stream
        self.read: tuple[str, int] | None = None   # the path being read, and how far
        self.bar: ProgressBar | None = None

    def __call__(self, path: str, done: int, total: int) -> bool:
        if self.read is None or self.read[0] != path or done < self.read[1]:
            self.close()   # the same file twice (compare A A) is two reads
            self.bar = ProgressBar(f"reading {printable(path)}", self.stream, " MB", 2**20)
        self.read = (path, done)
        return self.bar(done, total)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()

"""A progress bar on stderr, shown only for work that takes long enough to need one."""

import sys
import time
from typing import TextIO

DELAY = 0.5     # seconds before the bar appears: short exports stay silent
WIDTH = 30


class ProgressBar:
    """Call with (done, total) as work proceeds, then `close()`. On a terminal the bar redraws
    in place; elsewhere (a log) it prints a line every tenth of the way."""

    def __init__(self, label: str, stream: TextIO | None = None):
        self.label = label
        self.stream = stream or sys.stderr
        self.start = time.monotonic()
        self.shown = False
        self.last_tenth = -1

    def __call__(self, done: int, total: int) -> bool:
        if time.monotonic() - self.start < DELAY:
            return False
        filled = WIDTH * done // max(total, 1)
        text = f"{self.label}: [{'#' * filled}{'.' * (WIDTH - filled)}] {done}/{total}"
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

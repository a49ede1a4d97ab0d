"""Opening a file someone gave us, or one found beside it, so that nothing the path names can
make reading it endless: only a regular file is opened, and what is read of it is bounded.

A device (/dev/zero, /dev/urandom, a terminal) reports a size of 0 and never ends; a named
pipe (FIFO) blocks the open until something writes to it; a folder cannot be read as bytes.
The path is checked before opening, so a device is not even opened (opening some has effects),
and the opened descriptor is checked again, since the path may name something else by then.
The open does not wait on a pipe (O_NONBLOCK), and reading stops at the caller's limit whatever
the file's size says: a regular file can grow while it is read.
"""

import os
import stat
from typing import BinaryIO

FOLDER = "a folder"
# an open that cannot wait on a pipe (POSIX; Windows has no named pipes in its file system)
_NONBLOCK = getattr(os, "O_NONBLOCK", 0)
# and that cannot make a terminal ours
_FLAGS = os.O_RDONLY | getattr(os, "O_BINARY", 0) | getattr(os, "O_NOCTTY", 0) | _NONBLOCK


class NotRegularFile(OSError):
    """The path names something other than a regular file; `what` says what ("a folder",
    "a named pipe (FIFO)", "a device (character special file)", ...)."""

    def __init__(self, what: str):
        super().__init__(f"is {what}, not a regular file")
        self.what = what

    def describe(self, noun: str) -> str:
        """"is a folder, not <noun>" for a folder, else "is <what>, not a regular file"."""
        return f"is {FOLDER}, not {noun}" if self.what == FOLDER else str(self)


def kind(mode: int) -> str | None:
    """What an st_mode is in words; None for a regular file."""
    if stat.S_ISREG(mode):
        return None
    for test, what in ((stat.S_ISDIR, FOLDER), (stat.S_ISFIFO, "a named pipe (FIFO)"),
                       (stat.S_ISCHR, "a device (character special file)"),
                       (stat.S_ISBLK, "a device (block special file)"),
                       (stat.S_ISSOCK, "a socket")):
        if test(mode):
            return what
    return "not a regular file"


def open_regular(path: str | os.PathLike[str]) -> BinaryIO:
    """`path` (symbolic links followed) opened for reading bytes, when it is a regular file;
    NotRegularFile when it is not, OSError when it cannot be opened."""
    what = kind(os.stat(path).st_mode)
    if what is not None:
        raise NotRegularFile(what)
    fd = os.open(path, _FLAGS)
    try:
        what = kind(os.fstat(fd).st_mode)
        if what is not None:
            raise NotRegularFile(what)
        if _NONBLOCK:
            os.set_blocking(fd, True)   # a regular file ignores it; cleared all the same
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def size_of(f: BinaryIO) -> int:
    """The size the opened file's descriptor reports (bytes)."""
    return os.fstat(f.fileno()).st_size


def read_at_most(f: BinaryIO, limit: int) -> bytes | None:
    """The rest of `f` when it is `limit` bytes or fewer, else None: limit + 1 bytes are read
    at most, whatever the file's size says."""
    # a read allocates what it asks for: ask for what the size says first, more only if the
    # file grew
    want = max(min(size_of(f) - f.tell(), limit), 0) + 1
    data = f.read(want)
    if len(data) == want and len(data) <= limit:
        data += f.read(limit + 1 - len(data))
    return data if len(data) <= limit else None

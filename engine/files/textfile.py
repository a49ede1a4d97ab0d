"""Reading a user's small text file (a model, a CSV, an autosave's session): a regular file
only (engine/files/regularfile.py: never a device or a pipe, which would be read without end or wait
forever), up to a limit of bytes, decoded as UTF-8 (a BOM is fine), every problem an error of
the caller's kind whose message starts with the file's name."""

import os

from engine.errors import UserInputError, printable
from engine.files.regularfile import NotRegularFile, open_regular, read_at_most, size_of


def read_text(path: str | os.PathLike, limit: int, what: str,
              error: type[UserInputError]) -> str:
    """The text of `path`; refuses anything but a regular file, files over `limit` bytes,
    non-UTF-8 bytes and NUL characters with `error("<path>: ...")`. `what` names the kind of
    file in messages."""
    name = os.fspath(path)
    text, problem = try_read_text(name, limit, what)
    if text is None:
        raise error(f"{printable(name)}: {problem}")
    return text


def try_read_text(path: str | os.PathLike, limit: int, what: str) -> tuple[str | None, str]:
    """(the text of `path`, "") as read_text reads it, or (None, the problem) where read_text
    would refuse it; for a file one may do without, such as one found beside another."""
    try:
        with open_regular(path) as f:
            size = size_of(f)
            raw = None if size > limit else read_at_most(f, limit)
    except NotRegularFile as e:
        return None, e.describe(what)
    except OSError as e:
        return None, f"cannot read it ({e.strerror or e})"
    if size > limit:
        return None, f"{_size(size, limit)} is more than the {_mb(limit)} MB {what} may have"
    if raw is None:
        return None, f"it grew past the {_mb(limit)} MB {what} may have as it was read"
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        return None, f"not a text file (byte {e.start} is not UTF-8)"
    if "\0" in text:
        return None, "not a text file (it holds NUL bytes)"
    return text, ""


def _mb(size: int) -> str:
    return f"{size / 2**20:g}"


def _size(size: int, limit: int) -> str:
    """The size in MB, in bytes where MB would round to the limit's."""
    shown = f"{size / 2**20:.0f}"
    return f"{size:,} bytes" if shown == _mb(limit) else f"{shown} MB"

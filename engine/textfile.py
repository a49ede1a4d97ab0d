"""Reading a user's small text file (a model, a CSV): size-checked, decoded as UTF-8 (a BOM is
fine), every problem an error of the caller's kind whose message starts with the file's name."""

import os

from engine.errors import UserInputError


def read_text(path: str | os.PathLike, limit: int, what: str,
              error: type[UserInputError]) -> str:
    """The text of `path`; refuses folders, files over `limit` bytes, non-UTF-8 bytes and NUL
    characters with `error("<path>: ...")`. `what` names the kind of file in messages."""
    name = os.fspath(path)
    try:
        if os.path.isdir(name):
            raise error(f"{name}: is a folder, not {what}")
        size = os.path.getsize(name)
        if size > limit:
            raise error(f"{name}: {size / 2**20:.0f} MB is more than the {limit // 2**20} MB "
                        f"{what} may have")
        with open(name, "rb") as f:
            raw = f.read()
    except OSError as e:
        raise error(f"{name}: cannot read it ({e.strerror or e})") from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise error(f"{name}: not a text file (byte {e.start} is not UTF-8)") from None
    if "\0" in text:
        raise error(f"{name}: not a text file (it holds NUL bytes)")
    return text

"""Atomic file writes: the data goes to a temporary file in the target's folder, is flushed to
disk, then renamed over the target. A reader sees the old file or the new one, never half of
one, and an interrupted write leaves no stray temporary file behind: Python removes its own on
any exception (Ctrl-C included), and the temporary files of a process that was killed (their
names carry its pid) are removed by the next write of the same file."""

import contextlib
import os
import re
import tempfile
import time
from pathlib import Path

# a temporary file of a process that cannot be asked (pid reused, another machine on a shared
# folder) counts as abandoned after this long: no write of ours takes an hour
STALE_SECONDS = 3600

# Read once, at import: os.umask can only be read by setting it, which would race with other
# threads creating files.
_UMASK = os.umask(0o022)
os.umask(_UMASK)


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> None:
    """Write `data` to `path` atomically (temp file in the same folder, fsync, os.replace).

    The temporary file is removed if anything fails, including KeyboardInterrupt."""
    target = Path(path)
    remove_stale_temps(target)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.{os.getpid()}-", suffix=".tmp",
                               dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        # mkstemp creates the file 0600; give it the permissions a plain open() would.
        os.chmod(tmp, 0o666 & ~_UMASK)
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    _fsync_dir(target.parent)


def atomic_write_text(path: str | os.PathLike[str], text: str, encoding: str = "utf-8") -> None:
    """Write `text` to `path` atomically, encoded as `encoding`, newlines kept as given ("\\n")."""
    atomic_write_bytes(path, text.encode(encoding))


def process_alive(pid: int) -> bool:
    """Whether process `pid` exists (True where that cannot be told without harm: os.kill
    with signal 0 only asks on POSIX)."""
    if os.name != "posix":
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:     # someone else's process: alive
        return True
    return True


def abandoned(pid: int | None, path: Path) -> bool:
    """Whether the temporary `path` that process `pid` made (None: an older name without one)
    is left over: its process is gone, or it is older than STALE_SECONDS."""
    if pid is not None and pid != os.getpid() and not process_alive(pid):
        return True
    try:
        return time.time() - path.lstat().st_mtime > STALE_SECONDS
    except OSError:
        return False


def remove_stale_temps(target: Path) -> None:
    """Remove the abandoned temporary files of writes of `target` (".NAME.PID-XXXX.tmp", and
    ".NAME.XXXX.tmp" as they were named before they carried a pid)."""
    pattern = re.compile(rf"\.{re.escape(target.name)}\.(?:(\d+)-)?[A-Za-z0-9_]+\.tmp")
    try:
        entries = list(os.scandir(target.parent))
    except OSError:
        return
    for entry in entries:
        m = pattern.fullmatch(entry.name)
        if m and abandoned(int(m[1]) if m[1] else None, Path(entry.path)):
            with contextlib.suppress(OSError):
                os.unlink(entry.path)


def write_durably(path: Path, data: bytes) -> None:
    """Write `data` to a new file `path` and flush it to disk (no rename: for a file in a
    private folder that is renamed into place later)."""
    with open(path, "xb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.chmod(path, 0o666 & ~_UMASK)


def fsync_dir(folder: Path) -> None:
    """Make the renames in `folder` durable, where the platform can."""
    _fsync_dir(folder)


def _fsync_dir(folder: Path) -> None:
    # Makes the rename itself durable; not possible on every platform (Windows), nor needed there.
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        with contextlib.suppress(OSError):
            os.fsync(fd)
    finally:
        os.close(fd)

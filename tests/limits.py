"""Running the command line under limits of memory and CPU time, as the fuzz suites do: what a
hostile file can make the tool spend is bounded, and a test that would exhaust the machine fails
in its own process instead."""

import resource
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# torch and Qt map ~1.5 GB of address space at import; on top of that, what a run may use
MEMORY_BYTES = 3 * 2**30
CPU_SECONDS = 60


def limited(*args: object, memory: int = MEMORY_BYTES, seconds: int = CPU_SECONDS,
            cwd: Path | None = None, timeout: float | None = None,
            stdin: int | None = subprocess.DEVNULL) -> subprocess.CompletedProcess:
    """`python app.py *args` with its address space and CPU time capped (setrlimit in the
    child), stdout and stderr captured as text. A child that exceeds a limit dies (MemoryError,
    SIGXCPU or SIGKILL) and the caller sees it in the return code."""
    def cap() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
        resource.setrlimit(resource.RLIMIT_CPU, (seconds, seconds))

    return subprocess.run([sys.executable, str(ROOT / "app.py"), *map(str, args)], cwd=cwd,
                          capture_output=True, text=True, preexec_fn=cap, stdin=stdin,
                          timeout=timeout or 3 * seconds)


def one_clean_line(result: subprocess.CompletedProcess, code: int = 2) -> str:
    """Assert the run ended with exit `code` and one line on stderr, no traceback; that line."""
    lines = result.stderr.strip().splitlines()
    assert result.returncode == code, (result.returncode, result.stderr[-2000:])
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr[-2000:]
    return lines[0]

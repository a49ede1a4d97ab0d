"""Check my code in the window: how long a save of the user's file takes to show in the view,
for the default network and its 100 samples (target: under a second). The window is built
offscreen in this process; each save rewrites resources/my_backprop.py's text into a file of
its own, with a comment changed, and the time runs from the write to the window's `checked`
signal (the child's start, the 100 calls, torch's gradients, the comparison and the redraw).
The first check, which imports torch, is not counted."""

import os
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from bench.bench_startup import Figure, printed

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "resources" / "my_backprop.py"
TARGET_S = 1.0


@dataclass(frozen=True)
class Sizes:
    saves: int = 10     # tests make it 2
    samples: int = 100


def measure(sizes: Sizes) -> list[float]:
    """Seconds from each save to the view showing its check."""
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6.QtCore import QEventLoop, QTimer
    from PySide6.QtWidgets import QApplication

    from engine.files.datasets import default_set
    from engine.session import Session
    from gui.main_window import MainWindow
    from gui.session_model import SessionModel

    app = QApplication.instance() or QApplication(sys.argv[:1])
    session = Session()
    session.set_data(default_set(session.spec, sizes.samples, 0))
    window = MainWindow(SessionModel(session))
    window.show()
    times = []
    with tempfile.TemporaryDirectory(prefix="bpx-bench-check-") as folder:
        path = Path(folder) / "my_backprop.py"
        path.write_text(EXAMPLE.read_text())
        loop = QEventLoop()
        window.your_code.checked.connect(loop.quit)

        def wait() -> None:
            QTimer.singleShot(60_000, loop.quit)
            loop.exec()

        window.your_code.check_file(path)
        wait()
        for save in range(sizes.saves):
            start = time.perf_counter()
            path.write_text(EXAMPLE.read_text() + f"\n# save {save}\n")
            wait()
            times.append(time.perf_counter() - start)
            app.processEvents()
        window.your_code.stop()
    window.close()
    window.deleteLater()
    app.processEvents()
    return times


def main(sizes: Sizes = Sizes()) -> None:
    times = measure(sizes)
    figures = [Figure("a save to the view, median", statistics.median(times), TARGET_S),
               Figure("a save to the view, slowest", max(times), TARGET_S)]
    print(printed([f"Check my code: {sizes.saves} saves of my_backprop.py, "
                   f"{sizes.samples} samples, default network"],
                  [f"each: {', '.join(f'{t:.2f}' for t in times)} s"], figures))


if __name__ == "__main__":
    main()

"""`app.py train` against a script of the seeds' plain loop, both as whole processes.

Target (issue 17): a 30,000-step `python app.py train` of the default network (100 samples,
300 epochs) at least 3x as fast as a script doing the same 30,000 steps the plain way
(bench/bench_training.py's PlainLoop: nn.Module + optim.SGD + a numpy pass + max |diff|),
aiming at 4x, each timed from launch to exit: start-up (Python, numpy, torch's import, the
helper's) counts as the user waits for it. The two take turns within each round, in the
other order every other round; each keeps its best round (this machine is shared).

The app's run prints its table as it goes: the times its header and its first row come out
say how long it took to start (the header: the parent's imports; the first row: the helper's
start and torch's first 100 steps).
"""

import math
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from bench.bench_engine import Ratio, printed
from bench.bench_training import LR

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = 100   # the default set's size: one epoch is 100 steps

# what a student's script does: load torch and the same start and data, then the loop
PLAIN = """
import sys
import torch
from bench.bench_training import PlainLoop
from engine.files.datasets import default_set
from engine.net.params import init_params
from engine.net.spec import DEFAULT_PRESET, preset
spec = preset(DEFAULT_PRESET)
data = default_set(spec, {samples}, 0)
loop = PlainLoop(init_params(spec, 0), data.x, data.y)
worst = 0.0
for _ in range(int(sys.argv[1])):
    worst = max(worst, loop.step())
print(worst)
"""


@dataclass(frozen=True)
class Sizes:
    epochs: int = 300   # of SAMPLES steps each: 30,000 steps
    rounds: int = 5


FULL = Sizes()


@dataclass(frozen=True)
class TrainTimes:
    """Seconds from launch: to the table's header, to its first row, to the exit."""

    header: float
    first_row: float
    total: float


def time_train(epochs: int) -> TrainTimes:
    """`python app.py train` of `epochs` epochs of the default set, timed from launch."""
    command = [sys.executable, "app.py", "train", "--epochs", str(epochs), "--lr", str(LR)]
    start = time.perf_counter()
    with subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, text=True) as process:
        times, rows = [], []
        for line in process.stdout:
            times.append(time.perf_counter() - start)
            rows.append(line.split())
        code = process.wait()
    total = time.perf_counter() - start
    # the spec line, the column names, a row per epoch
    if code != 0 or len(rows) != epochs + 2 or rows[-1][0] != str(epochs):
        raise RuntimeError(f"app.py train did not run its {epochs} epochs (exit {code})")
    return TrainTimes(header=times[1], first_row=times[2], total=total)


def time_plain(steps: int) -> float:
    """Seconds from launch to exit of a script doing `steps` steps of the plain loop."""
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", PLAIN.format(samples=SAMPLES), str(steps)], cwd=ROOT,
                   check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def measure(sizes: Sizes = FULL) -> tuple[list[Ratio], list[str]]:
    steps = sizes.epochs * SAMPLES
    best_plain, best_train = math.inf, TrainTimes(math.inf, math.inf, math.inf)
    for r in range(sizes.rounds):
        for turn in ((0, 1) if r % 2 == 0 else (1, 0)):
            if turn == 0:
                best_plain = min(best_plain, time_plain(steps))
            else:
                times = time_train(sizes.epochs)
                if times.total < best_train.total:
                    best_train = times
    ratios = [Ratio(f"app.py train vs a plain-loop script, {steps:,} steps, whole processes "
                    "(aiming at 4x)", best_plain / best_train.total, 3.0)]
    lines = [f"plain-loop script (nn.Module + optim.SGD + numpy pass + max |diff|): "
             f"{best_plain:.2f} s",
             f"python app.py train --epochs {sizes.epochs} --lr {LR}: {best_train.total:.2f} s "
             f"(its header after {best_train.header:.2f} s, its first row after "
             f"{best_train.first_row:.2f} s)"]
    return ratios, lines


def results(sizes: Sizes = FULL) -> list[Ratio]:
    return measure(sizes)[0]


def main(sizes: Sizes = FULL) -> None:
    ratios, lines = measure(sizes)
    print(printed([f"bench_train_cli: the default network, {SAMPLES} samples, lr {LR}, "
                   f"launch to exit; best of {sizes.rounds} interleaved rounds"], lines, ratios),
          flush=True)


if __name__ == "__main__":
    main()

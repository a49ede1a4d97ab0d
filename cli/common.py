"""Options the commands share: which network, which data, the ranges their numbers may take,
and how a user's error is shown."""

import argparse
import json
import math
import sys
from collections.abc import Callable

from engine.budget import check_network
from engine.errors import SpecError, UserInputError, printable
from engine.files.datasets import DEFAULT_SAMPLES, Dataset, default_set, load_csv
from engine.files.model_file import MAX_MODEL_BYTES, read_model
from engine.files.textfile import read_text
from engine.net.params import Params, init_params
from engine.net.spec import DEFAULT_PRESET, DTYPES, LAYOUTS, PRESETS, NetworkSpec, preset

PROG = "backprop-explorer"
# 1: the files disagree or the run diverged; 130: interrupted (Ctrl-C), as shells report SIGINT
EXIT_OK, EXIT_DISAGREE, EXIT_INPUT, EXIT_INTERRUPTED = 0, 1, 2, 130

# numpy's default_rng takes any non-negative integer; 2**32 - 1 is the range every seeding API
# (np.random.seed, torch.manual_seed's portable range, the window's seed field) shares
MAX_SEED = 2**32 - 1
# the rows a CSV of MAX_CSV_BYTES holds (~a million): a generated set is never larger than a
# loaded one could be; the memory it takes with the network is engine/budget.py's to check
MAX_SAMPLES = 1_000_000
# a row per epoch is kept for the table and --json; no run needs more passes than this
MAX_EPOCHS = 1_000_000
# the learning rate is applied in the run's dtype: above float32's largest number (3.4028e38)
# it is inf; the bound is that number rounded down, so the one printed is the one that holds
MAX_LR = 3.4e38


def whole(low: int, high: int) -> Callable[[str], int]:
    """An argparse type: a whole number from `low` to `high`; else a one-line error saying so."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = None
        if value is None or not low <= value <= high:
            raise argparse.ArgumentTypeError(
                f"must be a whole number from {low:,} to {high:,}, not {_shown(text)}")
        return value
    return parse


def _shown(text: str) -> str:
    """A value as given, quoted, its start only when it is long (the message stays a line)."""
    return repr(text if len(text) <= 40 else text[:40] + "…")


def rate(positive: bool) -> Callable[[str], float]:
    """An argparse type: a finite learning rate float32 can hold, above 0 (`positive`) or 0
    or more."""
    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            value = math.nan
        low_ok = value > 0 if positive else value >= 0
        if not (low_ok and value <= MAX_LR):
            low = "a positive number" if positive else "0 or more"
            raise argparse.ArgumentTypeError(
                f"the learning rate must be {low}, at most {MAX_LR:g} (what float32 "
                f"holds), not {_shown(text)}")
        return value
    return parse


def add_network_options(parser: argparse.ArgumentParser, layout: bool = True) -> None:
    """--preset | --model, --seed, --dtype, and --layout where the command writes weights."""
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--preset", choices=list(PRESETS), metavar="NAME",
                        help=f"a named network: {', '.join(PRESETS)} (default {DEFAULT_PRESET})")
    source.add_argument("--model", metavar="FILE",
                        help="a model file (.json): the network and, optionally, its parameters")
    parser.add_argument("--seed", type=whole(0, MAX_SEED), default=0,
                        help="seed for parameters not given by a model and for generated data, "
                             f"0 to {MAX_SEED} (default 0)")
    parser.add_argument("--dtype", choices=list(DTYPES), help="float32 (default) or float64")
    if layout:
        parser.add_argument("--layout", choices=list(LAYOUTS),
                            help="weights as torch's (out, in) (out_in, default) or as x·W "
                                 "(in_out)")


def add_data_options(parser: argparse.ArgumentParser) -> None:
    """--data CSV | --samples N."""
    data = parser.add_mutually_exclusive_group()
    data.add_argument("--data", metavar="CSV", help="samples from a CSV of rows inputs, targets")
    data.add_argument("--samples", type=whole(1, MAX_SAMPLES), default=DEFAULT_SAMPLES,
                      metavar="N", help="generate N samples of the default set, 1 to "
                                        f"{MAX_SAMPLES:,} (default {DEFAULT_SAMPLES})")


def network(args: argparse.Namespace) -> tuple[NetworkSpec, Params]:
    """The spec and parameters the options name, with --dtype and --layout applied."""
    dtype, layout = args.dtype, getattr(args, "layout", None)
    if args.model:
        _check_model_size(args.model)
        # the file's numbers are float64 until here: converted once, to the run's dtype
        return read_model(args.model, seed=args.seed).run(dtype, layout)
    spec = preset(args.preset or DEFAULT_PRESET)
    changes = {k: v for k, v in (("dtype", dtype), ("layout", layout)) if v}
    spec = spec.with_options(**changes) if changes else spec
    return spec, init_params(spec, args.seed)


def dataset(args: argparse.Namespace, spec: NetworkSpec) -> Dataset:
    """The samples the options name: a CSV, or N generated ones."""
    if args.data:
        return load_csv(args.data, spec)
    return default_set(spec, args.samples, args.seed)


def _check_model_size(path: str) -> None:
    """Refuse a model file naming a network too big to hold before its parameters are drawn:
    a file without parameters is a few bytes however large the network it names. A file that
    cannot be read this way is left to read_model, which says why."""
    try:
        data = json.loads(read_text(path, MAX_MODEL_BYTES, "a model file", SpecError))
        spec = NetworkSpec.from_dict(data) if isinstance(data, dict) else None
    except (UserInputError, ValueError, TypeError, RecursionError):
        return
    if spec is not None:
        try:
            check_network(spec)
        except UserInputError as e:
            raise SpecError(f"{path}: {e}") from None


def bad_tolerance(args: argparse.Namespace) -> str | None:
    """What is wrong with --rtol or --atol as given (a negative or NaN), or None."""
    for name in ("rtol", "atol"):
        value = getattr(args, name)
        if value is not None and not value >= 0:
            return f"--{name} must be 0 or more, not {value}"
    return None


def fail(message: str) -> int:
    """One line on stderr for a problem the user can fix; the input exit code. Names in it
    (file names above all) are escaped: a newline or a terminal escape in one cannot split
    the line or act on the terminal."""
    print(f"{PROG}: {printable(message)}", file=sys.stderr)
    return EXIT_INPUT


def interrupted() -> int:
    """The one line of a run stopped by Ctrl-C; its exit code."""
    print("interrupted", file=sys.stderr)
    return EXIT_INTERRUPTED

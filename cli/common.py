"""Options the commands share: which network, which data, and how a user's error is shown."""

import argparse
import sys

from engine.datasets import DEFAULT_SAMPLES, Dataset, default_set, load_csv
from engine.model_file import read_model
from engine.params import Params, init_params
from engine.spec import DEFAULT_PRESET, DTYPES, LAYOUTS, PRESETS, NetworkSpec, preset

PROG = "backprop-explorer"
EXIT_OK, EXIT_DISAGREE, EXIT_INPUT = 0, 1, 2


def add_network_options(parser: argparse.ArgumentParser, layout: bool = True) -> None:
    """--preset | --model, --seed, --dtype, and --layout where the command writes weights."""
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--preset", choices=list(PRESETS), metavar="NAME",
                        help=f"a named network: {', '.join(PRESETS)} (default {DEFAULT_PRESET})")
    source.add_argument("--model", metavar="FILE",
                        help="a model file (.json): the network and, optionally, its parameters")
    parser.add_argument("--seed", type=int, default=0,
                        help="seed for parameters not given by a model and for generated data "
                             "(default 0)")
    parser.add_argument("--dtype", choices=list(DTYPES), help="float32 (default) or float64")
    if layout:
        parser.add_argument("--layout", choices=list(LAYOUTS),
                            help="weights as torch's (out, in) (out_in, default) or as x·W "
                                 "(in_out)")


def add_data_options(parser: argparse.ArgumentParser) -> None:
    """--data CSV | --samples N."""
    data = parser.add_mutually_exclusive_group()
    data.add_argument("--data", metavar="CSV", help="samples from a CSV of rows inputs, targets")
    data.add_argument("--samples", type=int, default=DEFAULT_SAMPLES, metavar="N",
                      help=f"generate N samples of the default set (default {DEFAULT_SAMPLES})")


def network(args: argparse.Namespace) -> tuple[NetworkSpec, Params]:
    """The spec and parameters the options name, with --dtype and --layout applied."""
    dtype, layout = args.dtype, getattr(args, "layout", None)
    if args.model:
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


def fail(message: str) -> int:
    """One line on stderr for a problem the user can fix; the input exit code."""
    print(f"{PROG}: {message}", file=sys.stderr)
    return EXIT_INPUT

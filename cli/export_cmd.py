"""`export OUTDIR`: per-sample gradients of both engines, with the model and data they used."""

import argparse

from cli.common import (
    EXIT_OK,
    add_data_options,
    add_network_options,
    dataset,
    fail,
    network,
    rate,
)
from cli.progress import ProgressBar
from engine.budget import check_export
from engine.check.mistakes import MISTAKES, inject
from engine.errors import UserInputError, printable
from engine.export import export


def add_parser(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "export", help="write torch_autograd.dat, my_autograd.dat, model.json and data.csv",
        description="Compute the gradients of every sample (batch size 1) with torch autograd "
                    "and with the scratch engine, and write torch_autograd.dat, "
                    "my_autograd.dat, model.json (the network and its initial parameters) and "
                    "data.csv (the samples) into OUTDIR.")
    parser.add_argument("outdir", metavar="OUTDIR", help="folder to write into (created)")
    add_network_options(parser)
    add_data_options(parser)
    parser.add_argument("--lr", type=rate(positive=False), default=0.0,
                        help="0 (default): every gradient at the same parameters; > 0: each "
                             "engine takes an SGD step after each sample, with its own gradients")
    parser.add_argument("--inject", metavar="NAME",
                        help="the scratch engine makes a classic mistake (torch never does): "
                             f"{', '.join(MISTAKES)}; NAME@L makes it in layer L only")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    bar = ProgressBar("export")
    try:
        spec, params = network(args)
        mistake = inject(spec, args.inject) if args.inject else None
        if not args.data:   # counted before the samples are made: they take memory too
            check_export(spec, args.samples)
        data = dataset(args, spec)
        check_export(spec, len(data))
        # said before the work, flushed: a long export shows at once what it is doing
        print(f"{len(data)} samples, {spec.describe()}"
              + (f", SGD with lr {args.lr} along the way" if args.lr else ""), flush=True)
        written = export(args.outdir, spec, params, data, args.lr, progress=bar, mistake=mistake)
    except UserInputError as e:
        return fail(str(e))
    except OSError as e:
        return fail(f"{args.outdir}: cannot write there ({e.strerror or e})")
    finally:
        bar.close()
    if mistake is not None:
        print(f"the scratch engine made a mistake on purpose (torch did not): "
              f"{mistake.describe()}; my_autograd.dat's header says so")
    for path in written.files:
        print(f"wrote {printable(str(path))}")
    return EXIT_OK

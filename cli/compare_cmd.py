"""`compare A B`: where and how two gradient files disagree."""

import argparse
import json

from cli.common import EXIT_DISAGREE, EXIT_OK, bad_tolerance, fail
from cli.progress import FileProgressBars
from engine.check.report import compare_files, format_report
from engine.errors import UserInputError, printable
from engine.export import unfinished_export
from engine.files.datasets import load_csv
from engine.files.model_file import read_model


def add_parser(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "compare", help="compare two gradient files (ours or anyone's)",
        description="Compare two gradient files parameter by parameter over every sample, "
                    "say where they first disagree and what the pattern suggests, and, where "
                    "the model and data are known, which catalogued mistake makes the file. "
                    "Exit 0 when all agree, 1 when any disagree, 2 when a file cannot be read "
                    "or the two cannot be aligned.")
    parser.add_argument("a", metavar="A", help="a gradient file (.dat, printed text, "
                        "torch.save, .npy, .npz)")
    parser.add_argument("b", metavar="B", help="the other gradient file")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--rtol", type=float, help="relative tolerance (default: the coarser "
                        "file's: float32 1e-5, float64 1e-9, looser for text printed with few "
                        "digits)")
    parser.add_argument("--atol", type=float, help="absolute tolerance (default: the coarser "
                        "file's: float32 1e-8, float64 1e-12)")
    parser.add_argument("--model", metavar="FILE", help="the network (model.json): fixes the "
                        "layout and shapes the files are aligned to; with its parameters, the "
                        "catalogued mistakes are re-made to name the one in a file (a "
                        "model.json beside either file serves too)")
    parser.add_argument("--data", metavar="CSV", help="the samples the files were made from "
                        "(with --model): checked against the inputs the files record, and "
                        "used to re-make the mistakes (else a data.csv beside either file, or "
                        "the inputs a file records)")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    if (problem := bad_tolerance(args)) is not None:
        return fail(problem)
    for path in (args.a, args.b):
        if (problem := unfinished_export(path)) is not None:
            return fail(problem)
    bars = FileProgressBars()
    try:
        model = read_model(args.model) if args.model else None
        data = None
        if args.data:
            if model is None:
                return fail("--data needs --model: the network says how many columns are "
                            "inputs and how many are targets")
            data = load_csv(args.data, model.spec)
        result = compare_files(args.a, args.b, model.spec if model else None,
                               args.rtol, args.atol, data, model.params if model else None,
                               progress=bars)
    except UserInputError as e:
        return fail(str(e))
    finally:
        bars.close()
    report = result.report
    if args.json:
        print(json.dumps(report.to_json()))
    else:
        # line by line: names (and notes quoting them) escaped, the report's own lines kept
        text = format_report(report, args.a, args.b)
        print("\n".join(printable(line) for line in text.split("\n")))
    return EXIT_OK if report.agree else EXIT_DISAGREE

"""`check FILE.py[:NAME]`: a student's own backpropagation beside torch autograd."""

import argparse
import json
import sys

from cli.common import (
    EXIT_DISAGREE,
    EXIT_INPUT,
    EXIT_OK,
    PROG,
    add_data_options,
    add_network_options,
    dataset,
    fail,
    network,
)
from engine.check.report import format_report
from engine.check.usercode import MEMORY_MB, TIMEOUT, UserCode, UserCodeError, check_code
from engine.errors import UserInputError, printable


def add_parser(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "check", help="run your own gradients(params, x, y) on every sample beside torch",
        description="Run the function gradients(params, x, y) of FILE.py (or FILE.py:NAME) "
                    "on every sample, batch size 1, at the same parameters, and compare what "
                    "it returns with torch autograd: the table, first disagreement and "
                    "diagnosis of `compare`. Your file runs in a process of its own with a "
                    "time limit per call and a memory limit; it is the only code the explorer "
                    "runs. Exit 0 when it agrees, 1 when it disagrees, 2 when it cannot be "
                    "run or what it returns is not a gradient of every parameter.")
    parser.add_argument("code", metavar="FILE.py[:NAME]",
                        help="your file, and the function in it (default: gradients)")
    add_network_options(parser)
    add_data_options(parser)
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--timeout", type=float, default=TIMEOUT, metavar="S",
                        help=f"seconds one call may take (default {TIMEOUT:g})")
    parser.add_argument("--memory", type=int, default=MEMORY_MB, metavar="MB",
                        help=f"memory your code may use (default {MEMORY_MB} MB)")
    parser.add_argument("--rtol", type=float, help="relative tolerance (default: the dtype's)")
    parser.add_argument("--atol", type=float, help="absolute tolerance (default: the dtype's)")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    for name in ("rtol", "atol"):
        value = getattr(args, name)
        if value is not None and not value >= 0:
            return fail(f"--{name} must be 0 or more, not {value}")
    if not args.memory >= 64:
        return fail(f"--memory must be at least 64 MB, not {args.memory}")
    code = UserCode.parse(args.code)
    try:
        spec, params = network(args)
        data = dataset(args, spec)
        checked = check_code(code, spec, params, data, args.timeout, args.memory,
                             args.rtol, args.atol)
    except UserCodeError as e:
        if args.json:
            print(json.dumps({"runs": False, "error": str(e), "output": e.output}))
        else:
            _show_output(e.output)
        # a traceback keeps its lines, each escaped
        lines = str(e).split("\n")
        print("\n".join([f"{PROG}: {printable(lines[0])}", *map(printable, lines[1:])]),
              file=sys.stderr)
        return EXIT_INPUT
    except UserInputError as e:
        return fail(str(e))
    report = checked.comparison.report
    if args.json:
        print(json.dumps({**report.to_json(), "runs": True, "code": code.label,
                          "output": checked.run.output}))
    else:
        _show_output(checked.run.output)
        text = format_report(report, "torch autograd", code.label,
                             subject="your code and torch")
        print("\n".join(printable(line) for line in text.split("\n")))
    return EXIT_OK if report.agree else EXIT_DISAGREE


def _show_output(output: str) -> None:
    if output.strip():
        print("printed by your code:")
        print("\n".join("  | " + printable(line) for line in output.rstrip("\n").split("\n")))

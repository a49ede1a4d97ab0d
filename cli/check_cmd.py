"""`check FILE.py[:NAME]`: a student's own backpropagation beside torch autograd."""

import argparse
import json
import sys
import time

from cli.common import (
    EXIT_DISAGREE,
    EXIT_INPUT,
    EXIT_OK,
    PROG,
    add_data_options,
    add_network_options,
    bad_tolerance,
    dataset,
    fail,
    network,
)
from engine.errors import UserInputError, printable
from engine.export import write_export
from engine.usercode import (
    MEMORY_MB,
    TIMEOUT,
    UserCode,
    UserCodeError,
    as_gradient_set,
    check_code,
    file_stamp,
    report_text,
    verdict_line,
)

WATCH_EVERY = 0.25    # s between looks at the file


def add_parser(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "check", help="run your own gradients(params, x, y) on every sample beside torch",
        description="Run the function gradients(params, x, y) of FILE.py (or FILE.py:NAME) "
                    "on every sample, batch size 1 (or once with the whole batch, where it "
                    "returns every sample's gradients so), at the same parameters, and "
                    "compare what "
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
    parser.add_argument("--write-dat", metavar="OUTDIR",
                        help="also write the assignment's files into OUTDIR (created): "
                             "my_autograd.dat from your code, torch_autograd.dat, model.json "
                             "and data.csv")
    parser.add_argument("--watch", action="store_true",
                        help="check again each time FILE.py is saved, one line a check, "
                             "until Ctrl-C")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    if (problem := bad_tolerance(args)) is not None:
        return fail(problem)
    if not args.memory >= 64:
        return fail(f"--memory must be at least 64 MB, not {args.memory}")
    code = UserCode.parse(args.code)
    try:
        spec, params = network(args)
        data = dataset(args, spec)
    except UserInputError as e:
        return fail(str(e))
    if args.watch:
        return _watch(args, code, spec, params, data)
    try:
        checked = check_code(code, spec, params, data, args.timeout, args.memory,
                             args.rtol, args.atol)
    except UserCodeError as e:
        if args.json:
            print(json.dumps({"runs": False, "error": str(e), "output": e.output}))
        else:
            _show_output(e.output)
        _tell_lines(str(e))
        return EXIT_INPUT
    except UserInputError as e:
        return fail(str(e))
    report = checked.comparison.report
    if args.json:
        staged = checked.stages.to_json() if checked.stages is not None else {
            "first_stage": None, "stages": None}
        print(json.dumps({**report.to_json(), **staged, "runs": True, "code": code.label,
                          "calls": checked.run.calls, "stage_calls": checked.run.stage_calls,
                          "output": checked.run.output}))
    else:
        _show_output(checked.run.output)
        text = report_text(checked)
        print("\n".join(printable(line) for line in text.split("\n")))
    if args.write_dat:
        try:
            written = write_export(args.write_dat, spec, params, data, checked.comparison.a,
                                   as_gradient_set(checked, data))
        except UserInputError as e:
            return fail(str(e))
        except OSError as e:
            return fail(f"{args.write_dat}: cannot write there ({e.strerror or e})")
        if not args.json:
            for path in written.files:
                print(f"wrote {printable(str(path))}")
    return EXIT_OK if report.agree else EXIT_DISAGREE


def _watch(args: argparse.Namespace, code: UserCode, spec, params, data) -> int:
    """A check, one line, at the start and after every save of the file, until Ctrl-C."""
    seen = None
    print(f"watching {printable(str(code.path))} (Ctrl-C to stop)", flush=True)
    while True:
        now = file_stamp(code.path)
        if now != seen:
            seen = now
            print(f"{time.strftime('%H:%M:%S')} {_one_check(args, code, spec, params, data)}",
                  flush=True)
        time.sleep(WATCH_EVERY)


def _one_check(args: argparse.Namespace, code: UserCode, spec, params, data) -> str:
    try:
        checked = check_code(code, spec, params, data, args.timeout, args.memory,
                             args.rtol, args.atol)
    except UserInputError as e:
        lines = [line for line in str(e).split("\n") if line.strip()]
        # the exception's own line says most: a traceback's last line, with where it was
        where = next((line.strip() for line in reversed(lines) if line.strip().startswith(
            "File ")), "")
        return printable(f"{code.label} cannot run: {lines[-1]}" + (f" ({where})" if where
                                                                    else ""))
    return printable(verdict_line(checked))


def _tell_lines(message: str) -> None:
    """`message` on stderr, a traceback keeping its lines, each escaped."""
    lines = message.split("\n")
    print("\n".join([f"{PROG}: {printable(lines[0])}", *map(printable, lines[1:])]),
          file=sys.stderr)


def _show_output(output: str) -> None:
    if output.strip():
        print("printed by your code:")
        print("\n".join("  | " + printable(line) for line in output.rstrip("\n").split("\n")))

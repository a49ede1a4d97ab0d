"""Backprop Explorer: the command line. With no command it opens the window; `export`,
`compare` and `train` do from a shell what the window does with files. No logic lives here:
each command is wired to its module in cli/."""

import argparse
import sys

from cli import compare_cmd, export_cmd, train_cmd


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="backprop-explorer",
        description="Check a hand-written backpropagation against PyTorch autograd, "
                    "stage by stage. With no command, opens the window.")
    parser.add_argument("--version", action="version", version="%(prog)s 0.1.0")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module in (export_cmd, compare_cmd, train_cmd):
        module.add_parser(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command:
        return args.run(args)
    print("Backprop Explorer: the window is not built yet; use the export, compare and train "
          "commands (python app.py --help).")
    return 0


if __name__ == "__main__":
    sys.exit(main())

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
    parser.add_argument("--screenshot", metavar="FILE",
                        help="build the window (offscreen without a screen), save a PNG of it "
                             "at 1280x800 to FILE and exit")
    parser.add_argument("--step", type=int, default=0, metavar="N",
                        help="with --screenshot: take N steps through the first sample first")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module in (export_cmd, compare_cmd, train_cmd):
        module.add_parser(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command:
        return args.run(args)
    from gui.launch import run_window, screenshot  # Qt only when the window is wanted

    if args.screenshot:
        return screenshot(args.screenshot, args.step)
    return run_window(args)


if __name__ == "__main__":
    sys.exit(main())

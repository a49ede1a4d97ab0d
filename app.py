"""Backprop Explorer: the command line. With no command it opens the window; `export`,
`compare` and `train` do from a shell what the window does with files. No logic lives here:
each command is wired to its module in cli/."""

import argparse
import sys
from typing import NoReturn

PROG = "backprop-explorer"


class Parser(argparse.ArgumentParser):
    """argparse whose errors are one line (no usage block), names in them escaped, exit 2."""

    def error(self, message: str) -> NoReturn:
        from engine.errors import printable

        self.exit(2, f"{printable(f'{self.prog}: {message}')} (see {self.prog} --help)\n")


def window_size(text: str) -> tuple[int, int]:
    """ "1366x768" as (1366, 768)."""
    width, x, height = text.lower().partition("x")
    if not (x and width.isdecimal() and height.isdecimal()) or \
            not (200 <= int(width) <= 8000 and 200 <= int(height) <= 8000):
        raise argparse.ArgumentTypeError(f"{text!r} is not a window size such as 1366x768")
    return int(width), int(height)


def build_parser() -> argparse.ArgumentParser:
    # imported here, not at the top, so that a Ctrl-C while torch loads is caught by main
    from cli import check_cmd, compare_cmd, export_cmd, train_cmd

    parser = Parser(
        prog=PROG,
        description="Check a hand-written backpropagation against PyTorch autograd, "
                    "stage by stage. With no command, opens the window.")
    parser.add_argument("--version", action="version", version="%(prog)s 0.1.0")
    parser.add_argument("--screenshot", metavar="FILE",
                        help="build the window (offscreen without a screen), save a PNG of it "
                             "to FILE and exit")
    parser.add_argument("--step", type=int, default=0, metavar="N",
                        help="with --screenshot: take N steps through the sample first")
    parser.add_argument("--size", type=window_size, default=(1600, 1000), metavar="WxH",
                        help="with --screenshot: the window's size (default 1600x1000)")
    parser.add_argument("--train", type=int, default=0, metavar="STEPS",
                        help="with --screenshot: train STEPS SGD steps first, so the live "
                             "plots show")
    parser.add_argument("--dialog", choices=("compare", "network"),
                        help="with --screenshot: save this dialog instead of the window: "
                             "'compare' compares torch's gradients of the session with the "
                             "scratch engine's made with a mistake, 'network' is Network and "
                             "data")
    parser.add_argument("--mistake", metavar="NAME",
                        help="with --screenshot: the scratch engine makes this catalogued "
                             "mistake (as Tools > Inject a mistake), NAME@L in layer L only")
    parser.add_argument("--check", metavar="FILE.py[:NAME]",
                        help="open the window checking your own gradients() from FILE.py in "
                             "the scratch engine's place, as File > Check my code… does (the "
                             "file is run, in a process of its own)")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    for module in (export_cmd, compare_cmd, check_cmd, train_cmd):
        module.add_parser(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    if argv is None and sys.argv[1:2] == ["train"] and not {"-h", "--help"} & set(sys.argv):
        # torch's helper imports torch (~1 s) while this process starts and reads the options
        from engine.train.launch import start_early

        start_early()
    try:
        args = build_parser().parse_args(argv)
        if args.command:
            from cli.progress import catch_ctrl_c

            catch_ctrl_c()
            return args.run(args)
    except KeyboardInterrupt:
        # Ctrl-C in a command: one line, the shell's code for SIGINT; whatever was being
        # written is a temporary file its writer removes (engine/files/atomic.py, engine/export.py)
        print("interrupted", file=sys.stderr)
        return 130
    from gui.launch import run_window, screenshot  # Qt only when the window is wanted

    if args.screenshot:
        return screenshot(args.screenshot, args.step, args.size, args.train, args.dialog,
                          args.mistake, args.check)
    return run_window(args)


if __name__ == "__main__":
    sys.exit(main())

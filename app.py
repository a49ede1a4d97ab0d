"""Backprop Explorer: the command line. With no command it will open the window; the commands
that work with files live in engine/ and are wired here."""

import argparse
import sys

from engine.spec import DEFAULT_PRESET, PRESETS


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="backprop-explorer",
        description="Check a hand-written backpropagation against PyTorch autograd, "
                    "stage by stage.")
    parser.add_argument("--version", action="version", version="%(prog)s 0.1.0")
    return parser


def main(argv: list[str] | None = None) -> int:
    build_parser().parse_args(argv)
    print("Backprop Explorer: the window is not built yet. It will step one sample at a time "
          "through the forward and backward passes of the scratch engine beside torch "
          f"autograd, starting with the network {DEFAULT_PRESET} "
          f"({PRESETS[DEFAULT_PRESET].describe()}).")
    return 0


if __name__ == "__main__":
    sys.exit(main())

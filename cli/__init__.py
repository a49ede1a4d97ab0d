"""The command line's commands: export, compare, train. Each turns arguments into calls to
engine/ and engine's results into text; app.py only wires them to argparse."""

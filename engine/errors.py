"""Errors a user can cause. They carry a message meant to be shown as it is, never a traceback."""


class UserInputError(ValueError):
    """A problem in what the user gave us (a spec, a file, a setting), with a message that says
    what is wrong and, where it helps, what would be valid."""


class SpecError(UserInputError):
    """A network specification, model file or parameter set that cannot be built."""


class DataError(UserInputError):
    """A dataset (CSV or generated) that does not fit the network."""


def printable(text: str) -> str:
    """`text` with every character a terminal or a dialog would act on (newlines, ANSI and OSC
    escapes, other controls, invisible format characters) written as repr writes it, so a file
    named with them shows as one plain line and cannot clear a screen or set a title."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)

"""Printed gradients: what numpy, torch and Python print, read by brackets rather than lines.

The text is split into tokens (numbers, names, strings, brackets, other characters) and the
brackets are matched with an explicit stack, so a row wrapped over several lines is still one
row, and nesting is limited without recursion. Outside brackets everything is prose, except
that the prose just before a value is kept as its label ("dLdw3", "weight_1 =", "fc1.weight:").

Values understood: [ ... ] lists (with or without commas), ( ... ) tuples, { 'key': ... } dicts,
tensor(...), array(...), np.float32(...) and OrderedDict(...) with their keyword arguments
(dtype=, requires_grad=, grad_fn=<...>, device=...). A name with digits (weight_1, float64,
MulBackward0) is a name, never a number. Nothing in the text is evaluated.

Every array read is a PrintedLeaf, which keeps how many significant digits its numbers were
printed with: the file's precision, which the comparison's tolerances must allow for.
"""

import bisect
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from engine.files.gradset import GradientFileError, clipped, shape_text
from engine.files.readers.names import parse_label
from engine.files.readers.tree import MAX_DEPTH, Leaf, Node

_TOKEN = re.compile(r"""
  (?P<ws>\s+)
| (?P<ell>\.\.\.|…)
| (?P<num>[+-]?(?>(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?|(?i:inf(?:inity)?|nan))(?!\w))
| (?P<junk>[+-]?\.?\d[\w.+-]*)
| (?P<name>[A-Za-z_]\w*(?:\.\w+)*)
| (?P<str>'[^'\n]*'|"[^"\n]*")
| (?P<punct>[\[\](){}:,=<>])
| (?P<other>.)
""", re.X)
_EXPONENT = re.compile("[eE]")
_MEASURE_EVERY = 4096
# What a printout may hold, so that reading it stays within about a gigabyte whatever its
# shape (engine/files/gradset.py MAX_TEXT_BYTES bounds its size): an array costs ~1 KB to read and
# check (its objects, its sample's), a bracketed row ~300 bytes until its array is built, a
# number ~50 bytes. Measured figures: docs/robustness.md.
MAX_TEXT_ARRAYS = 250_000
MAX_TEXT_LISTS = 1_000_000
SAVE_INSTEAD = "save that many with np.savez or torch.save, which are read at their size"
# The dtype a printed array has when its repr does not say: torch omits float32, numpy float64.
_ARRAY_CALLS = {"tensor": "float32", "torch.tensor": "float32", "array": "float64",
                "np.array": "float64", "numpy.array": "float64"}
_SCALAR_CALLS = {f"{prefix}float{bits}": f"float{bits}"
                 for prefix in ("", "np.", "numpy.") for bits in (16, 32, 64)}
_DICT_CALLS = {"OrderedDict", "collections.OrderedDict", "dict"}
CALLS = {**_ARRAY_CALLS, **_SCALAR_CALLS, **dict.fromkeys(_DICT_CALLS)}
_FLOAT_DTYPES = {"float16": "float32", "half": "float32", "bfloat16": "float32",
                 "float32": "float32", "float": "float32", "float64": "float64",
                 "double": "float64"}
_CONSTANTS = ("True", "False", "None")
_SCALAR_AFTER = re.compile(r"(?:[:=]|\bis)\s*$")
PRINTED = ("(numbers are read as numpy, torch and Python print them: digits 0-9, '.', an "
           "exponent, a sign, inf or nan)")
REPRINT = ("print them in full with np.set_printoptions(threshold=sys.maxsize) (for torch: "
           "torch.set_printoptions(profile='full')) and write the file again")


@dataclass
class PrintedLeaf(Leaf):
    """A Leaf read from text. digits is the most significant digits any of its numbers prints
    ("0.0016410816" 8, "1.2345e-03" 5, "-0.5" 1, "0.5000" 4; 0 when all are zeros): printers
    drop trailing zeros, so the longest number shows the precision they printed with."""

    digits: int = 0


class Entry(NamedTuple):
    """A value found outside any bracket, with the prose just before it."""

    label: str
    node: Node
    line: int


class _Token(NamedTuple):
    kind: str
    text: str
    start: int
    end: int


class _Raw:
    """A bare bracketed list of numbers being built: values flat in C order, its shape, and the
    most significant digits any of them prints."""

    __slots__ = ("digits", "flat", "shape")

    def __init__(self, flat: list[float], shape: tuple[int, ...], digits: int) -> None:
        self.flat, self.shape, self.digits = flat, shape, digits


class _Frame:
    """An open bracket: kind is "[", "(", "{" or "call"; state steps through a dict or call."""

    __slots__ = ("angle", "digits", "items", "key", "kind", "kwargs", "name", "start", "state",
                 "texts")

    def __init__(self, kind: str, token: _Token, name: str = "") -> None:
        self.kind, self.start, self.name = kind, token.start, name
        self.items: list[object] = []
        self.state = "arg" if kind == "call" else "key"
        self.key: str | None = None
        self.kwargs: dict[str, object] = {}
        self.angle = 0
        # the printed numbers directly inside, measured when the bracket closes or when
        # _MEASURE_EVERY have come (one string each, cheaper than measuring every number as it
        # is read, and never as many as the numbers); digits: those measured already, and
        # those of the values inside that are finished already
        self.texts: list[str] = []
        self.digits = 0

    def measure(self) -> None:
        """Fold the numbers kept as text into `digits`."""
        self.digits = max(self.digits, max(map(significant_digits, self.texts), default=0))
        self.texts.clear()


class _Tokens:
    """Tokens without white space, with one of lookahead."""

    def __init__(self, text: str) -> None:
        self._it = _TOKEN.finditer(text)
        self._next: _Token | None = self._read()

    def _read(self) -> _Token | None:
        for m in self._it:
            kind = m.lastgroup or "other"
            if kind != "ws":
                return _Token(kind, m.group(), m.start(), m.end())
        return None

    def peek(self) -> _Token | None:
        return self._next

    def __iter__(self) -> Iterator[_Token]:
        return self

    def __next__(self) -> _Token:
        token = self._next
        if token is None:
            raise StopIteration
        self._next = self._read()
        return token


def parse_text(text: str, source: str) -> list[Entry]:
    """Every top-level value of `text` in order, each with its label (the last two lines of
    prose before it, see names.read_label) and line. Errors (an unclosed bracket, '...'
    summaries, a word inside an array, nesting deeper than MAX_DEPTH) are GradientFileErrors
    naming `source` and the line."""
    return _Parser(text, source).run()


class _Parser:
    def __init__(self, text: str, source: str) -> None:
        self.text, self.source = text, source
        self.tokens = _Tokens(text)
        self.newlines = [m.start() for m in re.finditer("\n", text)]
        self.stack: list[_Frame] = []
        self.entries: list[Entry] = []
        self.label_start = 0
        self.value_start = 0
        self.lists = 0
        self.arrays = 0

    def line(self, pos: int | _Token | _Frame) -> int:
        """The line number of a position in the text, a token or a bracket's start."""
        if not isinstance(pos, int):
            pos = pos.start
        return bisect.bisect_right(self.newlines, pos) + 1

    def fail(self, at: int | _Token | _Frame, problem: str) -> GradientFileError:
        return GradientFileError(self.source, f"line {self.line(at)}: {problem}")

    def run(self) -> list[Entry]:
        for token in self.tokens:
            if self.stack:
                self.inside(token)
            else:
                self.top(token)
        if self.stack:
            frame = self.stack[0]
            raise self.fail(frame, f"the {_what(frame)} opened here is never closed; the "
                            "file looks cut short")
        return self.entries

    # Outside brackets: prose, except where a value starts.
    def top(self, token: _Token) -> None:
        starts = _starts_value(token, self.tokens.peek())
        if starts:
            self.value_start = token.start
            self.value(token)
        elif token.kind == "num" and self._scalar_here(token):
            self.value_start = token.start
            self.deliver(float(token.text), token)
        elif token.kind == "junk" and _python_reads(token.text) and self._scalar_here(token):
            # 'b3 = 1_000' or 'b3 = ١٢': a value, but not as numpy, torch or Python print one
            raise self.fail(token, f"{clipped(token.text, 30)!r} is not a number {PRINTED}")

    def _scalar_here(self, token: _Token) -> bool:
        """A bare number outside brackets is a value only after 'loss:', 'b3 =', 'y is' ..."""
        line = self.text[max(self.label_start, self.text.rfind("\n", 0, token.start) + 1):
                         token.start]
        return bool(_SCALAR_AFTER.search(line)) and parse_label(line) not in (None, "", "x")

    def value(self, token: _Token) -> bool:
        """Start or deliver the value that `token` begins; False if it begins none."""
        text = token.text
        if token.kind == "num":
            self.deliver(float(text), token)
        elif token.kind == "str":
            self.deliver(text[1:-1], token)
        elif text in ("[", "(", "{"):
            self.open(_Frame(text, token))
        elif token.kind == "name" and text in CALLS and _is(self.tokens.peek(), "("):
            next(self.tokens)
            self.open(_Frame("call", token, text))
        else:
            return False
        return True

    def open(self, frame: _Frame) -> None:
        if len(self.stack) >= MAX_DEPTH:
            raise self.fail(frame, f"brackets nested more than {MAX_DEPTH} deep; this "
                            "is not a gradient file")
        self.lists += 1
        if self.lists > MAX_TEXT_LISTS:
            raise self.fail(frame, f"more than {MAX_TEXT_LISTS} bracketed lists; printed "
                            f"text is read up to that many (each costs hundreds of bytes to "
                            f"read): {SAVE_INSTEAD}")
        self.stack.append(frame)

    def count_array(self, at: int | _Frame) -> None:
        """One more array read; past MAX_TEXT_ARRAYS the file is refused here."""
        self.arrays += 1
        if self.arrays > MAX_TEXT_ARRAYS:
            raise self.fail(at, f"more than {MAX_TEXT_ARRAYS} arrays; printed text is read "
                            f"up to that many (each costs about a kilobyte to read): "
                            f"{SAVE_INSTEAD}")

    def node(self, value: object, line: int, digits: int = 0) -> Node:
        """A finished value as a node; `digits` are those of a bare number (a _Raw knows its
        own)."""
        if isinstance(value, _Raw | float):
            self.count_array(line)
            return _leaf(value, line, digits)
        if isinstance(value, tuple):  # a (key, value) pair inside a dict under construction
            return [value[0], self.node(value[1], line)]
        if isinstance(value, dict):
            return {k: self.node(v, line) for k, v in value.items()}
        return value  # type: ignore[return-value]

    def deliver(self, value: object, token: _Token) -> None:
        """Hand a finished value to the open bracket, or record it as a top-level entry."""
        if not self.stack:
            line = self.line(self.value_start)
            node = self.node(value, line, significant_digits(token.text)
                             if isinstance(value, float) else 0)
            if isinstance(node, Leaf) and node.values.size == 0:
                return  # "[]" or "()" in prose
            label = _label(self.text[self.label_start:self.value_start])
            self.entries.append(Entry(label, node, _first_line(node, line)))
            self.label_start = token.end
            return
        frame = self.stack[-1]
        if frame.kind in ("[", "("):
            frame.items.append(value)
            if isinstance(value, float):
                frame.texts.append(token.text)
            else:
                frame.digits = max(frame.digits, _digits(value))
        elif frame.kind == "{":
            if isinstance(value, float):  # a number of its own: {'b3': 0.5}
                value = _Raw([value], (), significant_digits(token.text))
            frame.items.append((frame.key, value))
            frame.state = "sep"
        elif frame.state == "arg":
            frame.items.append(value)
            frame.digits = (significant_digits(token.text) if isinstance(value, float)
                            else _digits(value))
            frame.state = "sep"
        else:
            frame.kwargs[frame.key or ""] = value
            frame.state = "sep"

    # Inside brackets: every token must fit.
    def inside(self, token: _Token) -> None:
        frame, text = self.stack[-1], token.text
        if token.kind == "num" and frame.kind == "[":  # most tokens: keep this path short
            frame.items.append(float(text))
            frame.texts.append(text)
            if len(frame.texts) >= _MEASURE_EVERY:
                frame.measure()
            return
        if frame.angle:  # grad_fn=<MulBackward0>: skipped whole
            frame.angle += {"<": 1, ">": -1}.get(text, 0)
            if not frame.angle:
                self.deliver("<...>", token)
            return
        if token.kind == "ell":
            raise self.fail(token, f"values are left out ('{text}'): numpy and torch "
                            f"shorten long arrays when printing; {REPRINT}")
        if text in (")", "]", "}"):
            if text != {"[": "]", "(": ")", "{": "}", "call": ")"}[frame.kind]:
                raise self.fail(token, f"'{text}' closes the {_what(frame)} opened on "
                                f"line {self.line(frame)}")
            self.stack.pop()
            self.deliver(self.close(frame), token)
            return
        if frame.kind in ("[", "("):
            if text == "," or self.value(token):
                return
        elif frame.kind == "{":
            if self.dict_token(frame, token):
                return
        elif self.call_token(frame, token):
            return
        if token.kind in ("name", "junk"):
            why = f" {PRINTED}" if _python_reads(text) else ""
            raise self.fail(token, f"{clipped(text, 30)!r} is not a number{why} (in the "
                            f"{_what(frame)} that starts on line {self.line(frame)})")
        raise self.fail(token, f"unexpected {clipped(text, 30)!r} in the {_what(frame)} that "
                        f"starts on line {self.line(frame)}")

    def dict_token(self, frame: _Frame, token: _Token) -> bool:
        """{'fc1.weight': tensor(...), 'loss': 0.5}: key, colon, value, comma, ..."""
        text = token.text
        if frame.state == "key" and token.kind in ("str", "num", "name"):
            frame.key = text[1:-1] if token.kind == "str" else text
            frame.state = "colon"
        elif (frame.state, text) in (("colon", ":"), ("sep", ",")):
            frame.state = "value" if text == ":" else "key"
        elif frame.state == "value" and token.kind == "name" and text in _CONSTANTS:
            self.deliver(None, token)
        else:
            return frame.state == "value" and self.value(token)
        return True

    def call_token(self, frame: _Frame, token: _Token) -> bool:
        """tensor(<value>, dtype=torch.float64, grad_fn=<MulBackward0>): one positional value,
        then keyword arguments whose values are kept only for dtype."""
        text = token.text
        if frame.state == "arg":
            return self.value(token)
        if frame.state == "sep" and text == ",":
            frame.state = "kw"
        elif frame.state == "kw" and token.kind == "name" and _is(self.tokens.peek(), "="):
            next(self.tokens)
            frame.key, frame.state = text, "kwval"
        elif frame.state == "kwval":
            if text == "<":
                frame.angle = 1
            elif token.kind == "name":
                self.deliver(text, token)
            else:
                return self.value(token)
        else:
            return False
        return True

    def close(self, frame: _Frame) -> object:
        if frame.kind in ("[", "("):
            return self.build_list(frame)
        if frame.kind == "{":
            if frame.state == "colon" or frame.state == "value":
                raise self.fail(frame, "a dict entry has no value")
            return dict(frame.items)  # type: ignore[arg-type]
        return self.build_call(frame)

    def build_list(self, frame: _Frame) -> object:
        items = [_scalar(i) for i in frame.items]
        frame.measure()
        digits = frame.digits
        if all(isinstance(i, float) for i in items):
            return _Raw(items, (len(items),), digits)  # type: ignore[arg-type]
        if all(isinstance(i, _Raw) for i in items):
            shapes = [i.shape for i in items]  # type: ignore[union-attr]
            if len(set(shapes)) == 1:
                flat = [v for i in items for v in i.flat]  # type: ignore[union-attr]
                return _Raw(flat, (len(items), *shapes[0]), digits)
            if len({len(s) for s in shapes}) == 1:
                odd = next(s for s in shapes if s != shapes[0])
                raise self.fail(frame, f"the array that starts here is ragged: its rows "
                                f"differ in {_count(shapes[0], odd)}")
        elif any(isinstance(i, float) for i in items) and any(isinstance(i, _Raw) for i in items):
            raise self.fail(frame, "the array that starts here is ragged: it mixes "
                            "numbers and lists")
        line = self.line(frame)
        # a number here ('w1', np.float32(0.5)) is given the digits of the list it sits in
        return [self.node(i, line, digits) for i in items]

    def build_call(self, frame: _Frame) -> object:
        name = frame.name
        arg = _scalar(frame.items[0]) if frame.items else None
        if name in _DICT_CALLS:
            if isinstance(arg, dict):
                return arg
            if isinstance(arg, list) and all(isinstance(p, list) and len(p) == 2
                                             and isinstance(p[0], str) for p in arg):
                return {p[0]: p[1] for p in arg}
            raise self.fail(frame, f"{name}(...) does not hold (name, value) pairs")
        if isinstance(arg, float):
            values = np.array(arg)
        elif isinstance(arg, _Raw):
            values = np.array(arg.flat, dtype=np.float64).reshape(arg.shape)
        else:
            raise self.fail(frame, f"{name}(...) holds something other than numbers")
        stated = str(frame.kwargs.get("dtype", "")).rsplit(".", 1)[-1]
        dtype = (_FLOAT_DTYPES.get(stated) if stated
                 else _SCALAR_CALLS.get(name) or _ARRAY_CALLS.get(name))
        self.count_array(frame)
        return PrintedLeaf(values, dtype, explicit=True, line=self.line(frame),
                           digits=frame.digits)


def _starts_value(token: _Token, after: _Token | None) -> bool:
    """Whether `token`, outside brackets, begins a value: "[1.0, 2.0]" and "[tensor(" do,
    "[INFO]" and "[torch]" in prose do not; "tensor(", "array(", "([" and "{'w1':" do."""
    if after is None:
        return False
    name_after = after.kind == "name" and after.text not in CALLS
    if token.text == "[":
        return not name_after
    if token.text == "(":
        return after.text in ("[", "(") or (after.kind == "name" and after.text in CALLS)
    if token.text == "{":
        return after.kind == "str"
    return token.kind == "name" and token.text in CALLS and after.text == "("


def _python_reads(text: str) -> bool:
    """Whether float() reads `text` although no printer writes it so ("1_000", "١٢", "１２")."""
    try:
        float(text)
    except ValueError:
        return False
    return True


def _is(token: _Token | None, text: str) -> bool:
    return token is not None and token.text == text


def _what(frame: _Frame) -> str:
    return f"{frame.name}(...)" if frame.kind == "call" else f"'{frame.kind}'"


def _count(a: tuple[int, ...], b: tuple[int, ...]) -> str:
    if len(a) == 1:
        return f"length ({a[0]} and {b[0]} values)"
    return f"shape ({shape_text(a)} and {shape_text(b)})"


def _scalar(item: object) -> object:
    """A 0-d array inside a list ([np.float64(0.1), ...]) is just a number there."""
    if isinstance(item, Leaf) and item.values.ndim == 0:
        return float(item.values)
    return item


def significant_digits(number: str) -> int:
    """The significant digits a printed number shows: "0.0016410816" 8, "1.2345e-03" 5,
    "-0.5" 1, "0.5000" 4, "0.0" 0. (inf and nan count their letters: no gradient holds them,
    check() refuses them.)"""
    digits = number.lstrip("+-0.")
    if "e" in digits or "E" in digits:
        digits = _EXPONENT.split(digits, 1)[0]
    return len(digits) - ("." in digits)


def _digits(value: object) -> int:
    return value.digits if isinstance(value, _Raw | PrintedLeaf) else 0


def _leaf(value: "_Raw | float", line: int, digits: int = 0) -> PrintedLeaf:
    """A bare list of numbers, or a bare number with the `digits` it prints, as an array."""
    if isinstance(value, _Raw):
        return PrintedLeaf(np.array(value.flat, dtype=np.float64).reshape(value.shape), None,
                           explicit=False, line=line, digits=value.digits)
    return PrintedLeaf(np.array(value), None, explicit=False, line=line, digits=digits)


def _first_line(node: Node, default: int) -> int:
    if isinstance(node, Leaf) and node.line:
        return node.line
    return default


def _label(prose: str) -> str:
    """The last two non-blank lines of prose before a value: 'autograd_w\nweight_1'."""
    lines = [line.strip() for line in prose.splitlines() if line.strip()]
    return "\n".join(lines[-2:])

"""A stage's formula as a person reads it: the plain text of engine/net/stages.py turned into rich
text (italic symbols, layer numbers as subscripts, ᵀ as a superscript), the same formula with
this sample's numbers put in, and a one-line description of what the stage does.

Symbols follow the seeds: x the input, y_l = f(z_l) the output of layer l (y_L = ŷ), y the
label, w_l and b_l the parameters, L the loss, ∂L/∂v a gradient."""

import html
import re
from collections.abc import Callable

import numpy as np

from engine.net.stages import FORWARD, StageInfo
from gui.numbers import array_text, result_text

# a gradient symbol first, so that the L of ∂L/∂w3 is not read as the loss on its own
_SYMBOL = re.compile(r"∂L/∂(?P<dvar>[yzwb])(?P<dlayer>\d+)"
                     r"|(?<![A-Za-z_\d])(?P<var>[xyzwbL])(?P<layer>\d*)(?![A-Za-z_\d])")
_SUBSCRIPTS = str.maketrans("0123456789", "₀₁₂₃₄₅₆₇₈₉")

Lookup = Callable[[str], np.ndarray | None]
_OPERATORS = tuple("+-·⊙*/−")
# Qt draws <sup> smaller than the text around it: at 9 pt a T of 6 px whose bar is hinted to
# the width of its stem reads "I" or "|" in most fonts; from a span of this size it is 7 px
# with a bar twice its stem in every font found here (at 9 and 11.7 pt, the card's sizes)
SUPERSCRIPT_PT = 11.0
TRANSPOSE_HTML = f"<sup><span style='font-size:{SUPERSCRIPT_PT:g}pt'>T</span></sup>"


def _symbol_html(letter: str, layer: str) -> str:
    sub = f"<sub>{layer}</sub>" if layer else ""
    return f"<i>{letter}</i>{sub}"


def to_html(text: str) -> str:
    """Plain formula text as rich text: "∂L/∂z2 = y1·w2ᵀ" becomes
    ∂<i>L</i>/∂<i>z</i><sub>2</sub> = <i>y</i><sub>1</sub>·<i>w</i><sub>2</sub><sup>T</sup> (the
    T at a size that reads, TRANSPOSE_HTML)."""
    parts: list[str] = []
    end = 0
    for match in _SYMBOL.finditer(text):
        parts.append(html.escape(text[end:match.start()]))
        if match["dvar"]:
            parts.append("∂<i>L</i>/∂" + _symbol_html(match["dvar"], match["dlayer"]))
        else:
            parts.append(_symbol_html(match["var"], match["layer"]))
        end = match.end()
    parts.append(html.escape(text[end:]))
    return "".join(parts).replace("ᵀ", TRANSPOSE_HTML)


def plain_symbol(symbol: str) -> str:
    """A symbol with its layer number as Unicode subscripts, for lists and titles: ∂L/∂w₃."""
    def sub(match: re.Match) -> str:
        whole, layer = match.group(0), match["dlayer"] or match["layer"]
        return whole[:len(whole) - len(layer)] + layer.translate(_SUBSCRIPTS)

    return _SYMBOL.sub(sub, symbol)


def symbol_key(symbol: str, n_layers: int) -> str:
    """The session key behind a formula symbol: y3 is "y_hat" in a 3-layer net, "a3" deeper;
    ∂L/∂y2 is "dL/da2"; w2 and b2 are parameters; x and y the sample; L the loss."""
    match = _SYMBOL.fullmatch(symbol)
    if match is None:
        raise ValueError(f"not a formula symbol: {symbol!r}")
    if match["dvar"]:
        letter, layer = match["dvar"], int(match["dlayer"])
        if letter == "y":
            return "dL/dy_hat" if layer == n_layers else f"dL/da{layer}"
        return f"dL/d{letter}{layer}"
    letter, layer = match["var"], match["layer"]
    if letter == "L":
        return "loss"
    if letter == "y" and layer:
        return "y_hat" if int(layer) == n_layers else f"a{layer}"
    if letter == "y":
        return "label"
    return f"{letter}{layer}"


def with_numbers(formula: str, lookup: Lookup, result: np.ndarray) -> str:
    """The formula with each symbol on its right-hand side replaced by this sample's value
    (small values as numbers, big ones as their shape), ending in `result`:
    "∂L/∂y3 = 2(y3 - y)" becomes "∂L/∂y3 = 2(0.3579 - 0.8013) = -0.8868"."""
    left, sep, right = formula.partition(" = ")
    if not sep:
        return formula

    def put(match: re.Match) -> str:
        value = lookup(match.group(0))
        if value is None:
            return match.group(0)
        text = array_text(value)
        if text.startswith("⟨"):
            return f"{match.group(0)}{text}"
        # "y3 - y" with y = -0.5 reads "0.3 - (-0.5)", not "0.3 - -0.5"
        before = right[:match.start()].rstrip()
        return f"({text})" if text.startswith("-") and before[-1:] in _OPERATORS else text

    return f"{left} = {_SYMBOL.sub(put, right)} = {result_text(result)}"


_KIND_TEXT = {
    "z": "the weighted input {sym} of layer {l}",
    "a": "the output {sym} of layer {l}, its activation",
    "loss": "the loss L of this sample",
    "dy_hat": "the loss's gradient at the output, {sym}",
    "dz": "the error of layer {l}, {sym}",
    "dw": "the gradient of the weights of layer {l}, {sym}",
    "db": "the gradient of the biases of layer {l}, {sym}",
    "da": "the gradient at the output of layer {l}, {sym}",
}


def describe(info: StageInfo) -> str:
    """"Forward, layer 2: the output y₂ of layer 2, its activation"."""
    layer = max(info.layers)
    text = _KIND_TEXT[info.kind].format(sym=plain_symbol(info.symbol), l=layer)
    direction = "Forward" if info.direction == FORWARD else "Backward"
    return f"{direction}: {text}"

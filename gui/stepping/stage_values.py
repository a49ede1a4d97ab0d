"""What the window reads from the session for one unit, one weight or one formula symbol:
both engines' values and how far apart they are. Every value comes from the session; this
module only picks elements and pairs them up.

Columns of the network drawing: 0 the inputs, 1..L the layers, L + 1 the loss."""

from dataclasses import dataclass

import numpy as np

from engine.check.compare import default_tolerance, elementwise
from engine.net.params import to_layout
from engine.net.stages import StageInfo
from engine.session import USER, Session, StagePair
from gui.numbers import exact, short
from gui.stepping.formula import plain_symbol, symbol_key
from gui.stepping.pending import TORCH_LOADING, torch_mark


def element_diffs(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """|a - b| and |a - b| / max(|a|, |b|) per element, as engine.check.compare defines them."""
    diff, rel, _ = elementwise(a, b, *default_tolerance(np.result_type(a, b, np.float32)))
    return diff, rel


def forward_key(session: Session, column: int) -> str | None:
    """The stage holding the forward value of a column's units: a<l>, y_hat or loss; None for
    the inputs, which are the sample's x."""
    n_layers = session.spec.n_layers
    if column == 0:
        return None
    if column == n_layers + 1:
        return "loss"
    return "y_hat" if column == n_layers else f"a{column}"


def on_units(info: StageInfo, column: int) -> bool:
    """Whether the stage's value is drawn on the units of `column` (not on edges)."""
    return not info.on_edges and column in info.layers


def weight_index(session: Session, out: int, inp: int) -> tuple[int, int]:
    """Where weight (out, in) of the engine layout sits in an array of the spec's layout."""
    return (inp, out) if session.spec.layout == "in_out" else (out, inp)


@dataclass(frozen=True)
class Reading:
    """One element from both engines: `title` names it, `note` says which value it is."""

    title: str
    note: str
    scratch: np.generic
    torch: np.generic | None  # None while torch loads
    diff: float | None
    missing: str = TORCH_LOADING  # what stands for torch's value while it is None
    ours: str = "scratch"         # whose the first value is: "scratch" or "yours"

    def html(self) -> str:
        loading = self.torch is None
        rows = [(self.ours, exact(self.scratch)),
                ("torch", self.missing if loading else exact(self.torch)),
                ("|difference|", "…" if loading else short(self.diff))]
        cells = "".join(f"<tr><td>{name}&nbsp;</td><td align='right'><tt>{value}</tt></td></tr>"
                        for name, value in rows)
        return f"<b>{self.title}</b><br><i>{self.note}</i><table>{cells}</table>"


def ours_title(session: Session, pair: StagePair | None = None) -> str:
    """Whose the first side of `pair` (default: the current stage) is, as a heading:
    "Scratch (ours)", "Yours (mine.py:gradients)", or "Scratch, not yours" on a stage the
    user's code does not give."""
    pair = pair or session.stage
    if not session.checking_yours:
        return "Scratch (ours)"
    return f"Yours ({session.yours_label})" if pair.source == USER else "Scratch, not yours"


def the_pass(session: Session) -> str:
    """"your pass" or "the scratch pass": whose pass departs from torch, in a sentence."""
    return "your pass" if session.checking_yours else "the scratch pass"


def whose(session: Session, key: str) -> str:
    """"yours" when the user's code gave stage `key`'s value shown, else "scratch"."""
    return session.pairs[session.stage_keys[key]].source


def _pair(session: Session, key: str, index: tuple[int, ...]
          ) -> tuple[np.generic, np.generic | None, float | None]:
    a = session.value(key, "scratch")[index]
    theirs = session.value(key, "torch")
    if theirs is None:
        return a, None, None
    b = theirs[index]
    diff, _ = element_diffs(a, b)
    return a, b, float(diff)


def _info(session: Session, key: str) -> StageInfo:
    return next(p.scratch.info for p in session.pairs if p.key == key)


def unit_reading(session: Session, column: int, unit: int) -> Reading:
    """Unit `unit` (from 0) of `column`: the current stage's value when the stage is drawn on
    that column's units, else the unit's forward value from both engines."""
    info = session.stage.scratch.info
    sizes = session.spec.sizes
    if column == session.spec.n_layers + 1:
        where = "the loss"
    else:
        kind = "input" if column == 0 else f"layer {column}"
        where = f"unit {unit + 1} of {sizes[column]}, {kind}"
    if on_units(info, column):
        index = () if info.kind == "loss" else (unit,)
        a, b, diff = _pair(session, info.key, index)
        return Reading(f"{plain_symbol(info.symbol)}: {where}", "the current stage", a, b, diff,
                       torch_mark(session).text, whose(session, info.key))
    key = forward_key(session, column)
    if key is None:
        x = session.sample[0][unit]
        return Reading(f"x: {where}", "the sample's input, given to both engines", x, x, 0.0)
    index = () if key == "loss" else (unit,)
    a, b, diff = _pair(session, key, index)
    return Reading(f"{plain_symbol(_info(session, key).symbol)}: {where}", "forward value",
                   a, b, diff, torch_mark(session).text, whose(session, key))


def edge_reading(session: Session, layer: int, out: int, inp: int) -> Reading:
    """The weight of layer `layer` from unit `inp` below to unit `out` (both from 0): its
    gradient when the current stage is that layer's dL/dw, else the weight itself."""
    info = session.stage.scratch.info
    where = f"from unit {inp + 1} of {_column_name(layer - 1)} to unit {out + 1} of layer {layer}"
    if info.on_edges and info.key == f"dL/dw{layer}":
        a, b, diff = _pair(session, info.key, weight_index(session, out, inp))
        return Reading(f"{plain_symbol(info.symbol)}: {where}", "the current stage", a, b, diff,
                       torch_mark(session).text, whose(session, info.key))
    w = session.params[f"w{layer}"][out, inp]
    return Reading(f"{plain_symbol(f'w{layer}')}: {where}", "the weight, the same in both engines",
                   w, w, 0.0)


def _column_name(column: int) -> str:
    return "the input" if column == 0 else f"layer {column}"


def symbol_value(session: Session, symbol: str) -> np.ndarray | None:
    """This sample's scratch value of a formula symbol (weights in the spec's layout), or
    None for a symbol the session does not know."""
    key = symbol_key(symbol, session.spec.n_layers)
    x, y = session.sample
    if key == "x":
        return x
    if key == "label":
        return y
    if key[0] in "wb" and key in session.params:
        return to_layout({key: session.params[key]}, session.spec.layout)[key]
    try:
        return session.value(key, "scratch")
    except KeyError:
        return None

"""What people call their gradients, and how we read it as w1, b1, w2, b2, ...

Two naming styles exist in the wild:

- numbered: the layer's number is in the name: w1, W1, w_1, weight_1, weights1, bias 2, b[2],
  dLdw3, dL/dw3, dw3, grad_w1, gradient of w1, w1.grad, layer1 weight, weight of layer 1;
- module: a PyTorch module path before .weight or .bias: fc1.weight, dense.0.bias,
  model.layers.2.weight, hidden.weight, and plain weight/bias for a single nn.Linear.

Numbered names keep their numbers (a file counting from 0 is shifted to count from 1). Module
names are ordered by the numbers in them (fc1 < fc2, dense.0 < dense.2 < dense.4), or by first
appearance when some have none (hidden, output), then numbered 1..L.
"""

import re
from collections.abc import Sequence
from dataclasses import dataclass

from engine.files.gradset import GradientFileError, clipped
from engine.net.spec import MAX_LAYERS

_KIND = r"(?P<kind>weights?|bias(?:es)?|w|b)"
_MODULE = re.compile(
    r"(?<![\w.])(?P<mod>\w+?(?:\.\w+?)*?)[._](?P<kind>weight|bias)(?![A-Za-z])", re.I)
_BARE = re.compile(r"(?<![\w.])(?P<kind>weight|bias)(?![\w.])", re.I)
_LAYER = re.compile(
    r"(?<![A-Za-z])layer[\s_]*(?P<num>[0-9]+)[\s_.:\-]*" + _KIND + r"(?![A-Za-z])", re.I)
_LAYER_AFTER = re.compile(
    r"(?<![A-Za-z])(?P<kind>weights?|bias(?:es)?)[\s_]*(?:(?:of|in|for)[\s_]+)?"
    r"(?:the[\s_]+)?layer[\s_]*(?P<num>[0-9]+)(?![0-9])", re.I)
# An optional derivative prefix (dLdw, dL/dw, dE_dw, dw, d_w, grad_w, gradient of w, nabla w),
# then w/b/weight/bias, then the layer number: dLdw3, grad_w1, W_1, weight_1, b[2].
_NUMBERED = re.compile(
    r"(?<![A-Za-z0-9])(?:d[A-Za-z]?[_/]?d_?|d_?|grad(?:ient)?s?[\s_]*(?:of[\s_]+)?|nabla[\s_]*)?"
    + _KIND + r"[\s_\-]*[\[({]?\s*(?P<num>[0-9]+)(?![0-9])", re.I)
_WORD = re.compile(r"[A-Za-z_]\w*")
_X_WORDS = {"x", "xi", "x_i", "input", "inputs"}
_Y_WORDS = {"y", "yi", "y_i", "target", "targets", "label", "labels", "y_true", "ytrue"}
_LOSS_WORDS = {"loss", "losses"}
UNLABELLED = ""
EXTRAS = ("x", "y", "loss")


@dataclass(frozen=True)
class ParamKey:
    """A parameter as the file names it: kind "w" or "b"; layer as written ("3" for numbered
    names, "fc1" or "dense.0" for module names); style "numbered" or "module"."""

    kind: str
    layer: str
    style: str


def parse_label(text: str | None) -> ParamKey | str | None:
    """Read the text written before a value: a ParamKey; "x", "y" or "loss"; UNLABELLED when
    there is no word at all; None for words that name nothing we know ("prediction")."""
    return read_label(text)[0]


def read_label(text: str | None) -> tuple[ParamKey | str | None, str]:
    """parse_label, and the part of `text` that named the value ("dLdw3" of "grad dLdw3:").

    The last line of `text` names the value. Only when it names no layer ("weight",
    "Parameter containing:") may the line above complete it ("layer 1" / "weight")."""
    lines = [line for line in (text or "").splitlines() if line.strip()]
    if not lines:
        return UNLABELLED, ""
    found = _read_line(lines[-1])
    incomplete = found[0] == UNLABELLED or (isinstance(found[0], ParamKey)
                                            and not found[0].layer)
    if incomplete and len(lines) > 1:
        joined = _read_line(" ".join(lines[-2:]))
        if isinstance(joined[0], ParamKey) and joined[0].layer:
            return joined
    return found


def _read_line(text: str) -> tuple[ParamKey | str | None, str]:
    text = re.sub(r"Parameter\s+containing", " ", text)
    if not re.search(r"[A-Za-z0-9]", text):
        return UNLABELLED, ""
    best: tuple[int, int, ParamKey, str] | None = None
    for priority, pattern in enumerate((_MODULE, _LAYER, _LAYER_AFTER, _NUMBERED, _BARE)):
        for m in pattern.finditer(text):
            kind = m["kind"][0].lower()
            if pattern is _MODULE:
                key = ParamKey(kind, m["mod"], "module")
            elif pattern is _BARE:
                key = ParamKey(kind, "", "module")
            else:
                key = ParamKey(kind, _number_text(m["num"]), "numbered")
            # The name nearest the value wins; on a tie the earlier pattern does.
            if best is None or (m.end(), -priority) > best[:2]:
                best = (m.end(), -priority, key, m.group().strip())
    if best is not None:
        return best[2], best[3]
    words = [w.lower() for w in _WORD.findall(text)]
    if words and words[-1] in _X_WORDS:
        return "x", words[-1]
    if words and words[-1] in _Y_WORDS:
        return "y", words[-1]
    if _LOSS_WORDS & set(words):
        return "loss", "loss"
    return None, text.strip()


def _number_text(digits: str) -> str:
    """A layer number as written, without leading zeros ("007" is "7"), kept as text: a label
    of 5000 digits is more than int() reads, and is refused by its length (`layer_beyond`)."""
    return digits.lstrip("0") or "0"


def layer_beyond(key: ParamKey) -> bool:
    """Whether a numbered name's layer is past the deepest network a file can be of (a file
    counting from 0 may number its last layer MAX_LAYERS - 1, one counting from 1 MAX_LAYERS)."""
    return key.style == "numbered" and (len(key.layer) > len(str(MAX_LAYERS))
                                        or int(key.layer) > MAX_LAYERS)


def too_deep(label: str, key: ParamKey) -> str:
    """The refusal of a name whose layer is past MAX_LAYERS."""
    return (f"{clipped(label)!r} names layer {clipped(key.layer, 12)}; a network has at most "
            f"{MAX_LAYERS} layers")


def canonical_names(keys: Sequence[ParamKey], source: str) -> tuple[dict[ParamKey, str],
                                                                      list[str]]:
    """Map every key (in order of first appearance) to w1, b1, ...; return the map and notes
    saying what was assumed."""
    styles = {k.style for k in keys}
    if len(styles) > 1:
        numbered = next(k for k in keys if k.style == "numbered")
        module = next(k for k in keys if k.style == "module")
        raise GradientFileError(source, f"mixes numbered names (layer {numbered.layer}) with "
                                f"module names ({module.layer or module.kind}); "
                                "use one style for all parameters")
    notes: list[str] = []
    layers = list(dict.fromkeys(k.layer for k in keys))
    deep = next((k for k in keys if layer_beyond(k)), None)
    if deep is not None:
        raise GradientFileError(source, too_deep(f"{deep.kind}{deep.layer}", deep))
    if styles == {"module"} and len(layers) > MAX_LAYERS:
        raise GradientFileError(source, f"names {len(layers)} modules (layers), more than the "
                                f"{MAX_LAYERS} a network has at most")
    if styles == {"numbered"}:
        numbers = sorted(int(layer) for layer in layers)
        shift = 1 if numbers and numbers[0] == 0 else 0
        if shift:
            notes.append("layers are numbered from 0 in the file; read as layers 1, 2, ...")
        number = {layer: int(layer) + shift for layer in layers}
    else:
        # numbers compared as text (shorter first), which sorts them as int() would without
        # its limit on digits
        indices = {layer: tuple((len(d), d) for d in map(_number_text, re.findall("[0-9]+", layer)))
                   for layer in layers}
        ordered = layers
        if all(indices.values()) and len(set(indices.values())) == len(layers):
            ordered = sorted(layers, key=indices.__getitem__)
        number = {layer: i for i, layer in enumerate(ordered, 1)}
        if ordered and ordered != [""]:
            how = "by the numbers in them" if ordered is not layers else "in order of appearance"
            notes.append("modules " + ", ".join(ordered) + f" taken as layers 1..{len(ordered)} "
                         f"({how})")
    return {k: f"{k.kind}{number[k.layer]}" for k in keys}, notes

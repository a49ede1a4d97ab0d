"""What two disagreeing gradient files say about the mistake, read from the numbers alone.

Each pattern is one function of the aligned arrays (N, *shape) per parameter that returns a
sentence or nothing: where the disagreement starts walking back from the loss, a constant ratio
(½, 2, -1, ...), a matrix equal to the other's transpose, a running sum over samples, a bias
gradient summed over the units, a single sample that differs, files that part after the first
sample. No model is needed; engine/check/reproduce.py names the mistake when one is known.
"""

from collections.abc import Callable

import numpy as np

from engine.check.align import Aligned

# how closely a pattern must hold: relative to the largest value of the sample, so float32
# rounding and sums over many samples pass, and any real difference does not
PATTERN_RTOL = 1e-4
Pattern = Callable[[Aligned, list[str], np.ndarray], str | None]


def backward_order(names: list[str]) -> list[str]:
    """bL, wL, ..., b1, w1: the order the backward pass produces them."""
    return list(reversed(names))


def holds(x: np.ndarray, y: np.ndarray, rtol: float = PATTERN_RTOL) -> bool:
    """x ≈ y sample by sample, within rtol of the sample's largest |value|; both
    (N, *shape)."""
    x64, y64 = x.astype(np.float64), y.astype(np.float64)
    axes = tuple(range(1, x64.ndim))
    scale = np.maximum(np.abs(x64).max(axis=axes, initial=0), np.abs(y64).max(axis=axes,
                                                                             initial=0))
    worst = np.abs(x64 - y64).max(axis=axes, initial=0)
    return bool(np.all(worst <= rtol * scale))


def sample_disagrees(aligned: Aligned, rtol: float, atol: float) -> np.ndarray:
    """(N,) True where any parameter of that sample is out of tolerance."""
    bad = np.zeros(aligned.samples, dtype=bool)
    for name in aligned.names:
        a, b = aligned.a[name].astype(np.float64), aligned.b[name].astype(np.float64)
        limit = atol + rtol * np.maximum(np.abs(a), np.abs(b))
        bad |= (np.abs(a - b) > limit).reshape(len(a), -1).any(axis=1)
    return bad


def located(order: list[str], first: str, agree: dict[str, bool]) -> str:
    """Where the disagreement starts, walking back from the loss, and what computes it."""
    after = order[:order.index(first)]
    layer = int(first[1:])
    if not after:
        return (f"{first}, the gradient nearest the loss, already disagrees: look at the loss "
                "derivative dL/dŷ and the output layer")
    sentence = (f"{first} is the first parameter that disagrees walking back from the loss; "
                f"{', '.join(after)} after it agree, so the mistake is most likely in layer "
                f"{layer}'s backward step")
    if first.startswith("b") and agree.get(f"w{layer}", False):
        return (f"{first} is the first parameter that disagrees walking back from the loss, "
                f"and w{layer} agrees: δ{layer} is right (w{layer}'s gradient is made from it "
                f"too), so the mistake is in the bias gradient itself")
    if first.startswith("w") and agree.get(f"b{layer}", False):
        return (f"{sentence}: b{layer} agrees, so δ{layer} is right and the weight gradient "
                f"itself (δ{layer}·y{layer - 1}ᵀ) is not")
    if f"w{layer + 1}" in agree:
        return (f"{sentence}: δ{layer} = (w{layer + 1}ᵀ·δ{layer + 1}) ⊙ f'(z{layer}) is wrong "
                f"while δ{layer + 1} is right, so look at the transpose of w{layer + 1} and at "
                f"the derivative f'(z{layer})")
    return sentence


def _fraction(r: float) -> str:
    named = {0.5: "½", 2.0: "2", -1.0: "-1", -0.5: "-½", -2.0: "-2"}
    return next((text for value, text in named.items() if abs(r - value) < 1e-3),
                f"{r:.6g}")


def constant_ratio(aligned: Aligned, bad: list[str], _: np.ndarray) -> str | None:
    """B = r·A with one r in every disagreeing parameter."""
    ratios = {}
    for name in bad:
        a, b = aligned.a[name].astype(np.float64), aligned.b[name].astype(np.float64)
        norm = float(np.sum(a * a))
        if norm == 0:
            return None
        r = float(np.sum(a * b)) / norm
        if not holds(b, r * a):
            return None
        ratios[name] = r
    values = list(ratios.values())
    if not values or any(abs(r - values[0]) > 1e-3 * abs(values[0]) for r in values):
        return None
    r = values[0]
    if abs(r - 1) < 1e-3:
        return None
    where = (f"every parameter ({', '.join(bad)})" if len(bad) == len(aligned.names)
             else ", ".join(bad))
    every = f"in {where}, in every sample"
    if abs(r - 0.5) < 1e-3 or abs(r - 2) < 1e-3:
        which = ("B drops a factor 2 that A keeps (or A doubles one)" if r < 1 else
                 "A drops a factor 2 that B keeps (or B doubles one)")
        return (f"B = {_fraction(r)}·A {every}: {which}; the classic one is the 2 of the "
                "squared error's ∂L/∂ŷ = 2(ŷ - y)")
    if abs(r + 1) < 1e-3:
        return (f"B = -A {every}: a sign flip, such as (y - ŷ) in place of (ŷ - y) in ∂L/∂ŷ, "
                "or a gradient of -L")
    return (f"B = {_fraction(r)}·A {every}: a constant factor, such as a mean where the other "
            "file sums (over outputs or a batch), or a factor such as the learning rate folded "
            "into the gradient")


def transposed(aligned: Aligned, bad: list[str], _: np.ndarray) -> str | None:
    """A square weight of B that is the transpose of A's."""
    found = [name for name in bad if name.startswith("w") and aligned.a[name].ndim == 3
             and aligned.a[name].shape[1] == aligned.a[name].shape[2] > 1
             and holds(aligned.b[name], aligned.a[name].transpose(0, 2, 1))]
    if not found:
        return None
    return (f"B's {', '.join(found)} {'is' if len(found) == 1 else 'are'} the transpose of "
            "A's in every sample: one file holds the weight gradient as (in, out) where the "
            "other holds (out, in), either as its layout or by computing yₗ₋₁ᵀ·δ where "
            "δᵀ·yₗ₋₁ is meant; if it is only the layout, state it (a model.json with "
            "\"layout\", or --model)")


def accumulated(aligned: Aligned, bad: list[str], _: np.ndarray) -> str | None:
    """Sample k of one file is the sum of samples 1..k of the other."""
    if aligned.samples < 2:
        return None
    for later, earlier, word in (("b", "a", "B's"), ("a", "b", "A's")):
        sums = {n: np.cumsum(getattr(aligned, earlier)[n].astype(np.float64), axis=0)
                for n in bad}
        if all(holds(getattr(aligned, later)[n], sums[n]) for n in bad):
            other = "A's" if word == "B's" else "B's"
            return (f"{word} sample k holds the sum of {other} samples 1..k in "
                    f"{', '.join(bad)}: gradients accumulated across samples instead of "
                    "reset (a zero_grad() forgotten, or a nabla_w += ... never set back to 0)")
    return None


def bias_over_units(aligned: Aligned, bad: list[str], _: np.ndarray) -> str | None:
    """A bias gradient whose every unit holds the sum over the other file's units."""
    for mine, other, word in (("b", "a", "B's"), ("a", "b", "A's")):
        found = []
        for name in (n for n in bad if n.startswith("b")):
            right = getattr(aligned, other)[name].reshape(aligned.samples, -1)
            wrong = getattr(aligned, mine)[name].reshape(aligned.samples, -1)
            if right.shape[1] > 1 and holds(wrong, np.repeat(right.sum(axis=1, keepdims=True),
                                                             right.shape[1], axis=1)):
                found.append(name)
        if found:
            verb = "holds" if len(found) == 1 else "hold"
            return (f"{word} {', '.join(found)} {verb} in every unit the sum over the layer's "
                    f"units of the other file's, sample by sample: the bias gradient summed "
                    f"over the wrong axis (the units, not the samples)")
    return None


def only_biases(aligned: Aligned, bad: list[str], _: np.ndarray) -> str | None:
    if not bad or any(name.startswith("w") for name in bad):
        return None
    return (f"every weight gradient agrees and only biases disagree ({', '.join(bad)}): the "
            "bias gradients themselves are computed wrong")


def single_sample(aligned: Aligned, bad: list[str], disagrees: np.ndarray) -> str | None:
    """One sample differs and every other agrees."""
    if aligned.samples < 3 or disagrees.sum() != 1:
        return None
    k = int(np.flatnonzero(disagrees)[0]) + 1
    return (f"only sample {k} disagrees; the other {aligned.samples - 1} agree in every "
            f"parameter, so the backprop is right and sample {k}'s input or label most likely "
            "differs between the files (a data mix-up)")


def after_first_sample(aligned: Aligned, bad: list[str], disagrees: np.ndarray) -> str | None:
    """Sample 1 agrees and the files part from sample 2 on."""
    if aligned.samples < 3 or disagrees[0] or not disagrees[1:].all():
        return None
    return ("sample 1 agrees in every parameter and the files part from sample 2 on: the "
            "gradients are computed right but at other parameters after the first update "
            "(a flipped update sign or another learning rate, in a file made with SGD along "
            "the way), or something carries over from one sample to the next")


# in the order the sentences are shown; accumulation explains a later part better than the
# update does, so the update's sentence is left out when it holds
PATTERNS: dict[str, Pattern] = {
    "ratio": constant_ratio,
    "transpose": transposed,
    "accumulation": accumulated,
    "bias axis": bias_over_units,
    "only biases": only_biases,
    "single sample": single_sample,
    "after the first sample": after_first_sample,
}


def patterns(aligned: Aligned, agree: dict[str, bool], rtol: float, atol: float) -> list[str]:
    """The sentences of every pattern that holds between two disagreeing files."""
    bad = [name for name in backward_order(aligned.names) if not agree[name]]
    disagrees = sample_disagrees(aligned, rtol, atol)
    found: dict[str, str] = {}
    with np.errstate(over="ignore", invalid="ignore"):
        for name, pattern in PATTERNS.items():
            sentence = pattern(aligned, bad, disagrees)
            if sentence:
                found[name] = sentence
    if "accumulation" in found:
        found.pop("after the first sample", None)
    return list(found.values())

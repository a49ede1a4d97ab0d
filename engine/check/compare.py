"""How far apart two arrays are, in the terms gradient-checking notes use.

relative difference |a - b| / max(|a|, |b|) (0 where both are 0); agreeing significant digits
-log10 of the largest relative difference, capped at what the dtype can carry; an allclose
verdict |a - b| <= atol + rtol·max(|a|, |b|), symmetric in a and b. Values are compared as
read, in float64 arithmetic: a dtype, or the digits a file prints, choose default tolerances and
cap the digits (Carry), never change a value.
"""

from dataclasses import dataclass

import numpy as np

# float32: numpy's allclose defaults. float64 rounds 2^29 times finer, so its defaults are
# tighter: a float64 scratch pass agrees with autograd to ~1e-15 relative, and 1e-9 still leaves
# room for different summation orders in long dot products.
TOLERANCES: dict[str, tuple[float, float]] = {"float32": (1e-5, 1e-8), "float64": (1e-9, 1e-12)}

# printed text with this many significant digits carries more than float32 (7.2), so it may
# hold float64 values
FLOAT64_DIGITS = 10

# gradient-checking notes: relative error < 1e-7 is good, < 1e-4 acceptable, worse is suspect
GOOD, ACCEPTABLE, FLAGGED = "good", "acceptable", "flagged"


def dtype_digits(dtype: np.dtype | type | str) -> float:
    """The most significant decimal digits `dtype` carries: 7.2 for float32, 16.0 for float64."""
    return float(-np.log10(np.finfo(np.dtype(dtype)).eps / 2))


def default_tolerance(dtype: np.dtype | type | str) -> tuple[float, float]:
    """(rtol, atol) used for `dtype` when the user gives none."""
    return TOLERANCES["float64" if np.dtype(dtype) == np.float64 else "float32"]


@dataclass(frozen=True)
class Carry:
    """What one file's numbers can be held to: default tolerances, and the significant digits
    they carry (the most agreeing digits a comparison with them can show)."""

    rtol: float
    atol: float
    digits: float


def dtype_carry(dtype: np.dtype | type | str) -> Carry:
    """What values of `dtype` carry, stored without loss: its default tolerances and digits."""
    return Carry(*default_tolerance(dtype), dtype_digits(dtype))


def printing_rtol(digits: int) -> float:
    """The closest relative agreement numbers printed with `digits` significant digits can
    show: one unit of the last digit against a leading 1 (1.000 printed for 1.0004 is 4e-4
    off, and two printouts may round opposite ways)."""
    return 10.0 ** (1 - digits)


def printed_carry(digits: int, dtype: str) -> Carry:
    """Values of `dtype` printed with `digits` significant digits: the dtype's tolerances, rtol
    loosened to what the digits can hold, and digits capped at the fewer of the two."""
    stored = dtype_carry(dtype)
    return Carry(max(stored.rtol, printing_rtol(digits)), stored.atol,
                 min(stored.digits, float(digits)))


def coarser(a: Carry, b: Carry) -> Carry:
    """The carry two files can both be held to: the larger tolerances, the fewer digits."""
    return Carry(max(a.rtol, b.rtol), max(a.atol, b.atol), min(a.digits, b.digits))


def float32_values(values: np.ndarray, digits: int) -> bool:
    """Whether every value (any shape), printed with `digits` significant digits, is a float32
    number as printed: within half a unit of its last digit of float32(value). float32 code
    printed with many digits gives that (torch's .tolist() of a float32 tensor prints 17
    digits of float32 values); float64 values printed with 10 or more digits do not."""
    v = np.asarray(values, dtype=np.float64).ravel()
    v = v[np.isfinite(v) & (v != 0)]
    with np.errstate(over="ignore"):
        off = np.abs(v.astype(np.float32).astype(np.float64) - v)
    half_unit = 0.5 * 10.0 ** (np.floor(np.log10(np.abs(v))) + 1 - digits)
    # the slack covers the decimal's own rounding to float64, far below a float32 step
    return bool(np.all(off <= half_unit * 1.01))


def grade(max_rel_diff: float) -> str:
    """good, acceptable or flagged, by the thresholds of gradient-checking notes."""
    if max_rel_diff < 1e-7:
        return GOOD
    return ACCEPTABLE if max_rel_diff < 1e-4 else FLAGGED


@dataclass(frozen=True)
class ArrayComparison:
    """The summary of a against b. `worst` indexes the element furthest out of tolerance
    (relative to atol + rtol·max(|a|, |b|)); digits is capped at the dtype's precision."""

    max_abs_diff: float
    max_rel_diff: float
    digits: float
    agree: bool
    worst: tuple[int, ...]
    rtol: float
    atol: float

    @property
    def grade(self) -> str:
        return grade(self.max_rel_diff)


def elementwise(a: np.ndarray, b: np.ndarray, rtol: float, atol: float
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per element, in float64: |a - b|, the relative difference |a - b| / max(|a|, |b|), and
    the excess |a - b| / (atol + rtol·max(|a|, |b|)) (above 1: out of tolerance). NaN where the
    other has a number, or infinities of opposite signs, differ infinitely; NaN against NaN is
    equal (the engines agree, and the NaN itself is reported elsewhere)."""
    a64, b64 = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    with np.errstate(invalid="ignore", over="ignore", divide="ignore"):
        same = (a64 == b64) | (np.isnan(a64) & np.isnan(b64))
        diff = np.where(same, 0.0, np.abs(a64 - b64))
        diff = np.where(np.isnan(diff), np.inf, diff)
        scale = np.maximum(np.abs(a64), np.abs(b64))
        rel = np.where(same, 0.0, diff / np.where(scale > 0, scale, 1.0))
        rel = np.where(np.isnan(rel), np.inf, rel)
        excess = diff / (atol + rtol * np.where(np.isfinite(scale), scale, 0.0))
    return diff, rel, excess


def compare_arrays(a: np.ndarray, b: np.ndarray, rtol: float | None = None,
                   atol: float | None = None) -> ArrayComparison:
    """Compare two arrays of the same shape; see `elementwise` for NaN and infinities."""
    a, b = np.asarray(a), np.asarray(b)
    if a.shape != b.shape:
        raise ValueError(f"cannot compare shapes {a.shape} and {b.shape}")
    wide = np.result_type(a.dtype, b.dtype, np.float32)
    default_rtol, default_atol = default_tolerance(wide)
    rtol = default_rtol if rtol is None else rtol
    atol = default_atol if atol is None else atol
    diff, rel, excess = elementwise(a, b, rtol, atol)
    cap = dtype_digits(wide)
    if a.size == 0:
        return ArrayComparison(0.0, 0.0, cap, True, (), rtol, atol)
    max_rel = float(rel.max())
    digits = cap if max_rel == 0 else float(np.clip(-np.log10(max_rel), 0.0, cap))
    worst = tuple(int(i) for i in np.unravel_index(int(np.argmax(excess)), a.shape))
    return ArrayComparison(float(diff.max()), max_rel, digits, bool(np.all(excess <= 1)),
                           worst, rtol, atol)

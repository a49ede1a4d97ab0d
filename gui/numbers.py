"""How the window writes numbers: short (4 significant digits) where a person reads a formula,
exact (the shortest text that reads back to the same float in its dtype) where a person checks
one engine against the other. Formatting only: the numbers themselves come from engine/."""

import numpy as np

SHORT_DIGITS = 4
VECTOR_LIMIT = 6


def short(value: float | np.generic) -> str:
    """4 significant digits: 0.3579, -1.25e-05, 12.5."""
    value = float(value)
    if value == 0:
        return "0"
    return f"{value:.{SHORT_DIGITS}g}"


def digits_text(digits: float) -> str:
    """Agreeing digits with one decimal; never "-0.0"."""
    return f"{digits + 0.0:.1f}"


def exact(value: float | np.generic) -> str:
    """The shortest text that reads back bit-identical in the value's own dtype: a float32
    prints as 0.35791236, not as the 17 digits of its float64 widening."""
    if isinstance(value, np.generic):
        return str(value)
    return repr(float(value))


def cell_text(value: float | np.generic) -> str:
    """A table cell's number: the shortest text that reads back to the same value in its own
    dtype (float32 values as float32, anything else as float64)."""
    if isinstance(value, np.floating) and value.dtype.itemsize <= 4:
        return str(value)
    return str(np.float64(value))


def diff_text(value: float | np.generic) -> str:
    """A difference of two engines' values (float64): the shortest text that reads back to
    it in float32 where float32 holds it exactly (most differences of a float32 run: nine
    digits, not seventeen), else in float64."""
    wide = np.float64(value)
    if not np.isfinite(wide) or abs(wide) > np.finfo(np.float32).max:
        return str(wide)
    narrow = np.float32(wide)
    return str(narrow) if np.float64(narrow) == wide else str(wide)


def widest_cell(dtype: np.dtype) -> str:
    """The longest text `cell_text` gives a value of `dtype` (float32 or float64), for the
    width of a column that must show every digit."""
    return "-1.23456789e-05" if np.dtype(dtype).itemsize <= 4 else "-1.2345678901234567e-305"


def shape_text(shape: tuple[int, ...]) -> str:
    """(10, 2) as "10×2", (10,) as "10", () as "scalar"."""
    return "×".join(str(n) for n in shape) if shape else "scalar"


def vector_text(values: np.ndarray, limit: int = VECTOR_LIMIT, digits: str = "short") -> str:
    """A 1-D array as "[a, b, c]"; longer than `limit`, the first values and how many there
    are: "[a, b, c, … 4096 values]". `digits` is "short" or "exact"."""
    fmt = exact if digits == "exact" else short
    flat = np.ravel(values)
    if flat.size <= limit:
        return "[" + ", ".join(fmt(v) for v in flat) + "]"
    head = ", ".join(fmt(v) for v in flat[: limit - 1])
    return f"[{head}, … {flat.size} values]"


def array_text(values: np.ndarray, limit: int = 4) -> str:
    """A value as it appears in a formula: a number, a small vector or matrix of short numbers,
    or, above `limit` elements, just its shape "⟨10×2⟩"."""
    values = np.asarray(values)
    if values.size == 1:
        return short(values.reshape(()))
    if values.size > limit:
        return f"⟨{shape_text(values.shape)}⟩"
    if values.ndim == 1:
        return vector_text(values, limit)
    return "[" + ", ".join(vector_text(row, limit) for row in values) + "]"


def result_text(values: np.ndarray, limit: int = 4) -> str:
    """A stage's value at the end of a formula: like `array_text`, but a big array shows its
    first values before its shape, so the line still says something about this sample."""
    values = np.asarray(values)
    if values.size <= limit:
        return array_text(values, limit)
    first = ", ".join(short(v) for v in np.ravel(values)[:3])
    return f"[{first}, …] ⟨{shape_text(values.shape)}⟩"

"""Shared test helpers: one call compares our numbers with torch's, as early tinygrad's
helper_test_op does, so each activation, loss and stage test is one line."""

import numpy as np

# How close the scratch engine must come to autograd. Differences come only from summation order
# and libm, so they sit near the dtype's rounding unit, scaled by the size of the array.
MATCH_TOLERANCE = {np.dtype(np.float32): (2e-5, 2e-6), np.dtype(np.float64): (1e-11, 1e-13)}


def assert_matches_torch(ours: np.ndarray, theirs: np.ndarray, what: str = "",
                         scale: float | None = None) -> None:
    """ours ≈ theirs elementwise: |a - b| <= atol·scale + rtol·|b|, where scale is the largest
    magnitude in either array (or the one given) and (rtol, atol) depend on theirs' dtype."""
    ours, theirs = np.asarray(ours), np.asarray(theirs)
    assert ours.shape == theirs.shape, f"{what}: shape {ours.shape} != torch's {theirs.shape}"
    assert ours.dtype == theirs.dtype, f"{what}: dtype {ours.dtype} != torch's {theirs.dtype}"
    rtol, atol = MATCH_TOLERANCE[theirs.dtype]
    a, b = ours.astype(np.float64), theirs.astype(np.float64)
    if scale is None:
        scale = max(float(np.max(np.abs(a), initial=0)), float(np.max(np.abs(b), initial=0)), 1e-30)
    np.testing.assert_allclose(a, b, rtol=rtol, atol=atol * scale, err_msg=what)

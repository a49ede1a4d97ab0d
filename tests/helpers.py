"""Shared test helpers: one call compares our numbers with torch's, as early tinygrad's
helper_test_op does, so each activation, loss and stage test is one line; and big valid files,
made in well under a second; and what processes a test left."""

import os
import re

import numpy as np

from engine.export import gradient_sets
from engine.files.datasets import default_set, to_csv_text
from engine.files.gradfile import format_gradients
from engine.files.gradset import GradientSet
from engine.net.params import init_params
from engine.net.spec import DEFAULT_PRESET, preset

# How close the scratch engine must come to autograd elementwise. Differences come only from
# summation order and libm, so they sit near the dtype's rounding unit, scaled by the array.
MATCH_TOLERANCE = {np.dtype(np.float32): (2e-5, 2e-6), np.dtype(np.float64): (1e-11, 1e-13)}
# float32 is ill-conditioned where it matters most: σ'(z) = a(1 - a) near a = 1, or ŷ - y
# near ŷ = y, carry an error of eps·|ŷ| / |ŷ - y| in both engines alike, whatever the formula, so
# an elementwise relative test would test luck (torch's own vmap and backward() paths differ
# there). Given the float64 truth, float32 is held to torch.testing's float32 defaults, against
# torch and against the truth; float64, compared elementwise and tightly, proves the formulas.
FLOAT32_CLOSE = (1.3e-6, 1e-5)


def assert_matches_torch(ours: np.ndarray, theirs: np.ndarray, what: str = "",
                         scale: float | None = None, truth: np.ndarray | None = None) -> None:
    """ours ≈ theirs elementwise: |a - b| <= atol·scale + rtol·|b|, where scale is the largest
    magnitude in either array (or the one given) and (rtol, atol) depend on theirs' dtype.
    Given the float64 `truth` of a float32 comparison, ours must instead be within
    torch.testing's float32 tolerances of theirs and of the truth."""
    ours, theirs = np.asarray(ours), np.asarray(theirs)
    assert ours.shape == theirs.shape, f"{what}: shape {ours.shape} != torch's {theirs.shape}"
    assert ours.dtype == theirs.dtype, f"{what}: dtype {ours.dtype} != torch's {theirs.dtype}"
    a, b = ours.astype(np.float64), theirs.astype(np.float64)
    if truth is not None and theirs.dtype == np.float32:
        rtol, atol = FLOAT32_CLOSE
        np.testing.assert_allclose(a, b, rtol=rtol, atol=atol, err_msg=f"{what} vs torch")
        np.testing.assert_allclose(a, truth, rtol=rtol, atol=atol, err_msg=f"{what} vs float64")
        return
    rtol, atol = MATCH_TOLERANCE[theirs.dtype]
    if scale is None:
        scale = max(float(np.max(np.abs(a), initial=0)), float(np.max(np.abs(b), initial=0)), 1e-30)
    np.testing.assert_allclose(a, b, rtol=rtol, atol=atol * scale, err_msg=what)


def write_big_gradient_file(path, megabytes: int = 100) -> int:
    """Our .dat format, valid from end to end, of at least `megabytes` MB: one sample's block
    repeated under its own number. Returns the number of samples; takes well under a second."""
    spec = preset(DEFAULT_PRESET)
    torch_set, _ = gradient_sets(spec, init_params(spec), default_set(spec, 1))
    return write_tiled_dat(path, torch_set, megabytes)


def write_tiled_dat(path, gs: GradientSet, megabytes: float) -> int:
    """Our .dat file of `gs`'s samples repeated, each under its own number, until it holds at
    least `megabytes` MB: valid from end to end, its arrays np.tile of gs's. Returns how many
    times the samples were repeated; takes well under a second."""
    head, _, body = format_gradients(gs).partition("\nsample 1\n")
    blocks = re.split(r"\nsample \d+\n", body)   # each sample's lines after its number
    reps = int(megabytes * 2**20 // (len(body) + 12 * len(blocks))) + 1
    n = reps * len(blocks)
    head = head.replace(f"# samples: {gs.n_samples}\n", f"# samples: {n}\n")
    with open(path, "w", encoding="utf-8") as f:
        f.write(head)
        f.writelines(f"\nsample {k + 1}\n{blocks[k % len(blocks)]}" for k in range(n))
    return reps


def write_big_printout(path, megabytes: int = 100) -> None:
    """Gradients as someone's own code prints them (not our format), at least `megabytes` MB:
    one sample's arrays printed by numpy, repeated."""
    spec = preset(DEFAULT_PRESET)
    torch_set, _ = gradient_sets(spec, init_params(spec), default_set(spec, 1))
    block = "".join(f"{name}.grad = {np.array2string(value, separator=', ')}\n"
                    for name, value in torch_set.samples[0].items())
    with open(path, "w", encoding="utf-8") as f:
        f.write(block * (megabytes * 2**20 // len(block) + 1))


def write_big_csv(path, spec, megabytes: int = 100) -> None:
    """A valid data file for `spec` of at least `megabytes` MB: a block of rows repeated."""
    header, block = to_csv_text(default_set(spec, 1000)).split("\n", 1)
    with open(path, "w", encoding="utf-8") as f:
        f.write(header + "\n" + block * (megabytes * 2**20 // len(block) + 1))


def children_of(pid: int) -> list[int]:
    """The processes whose parent is `pid` (the training child's torch helper, say)."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                parent = f.read().rsplit(")", 1)[1].split()[1]
        except OSError:
            continue
        if int(parent) == pid:
            found.append(int(entry))
    return found


def gone(pid: int) -> bool:
    """Whether process `pid` has ended (a zombie counts as ended)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True

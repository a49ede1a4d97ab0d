"""What rounding can explain: how far a correct pass in float32 (or float64) may sit from the
exact value of every stage, and the grade of two engines' stages by that measure.

Two correct float32 engines differ by luck, at float32's unit roundoff u = 6e-8 scaled by how
ill-conditioned each stage is: ŷ - y with ŷ ≈ y, a(1 - a) with a ≈ 1, a sum of terms that cancel.
A fixed relative threshold (gradient-checking notes' 1e-7) calls that a disagreement. Instead,
every stage gets a bound E, in units of u, of the error a correct pass may carry: a running
forward error analysis of the chain rule, computed in float64 from the float64 pass itself.
Each operation adds its own rounding, scaled by the size of the terms it combines (for a dot
product of n terms, (n + 1)·Σ|terms|), and passes on the errors of its inputs, scaled by its
derivative:

    z_l  = w_l·a_{l-1} + b_l     E_z  = |w_l|·E_a + (n + 1)(|w_l|·|a_{l-1}| + |b_l|)
    a_l  = f(z_l)                E_a  = |f'(z_l)|·E_z + C|a_l|
    f'_l                         E_f' = |∂f'/∂z|·E_z + |∂f'/∂a|·E_a + C|f'_l|
    dL/dŷ = g(ŷ, y)              E_g  = |∂g/∂ŷ|·E_ŷ + C|g|
    δ_L  = output delta          E_δ  = |∂δ/∂ŷ|·E_ŷ + |∂δ/∂z|·E_z + 2C|δ_L|
    dL/da_{l-1} = w_lᵀ·δ_l       E    = |w_l|ᵀ·E_δ + (n + 1)|w_l|ᵀ·|δ_l|
    δ_{l-1} = dL/da ⊙ f'         E    = |f'|·E_da + |dL/da|·E_f' + C|δ_{l-1}|
    dL/dw_l = δ_l·a_{l-1}ᵀ       E    = E_δ·|a|ᵀ + |δ|·E_aᵀ + C|δ|·|a|ᵀ;   dL/db_l: E_δ

Partial derivatives of the activations' derivatives and of the losses come from central
differences in float64, so every registered activation and loss is covered without a formula
of its own. A stage is *exact* to its dtype when each engine is within K·u·E of a right float64
pass at its own parameters; a wrong backprop sits orders of magnitude further out.
"""

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from engine.net.losses import Loss
from engine.net.scratch import ScratchNet
from engine.net.spec import NetworkSpec
from engine.net.stages import assemble

EXACT, DRIFT, FLAGGED = "exact", "drift", "flagged"
ROUNDINGS_PER_FUNCTION = 4.0   # C: the roundings inside one elementwise function (exp, +, /)
# K: how many bounds an engine may sit from the float64 value. The bound counts every term at
# its worst, so a correct pass uses a small part of it; a factor 2 keeps libm's last-bit
# differences (torch's sigmoid, tanh, exp) inside.
WITHIN = 2.0
# parameters that drifted apart by more than this, relative to their size, did not drift by
# rounding: correct float32 runs of the presets part by ~1e-6 over 3·10^4 steps, and a flipped
# update sign by ~1e-1 after one step
ROUNDING_DRIFT = 1e-4
_STEP = 1e-6
# the size of the terms a loss's value cancels, beyond the value itself: bce adds max(z, 0) and
# -y·z, each as large as |z|
_LOSS_TERMS = {"bce": lambda z, y: np.mean(np.abs(z) * (1 + np.abs(y)) + 1, axis=0)}


def unit_roundoff(dtype: np.dtype | type | str) -> float:
    """u = eps / 2: 6.0e-8 for float32, 1.1e-16 for float64."""
    return float(np.finfo(np.dtype(dtype)).eps) / 2


def _partial(fn, at: np.ndarray) -> np.ndarray:
    """Elementwise ∂fn/∂v at v = `at` by central differences (fn elementwise, float64)."""
    h = _STEP * np.maximum(1.0, np.abs(at))
    with np.errstate(all="ignore"):
        slope = (fn(at + h) - fn(at - h)) / (2 * h)
    return np.nan_to_num(np.abs(slope), nan=0.0, posinf=0.0)


def _loss_terms(loss: Loss, z: np.ndarray, y: np.ndarray, value: np.ndarray) -> np.ndarray:
    extra = _LOSS_TERMS.get(loss.name)
    return np.abs(value) + (extra(z, y) if extra else 0.0)


def rounding_bounds(spec: NetworkSpec, params: Mapping[str, np.ndarray], x: np.ndarray,
                    y: np.ndarray) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """For samples x (N, n_0) and y (N, n_L) at `params` (engine layout, any float dtype, read
    as the float64 numbers they are): ({stage key: the right float64 value},
    {stage key: the bound E in units of the dtype's roundoff}), each (N, *stage shape) with
    weights in the engine's (out, in) layout, so both line up with ScratchNet's stages."""
    wide = spec.with_options(dtype="float64")
    net = ScratchNet(wide, {k: np.asarray(v, np.float64) for k, v in params.items()})
    fwd = net.forward(np.asarray(x, np.float64), np.asarray(y, np.float64))
    bwd = net.backward(fwd)
    c = ROUNDINGS_PER_FUNCTION
    n_layers = spec.n_layers
    w = [net.params[f"w{layer}"] for layer in range(1, n_layers + 1)]
    b = [net.params[f"b{layer}"][:, None] for layer in range(1, n_layers + 1)]
    err_a = [np.zeros_like(fwd.a[0])]
    err_z, err_f, factor = [], [], []
    for layer in range(1, n_layers + 1):
        act, z, a, prev = net.acts[layer - 1], fwd.z[layer - 1], fwd.a[layer], fwd.a[layer - 1]
        terms = np.abs(w[layer - 1]) @ np.abs(prev) + np.abs(b[layer - 1])
        e_z = np.abs(w[layer - 1]) @ err_a[-1] + (prev.shape[0] + 1) * terms
        f = act.derivative(z, a)
        e_a = np.abs(f) * e_z + c * np.abs(a)
        e_f = (_partial(lambda v, a=a, act=act: act.derivative(v, a), z) * e_z
               + _partial(lambda v, z=z, act=act: act.derivative(z, v), a) * e_a
               + c * np.abs(f))
        err_z.append(e_z)
        err_a.append(e_a)
        err_f.append(e_f)
        factor.append(f)

    z_top, y_hat, target = fwd.z[-1].T, fwd.y_hat, fwd.y.T
    e_yhat, e_ztop = err_a[-1].T, err_z[-1].T
    loss, act_top = net.loss, net.acts[-1]
    dy_hat = loss.grad(y_hat, target)
    e_dy = _partial(lambda v: loss.grad(v, target), y_hat) * e_yhat + c * np.abs(dy_hat)

    def delta_of(zv: np.ndarray, yv: np.ndarray) -> np.ndarray:
        return loss.output_delta(zv, yv, target, act_top, loss.grad(yv, target))

    delta = delta_of(z_top, y_hat)
    e_delta = (_partial(lambda v: delta_of(v, y_hat), z_top) * e_ztop
               + _partial(lambda v: delta_of(z_top, v), y_hat) * e_yhat + 2 * c * np.abs(delta))
    losses = fwd.losses
    e_loss = (np.sum(np.abs(dy_hat) * e_yhat, axis=-1) + np.sum(np.abs(delta) * e_ztop, axis=-1)
              + c * (spec.n_outputs + 1) * _loss_terms(loss, z_top.T, target.T, losses))

    values: dict[str, np.ndarray] = {"loss": losses, "dL/dy_hat": dy_hat}
    bounds: dict[str, np.ndarray] = {"loss": e_loss, "dL/dy_hat": e_dy}
    e_d = e_delta.T
    for layer in range(n_layers, 0, -1):
        d, prev, e_prev = bwd.dz[layer - 1], fwd.a[layer - 1], err_a[layer - 1]
        values[f"z{layer}"], bounds[f"z{layer}"] = fwd.z[layer - 1].T, err_z[layer - 1].T
        top = "y_hat" if layer == n_layers else f"a{layer}"
        values[top], bounds[top] = fwd.a[layer].T, err_a[layer].T
        values[f"dL/dz{layer}"], bounds[f"dL/dz{layer}"] = d.T, e_d.T
        values[f"dL/dw{layer}"] = bwd.grads[f"w{layer}"]
        bounds[f"dL/dw{layer}"] = (e_d[:, None, :] * np.abs(prev)[None] + np.abs(d)[:, None, :]
                                   * e_prev[None] + c * np.abs(d)[:, None, :]
                                   * np.abs(prev)[None]).transpose(2, 0, 1)
        values[f"dL/db{layer}"], bounds[f"dL/db{layer}"] = bwd.grads[f"b{layer}"], e_d.T
        if layer > 1:
            aw = np.abs(w[layer - 1]).T
            da = bwd.da[layer - 1]
            e_da = aw @ e_d + (d.shape[0] + 1) * (aw @ np.abs(d))
            values[f"dL/da{layer - 1}"], bounds[f"dL/da{layer - 1}"] = da.T, e_da.T
            below = bwd.dz[layer - 2]
            e_d = (np.abs(factor[layer - 2]) * e_da + np.abs(da) * err_f[layer - 2]
                   + c * np.abs(below))
    return values, bounds


@dataclass(frozen=True)
class Reference:
    """A right float64 pass of one sample at one engine's parameters, and the rounding bounds
    of its stages: per stage key, in the spec's layout, `value` and the tolerance K·u·E."""

    value: dict[str, np.ndarray]
    tolerance: dict[str, np.ndarray]


def reference(spec: NetworkSpec, params: Mapping[str, np.ndarray], x: np.ndarray,
              y: np.ndarray) -> Reference:
    """The float64 value and the rounding tolerance of every stage of sample x (n_0,),
    y (n_L,) at `params`, weights in the spec's layout as the stages show them."""
    with np.errstate(over="ignore", invalid="ignore", divide="ignore", under="ignore"):
        values, bounds = rounding_bounds(spec, params, np.atleast_2d(x), np.atleast_2d(y))
    scale = WITHIN * unit_roundoff(spec.np_dtype)
    # the float64 reference carries rounding of its own: for a float64 run it counts as an
    # engine, and the two bounds add up
    if spec.np_dtype == np.float64:
        scale *= 2
    shown = {s.key: s.value for s in assemble(spec, {k: v[0] for k, v in values.items()})}
    tolerance = {s.key: scale * s.value
                 for s in assemble(spec, {k: v[0] for k, v in bounds.items()})}
    return Reference(shown, tolerance)


def excess(value: np.ndarray, ref: Reference, key: str) -> np.ndarray:
    """|value - reference| / tolerance per element, float64: at most 1 where rounding
    explains the difference. Equal values (also two NaNs, or infinities alike) give 0."""
    v = np.asarray(value, dtype=np.float64)
    r = ref.value[key]
    tol = ref.tolerance[key]
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        same = (v == r) | (np.isnan(v) & np.isnan(r))
        out = np.where(same, 0.0, np.abs(v - r) / np.where(tol > 0, tol, np.finfo(float).tiny))
    return np.where(np.isnan(out), np.inf, out)


def parameter_drift(a: Mapping[str, np.ndarray], b: Mapping[str, np.ndarray]) -> float:
    """||θ_a - θ_b|| / ||θ_b||: how far two engines' parameters have parted, relative."""
    flat_a = np.concatenate([np.ravel(v).astype(np.float64) for v in a.values()])
    flat_b = np.concatenate([np.ravel(v).astype(np.float64) for v in b.values()])
    # parameters of a diverging run overflow on purpose: their drift is inf or NaN
    with np.errstate(over="ignore", invalid="ignore"):
        size = float(np.linalg.norm(flat_b))
        return float(np.linalg.norm(flat_a - flat_b)) / size if size > 0 else 0.0


Grades = tuple[str, np.ndarray]


def grade_pair(scratch: np.ndarray, torch: np.ndarray, key: str, ref_scratch: Reference,
               ref_torch: Reference, drift: float = 0.0) -> Grades:
    """The grade of one stage from both engines, and per element how far out of rounding they
    are (at most 1: exact). Each engine is held to the right float64 pass at its own
    parameters. `drift` is how far those parameters parted over training (parameter_drift):
    within ROUNDING_DRIFT, engines that differ by more than one pass's rounding have drifted
    (DRIFT); beyond it, they departed (FLAGGED), as after a wrong update."""
    worst = np.maximum(excess(scratch, ref_scratch, key), excess(torch, ref_torch, key))
    if np.any(worst > 1):
        return FLAGGED, worst
    if drift != 0:   # NaN too: parameters that are no longer numbers have departed
        both = Reference({key: np.asarray(torch, np.float64)},
                         {key: ref_scratch.tolerance[key] + ref_torch.tolerance[key]})
        between = excess(scratch, both, key)
        if np.any(between > 1):
            return (DRIFT if drift <= ROUNDING_DRIFT else FLAGGED), np.maximum(worst, between)
    return EXACT, worst

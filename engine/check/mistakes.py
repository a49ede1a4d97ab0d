"""Classic backprop mistakes the scratch engine can be told to make, looked up by name.

A mistake replaces one step of the pass with what a hand-written backprop often does instead;
torch is always right. It is made in every layer of the network where it can be made, or in one
layer named after an @:

    inject(spec, "forgotten_activation_derivative")       # every hidden layer
    inject(spec, "forgotten_activation_derivative@1")     # layer 1 only
    scratch_net(spec, params, "dropped_factor_2")         # engine/check/mistaken_net.py

The steps a mistake can replace (in the column form of engine/net/scratch.py, δ_l = ∂L/∂z_l),
and where the scratch engine makes it:

    LOSS_GRAD   ∂L/∂ŷ                     the loss strategy gets a wrong grad
    DERIVATIVE  f'_l(z_l) in δ_l           the layer's activation gets a wrong derivative
    BACK        ∂L/∂y_{l-1} = w_lᵀ·δ_l     MistakenNet.back_through
    BIAS        ∂L/∂b_l = δ_l              MistakenNet.bias_gradient
    ACCUMULATE  gradients reset per sample  MistakenNet.backward adds them to buffers never reset
    UPDATE      θ ← θ - lr·∂L/∂θ           MistakenNet.update

For a window: `MISTAKES` lists the catalogue (name, title, description); `inject` binds one to a
network, and the Injection says which stages it changes (`swaps`: the right formula beside the
one used) and from which stage the scratch pass departs (`first_stage`, `from_sample`).
"""

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

import numpy as np

from engine.check.compare import compare_arrays
from engine.errors import UserInputError
from engine.net.activations import Activation, activation
from engine.net.losses import Loss
from engine.net.spec import NetworkSpec
from engine.net.stages import Stage, StageInfo, stage_plan

Array = np.ndarray
LOSS_GRAD, DERIVATIVE, BACK, BIAS, ACCUMULATE, UPDATE = (
    "loss_grad", "derivative", "back", "bias", "accumulate", "update")
UPDATE_KEY = "update"  # not a stage of one sample's pass: the SGD step after it
RIGHT_UPDATE, FLIPPED_UPDATE = "θ ← θ - lr·∂L/∂θ", "θ ← θ + lr·∂L/∂θ"


@dataclass(frozen=True)
class FormulaSwap:
    """One stage the mistake computes wrongly: the formula that is right beside the one used.
    key is the stage's key in the plan ("dL/dz2"), or "update" for the SGD step."""

    key: str
    layer: int
    right: str
    used: str


@dataclass(frozen=True)
class Mistake:
    """A classic mistake: what replaces which step, and in which layers of a network it can be
    made at all (`layers`; none means `unavailable`, formatted with the spec's fields).

    wrong, by step: LOSS_GRAD (dy_hat) -> ∂L/∂ŷ; DERIVATIVE (act, z, a) -> f'(z);
    BACK (w (n_l, n_{l-1}), delta (n_l, N)) -> ∂L/∂y_{l-1} (n_{l-1}, N);
    BIAS (delta (n_l, N)) -> per-sample ∂L/∂b_l (N, n_l); ACCUMULATE and UPDATE need none.
    used(info, layer) writes the mistaken formula of a stage whose right one is info.formula.
    from_sample: the first sample of a run whose gradients it changes; needs_updates: it
    changes nothing unless parameters are updated (an export with lr > 0, training)."""

    name: str
    title: str
    description: str
    step: str
    layers: Callable[[NetworkSpec], tuple[int, ...]]
    unavailable: str
    used: Callable[[StageInfo, int], str]
    wrong: Callable[..., Array] | None = None
    from_sample: int = 1
    needs_updates: bool = False


def _all_layers(spec: NetworkSpec) -> tuple[int, ...]:
    return tuple(range(1, spec.n_layers + 1))


# --- the factor 2 of the squared error --------------------------------------------------------

def _halved(dy_hat: Array) -> Array:
    return dy_hat / 2                                   # (ŷ - y) where 2(ŷ - y) is right


def _factor_2_layers(spec: NetworkSpec) -> tuple[int, ...]:
    return (spec.n_layers,) if spec.loss in ("squared_error", "mse") else ()


# --- the activation's derivative --------------------------------------------------------------

def _derivative_used(spec: NetworkSpec, layer: int) -> bool:
    """Whether the backward pass multiplies by f'_l at all: bce's output delta (ŷ - y)/n is
    taken in its fused form and never does."""
    return layer < spec.n_layers or spec.loss != "bce"


def _sigmoid_layers(spec: NetworkSpec) -> tuple[int, ...]:
    return tuple(layer for layer in _all_layers(spec)
                 if spec.activations[layer - 1] == "sigmoid" and _derivative_used(spec, layer))


def _sigmoid_of_activation(act: Activation, z: Array, a: Array) -> Array:
    s = act.fn(a)
    return s * (1 - s)                                  # σ(a)(1 - σ(a)) where a(1 - a) is right


def _sigmoid_used(info: StageInfo, layer: int) -> str:
    sigmoid = activation("sigmoid")
    return info.formula.replace(sigmoid.derivative_at(f"z{layer}"),
                                sigmoid.derivative_at(f"y{layer}"))


def _hidden_nonlinear(spec: NetworkSpec) -> tuple[int, ...]:
    return tuple(layer for layer in range(1, spec.n_layers)
                 if spec.activations[layer - 1] != "identity")


def _no_derivative(act: Activation, z: Array, a: Array) -> Array:
    return np.ones_like(z)                              # δ_l = w_{l+1}ᵀ·δ_{l+1}, f' left out


def _forgotten_used(info: StageInfo, layer: int) -> str:
    return info.formula.split(" ⊙ ")[0]


# --- the transpose of the weight --------------------------------------------------------------

def _square_layers(spec: NetworkSpec) -> tuple[int, ...]:
    return tuple(layer for layer in range(2, spec.n_layers + 1)
                 if spec.sizes[layer] == spec.sizes[layer - 1])


def _untransposed(w: Array, delta: Array) -> Array:
    return w @ delta                                    # w_l·δ_l where w_lᵀ·δ_l is right


def _untransposed_used(info: StageInfo, layer: int) -> str:
    # the plan writes the row form: ∂L/∂z_l·w_l (out_in) or ∂L/∂z_l·w_lᵀ (in_out)
    return info.formula.removesuffix("ᵀ") if info.formula.endswith("ᵀ") else info.formula + "ᵀ"


# --- the bias gradient's axis -----------------------------------------------------------------

def _wide_layers(spec: NetworkSpec) -> tuple[int, ...]:
    return tuple(layer for layer in _all_layers(spec) if spec.sizes[layer] > 1)


def _bias_over_units(delta: Array) -> Array:
    # np.sum(delta, axis=0, keepdims=True) in column form: one number per sample, the sum over
    # the layer's units, which broadcasts silently into every unit's bias
    per_sample = delta.sum(axis=0, keepdims=True)     # (1, N)
    return np.repeat(per_sample, len(delta), axis=0).T  # (N, n_l)


def _bias_used(info: StageInfo, layer: int) -> str:
    return f"{info.symbol} = Σ over the units of ∂L/∂z{layer}, the same number in every unit"


# --- buffers and the update -------------------------------------------------------------------

def _accumulated_used(info: StageInfo, layer: int) -> str:
    right = info.formula.split(" = ", 1)[1]
    return f"{info.symbol} = (the same of every earlier sample) + {right}"


MISTAKES: dict[str, Mistake] = {
    m.name: m
    for m in (
        Mistake("sigmoid_derivative_of_activation", "Sigmoid derivative of the activation",
                "σ'(z) taken as σ(a)(1 - σ(a)) of the activation a = σ(z), where "
                "σ(z)(1 - σ(z)) = a(1 - a) is meant",
                DERIVATIVE, _sigmoid_layers,
                "no layer of {sizes} uses a sigmoid derivative in the backward pass "
                "(activations {activations}, loss {loss})",
                _sigmoid_used, _sigmoid_of_activation),
        Mistake("forgotten_activation_derivative", "Activation derivative forgotten",
                "δₗ = wₗ₊₁ᵀ·δₗ₊₁ in the hidden layers, the factor f'(zₗ) left out",
                DERIVATIVE, _hidden_nonlinear,
                "the network {sizes} has no hidden layer with a derivative other than 1 "
                "(activations {activations})",
                _forgotten_used, _no_derivative),
        Mistake("dropped_factor_2", "Factor 2 of the squared error dropped",
                "∂L/∂ŷ = (ŷ - y) where the squared error's derivative is 2(ŷ - y)",
                LOSS_GRAD, _factor_2_layers,
                "the {loss} loss has no factor 2 to drop (only squared_error and mse have one; "
                "half_squared_error's ½ cancels it)",
                lambda info, layer: info.formula.replace("= 2(", "= (", 1), _halved),
        Mistake("untransposed_weight", "Weight used untransposed in the backward pass",
                "∂L/∂yₗ₋₁ = wₗ·δₗ where wₗᵀ·δₗ is right; only a square wₗ lets it "
                "through, any other shape makes numpy refuse the product",
                BACK, _square_layers,
                "no weight above the first layer of {sizes} is square, and with any other shape "
                "w·δ fails with a shape error instead of giving wrong numbers",
                _untransposed_used, _untransposed),
        Mistake("flipped_update_sign", "Update sign flipped",
                "θ ← θ + lr·g: every SGD step climbs the loss; the gradients of the first "
                "sample are right, the parameters after each step are not",
                UPDATE, _all_layers, "", lambda info, layer: FLIPPED_UPDATE,
                from_sample=2, needs_updates=True),
        Mistake("accumulated_gradients", "Gradients accumulated across samples",
                "the gradient buffers are never reset: sample k's gradient holds the sum of "
                "samples 1..k (and the update uses that sum)",
                ACCUMULATE, _all_layers, "", _accumulated_used, from_sample=2),
        Mistake("bias_gradient_wrong_axis", "Bias gradient summed over the wrong axis",
                "∂L/∂bₗ summed over the layer's units instead of the samples: each unit gets "
                "the sum of δₗ over the units, which broadcasts even with one sample",
                BIAS, _wide_layers,
                "every layer of {sizes} has one unit, where the sum over units is the unit "
                "itself", _bias_used, _bias_over_units),
    )
}


def mistake(name: str) -> Mistake:
    """The mistake registered under `name`; an unknown name lists the valid ones."""
    try:
        return MISTAKES[name]
    except KeyError:
        raise UserInputError(f"unknown mistake {name!r}; valid: {', '.join(MISTAKES)}") from None


@dataclass(frozen=True)
class Injection:
    """A mistake bound to a network: the layers where the scratch engine makes it. `label` is
    what names it: the mistake's name, with "@layer" when it was limited to one layer."""

    mistake: Mistake
    spec: NetworkSpec
    layers: tuple[int, ...]
    label: str

    @property
    def name(self) -> str:
        return self.mistake.name

    @property
    def step(self) -> str:
        return self.mistake.step

    @property
    def points(self) -> frozenset[tuple[str, int]]:
        """(step, layer) of every place the scratch engine does it wrong."""
        return frozenset((self.mistake.step, layer) for layer in self.layers)

    def wrong(self, *args: Array) -> Array:
        """The mistaken value of the step, from what the right one is computed from."""
        assert self.mistake.wrong is not None, f"{self.name} replaces no value"
        return self.mistake.wrong(*args)

    def strategies(self, acts: Sequence[Activation], loss: Loss
                   ) -> tuple[list[Activation], Loss]:
        """The activations (one per layer) and the loss the scratch engine uses: those of the
        spec, with the mistaken derivative or dL/dŷ where the mistake is in one of them."""
        acts = list(acts)
        step, wrong = self.mistake.step, self.mistake.wrong
        if step == DERIVATIVE:
            for layer in self.layers:
                act = acts[layer - 1]
                acts[layer - 1] = replace(
                    act, derivative=lambda z, a, act=act: wrong(act, z, a))
        elif step == LOSS_GRAD:
            right = loss.grad
            loss = replace(loss, grad=lambda y_hat, y: wrong(right(y_hat, y)))
        return acts, loss

    def swaps(self) -> list[FormulaSwap]:
        """The stages the mistake computes wrongly, in the plan's order: right and used."""
        step = self.mistake.step
        wanted = {key: layer for layer in self.layers for key in _keys(step, layer)}
        swaps = [FormulaSwap(info.key, wanted[info.key], info.formula,
                             self.mistake.used(info, wanted[info.key]))
                 for info in stage_plan(self.spec) if info.key in wanted]
        if step == UPDATE:
            swaps += [FormulaSwap(UPDATE_KEY, layer, RIGHT_UPDATE, FLIPPED_UPDATE)
                      for layer in self.layers]
        return swaps

    @property
    def first_stage(self) -> str:
        """The key of the first stage of the plan where the scratch pass departs from torch,
        in sample `from_sample` of a run: the first stage computed wrongly, or z1 when only
        the update is wrong (the next sample's pass starts from other parameters)."""
        if self.mistake.step == UPDATE:
            return "z1"
        return self.swaps()[0].key

    @property
    def from_sample(self) -> int:
        return self.mistake.from_sample

    def describe(self) -> str:
        """One line: the label, the title and the layers."""
        where = ", ".join(map(str, self.layers))
        return (f"{self.label}: {self.mistake.title.lower()} "
                f"(layer{'s' if len(self.layers) > 1 else ''} {where})")


def _keys(step: str, layer: int) -> tuple[str, ...]:
    return {LOSS_GRAD: ("dL/dy_hat",), DERIVATIVE: (f"dL/dz{layer}",),
            BACK: (f"dL/da{layer - 1}",), BIAS: (f"dL/db{layer}",),
            ACCUMULATE: (f"dL/dw{layer}", f"dL/db{layer}"), UPDATE: ()}[step]


def inject(spec: NetworkSpec, text: str) -> Injection:
    """The mistake `text` names ("name" or "name@layer") bound to `spec`. A mistake that
    cannot be made in this network, or in that layer, is a UserInputError saying why."""
    name, _, layer_text = text.strip().partition("@")
    chosen = mistake(name)
    layers = chosen.layers(spec)
    if not layers:
        raise UserInputError(f"{name} cannot be made in this network: "
                             + chosen.unavailable.format(**spec.to_dict()))
    if layer_text:
        if not layer_text.isdecimal() or int(layer_text) not in layers:
            where = ", ".join(map(str, layers))
            raise UserInputError(f"{name}@{layer_text}: in {spec.describe()} this mistake can "
                                 f"be made in layer{'s' if len(layers) > 1 else ''} {where}")
        layers = (int(layer_text),)
    return Injection(chosen, spec, layers, f"{name}@{layers[0]}" if layer_text else name)


def injections(spec: NetworkSpec) -> list[Injection]:
    """Every catalogued mistake that can be made in `spec`, in the whole network, then each
    one limited to a single layer where it can be made in several."""
    whole = [inject(spec, name) for name, m in MISTAKES.items() if m.layers(spec)]
    single = [inject(spec, f"{i.name}@{layer}") for i in whole if len(i.layers) > 1
              for layer in i.layers]
    return whole + single


def first_departure(ours: Sequence[Stage], theirs: Sequence[Stage],
                    rtol: float | None = None, atol: float | None = None) -> str | None:
    """The key of the first stage (in pass order) whose values differ between two engines'
    stages of the same sample, or None when every stage agrees."""
    for a, b in zip(ours, theirs, strict=True):
        if not compare_arrays(a.value, b.value, rtol, atol).agree:
            return a.key
    return None

"""The stages of one sample's pass, in the order a person follows them.

Forward: z1, a1, ..., zL, y_hat, loss. Backward: dL/dy_hat, then for each layer l from the top
dL/dz<l>, dL/dw<l>, dL/db<l> and dL/da<l-1> (the layer below). Both engines fill the same plan,
so every scratch stage has a torch twin under the same key.

Formulas use the seeds' notation: x the input, z_l = y_{l-1}·w_lᵀ + b_l, y_l = f(z_l) the output
of layer l (y_0 = x, y_L = ŷ), y the label, L the loss.
"""

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from engine.net.activations import activation
from engine.net.losses import loss as loss_named
from engine.net.spec import NetworkSpec

FORWARD, BACKWARD = "forward", "backward"


@dataclass(frozen=True)
class StageInfo:
    """What a stage is, independent of any sample.

    key: the name both engines use ("z2", "dL/dw3"); symbol: how formulas write it;
    formula: this stage from the one before it (one chain-rule step);
    expanded: the same in terms of forward values only, as the seeds derive it;
    layers: the columns it touches (0 = inputs, L + 1 = the loss node); on_edges: a weight
    gradient, drawn on the edges between its two layers."""

    key: str
    symbol: str
    formula: str
    expanded: str
    direction: str
    kind: str
    layers: tuple[int, ...]
    on_edges: bool = False


@dataclass(frozen=True)
class Stage:
    """A stage with one engine's value for one sample (weights in the spec's layout)."""

    info: StageInfo
    value: np.ndarray

    @property
    def key(self) -> str:
        return self.info.key


def _out(layer: int) -> str:
    return "x" if layer == 0 else f"y{layer}"


def stage_plan(spec: NetworkSpec) -> list[StageInfo]:
    """Every stage of one sample's forward and backward pass for `spec`, in order."""
    n_layers, in_out = spec.n_layers, spec.layout == "in_out"
    acts = [activation(name) for name in spec.activations]
    loss = loss_named(spec.loss)
    n_out = spec.n_outputs
    top = f"y{n_layers}"
    plan: list[StageInfo] = []

    for layer in range(1, n_layers + 1):
        prev, act = _out(layer - 1), acts[layer - 1]
        w = f"w{layer}" if in_out else f"w{layer}ᵀ"
        plan.append(StageInfo(f"z{layer}", f"z{layer}", f"z{layer} = {prev}·{w} + b{layer}",
                              f"z{layer} = {prev}·{w} + b{layer}", FORWARD, "z", (layer,)))
        key = "y_hat" if layer == n_layers else f"a{layer}"
        text = f"y{layer} = {act.apply_text(f'z{layer}')}"
        plan.append(StageInfo(key, f"y{layer}", text, text, FORWARD, "a", (layer,)))
    loss_text = "L = " + loss.render(loss.text, top, n_out)
    plan.append(StageInfo("loss", "L", loss_text, loss_text, FORWARD, "loss", (n_layers + 1,)))

    grad = loss.render(loss.grad_text, top, n_out)
    plan.append(StageInfo("dL/dy_hat", f"∂L/∂{top}", f"∂L/∂{top} = {grad}",
                          f"∂L/∂{top} = {grad}", BACKWARD, "dy_hat", (n_layers,)))
    upstream = grad  # the expanded ∂L/∂y_l of the layer being visited
    for layer in range(n_layers, 0, -1):
        act, prev = acts[layer - 1], _out(layer - 1)
        z = f"z{layer}"
        if layer == n_layers:
            step = loss.delta_text(top, n_out, act, z)
            expanded_dz = step
        else:
            factor = act.derivative_at(z)
            step = f"∂L/∂y{layer} ⊙ {factor}"
            expanded_dz = upstream if factor == "1" else f"{upstream}·{factor}"
        dz = f"∂L/∂{z}"
        plan.append(StageInfo(f"dL/dz{layer}", dz, f"{dz} = {step}", f"{dz} = {expanded_dz}",
                              BACKWARD, "dz", (layer,)))
        dw = f"∂L/∂w{layer}"
        w_step = f"{prev}ᵀ·{dz}" if in_out else f"({dz})ᵀ·{prev}"
        plan.append(StageInfo(f"dL/dw{layer}", dw, f"{dw} = {w_step}",
                              f"{dw} = {expanded_dz}·{prev}", BACKWARD, "dw",
                              (layer - 1, layer), on_edges=True))
        db = f"∂L/∂b{layer}"
        plan.append(StageInfo(f"dL/db{layer}", db, f"{db} = {dz}", f"{db} = {expanded_dz}",
                              BACKWARD, "db", (layer,)))
        if layer > 1:
            da = f"∂L/∂y{layer - 1}"
            w = f"w{layer}ᵀ" if in_out else f"w{layer}"
            upstream = f"{expanded_dz}·w{layer}"
            plan.append(StageInfo(f"dL/da{layer - 1}", da, f"{da} = {dz}·{w}",
                                  f"{da} = {upstream}", BACKWARD, "da", (layer - 1,)))
    return plan


def assemble(spec: NetworkSpec, values: Mapping[str, np.ndarray]) -> list[Stage]:
    """Pair the plan of `spec` with one engine's values, keyed as the plan is. Weight gradients
    arrive in the engine's (out, in) layout and are shown in the spec's."""
    stages = []
    for info in stage_plan(spec):
        value = np.asarray(values[info.key])
        if info.kind == "dw" and spec.layout == "in_out":
            value = value.T
        stages.append(Stage(info, value.copy()))
    return stages

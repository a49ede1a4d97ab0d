"""The catalogue of mistakes: each one does what it says, where it says, and only there; the
formulas a window shows beside each other; the stage where the scratch pass departs."""

import ast
import inspect
from pathlib import Path

import numpy as np
import pytest

from engine.check.mistaken_net import scratch_net
from engine.check.mistakes import MISTAKES, first_departure, inject, injections
from engine.errors import UserInputError
from engine.files.datasets import default_set
from engine.net.activations import activation
from engine.net.params import init_params
from engine.net.reference import TorchNet
from engine.net.scratch import ScratchNet
from engine.net.spec import DEFAULT_PRESET, NetworkSpec, preset
from engine.net.stages import stage_plan
from engine.train.lockstep import Lockstep, TrainConfig
from engine.train.run import train

SPEC = preset(DEFAULT_PRESET).with_options(dtype="float64")  # 2-10-10-1, sigmoid, squared
PARAMS = init_params(SPEC, 1)
DATA = default_set(SPEC, 6, seed=2)

# per mistake in 2-10-10-1: the layers it is made in, the first stage it computes wrongly, and
# the parameters whose per-sample gradients it changes (in backward order)
EXPECTED = {
    "sigmoid_derivative_of_activation": ((1, 2), "dL/dz2", ["b2", "w2", "b1", "w1"]),
    "forgotten_activation_derivative": ((1, 2), "dL/dz2", ["b2", "w2", "b1", "w1"]),
    "dropped_factor_2": ((3,), "dL/dy_hat", ["b3", "w3", "b2", "w2", "b1", "w1"]),
    "untransposed_weight": ((2,), "dL/da1", ["b1", "w1"]),
    "flipped_update_sign": ((1, 2, 3), "z1", []),
    "accumulated_gradients": ((1, 2, 3), "dL/dw3", ["b3", "w3", "b2", "w2", "b1", "w1"]),
    "bias_gradient_wrong_axis": ((1, 2), "dL/db2", ["b2", "b1"]),
}


def gradients(mistake=None, spec=SPEC, params=PARAMS):
    return scratch_net(spec, params, mistake).per_sample_gradients(DATA.x, DATA.y)[1]


def changed(grads, right):
    return [n for n in reversed(SPEC.param_names) if not np.allclose(grads[n], right[n])]


def stages(mistake=None, index=0):
    x, y = DATA.sample(index)
    return {s.key: s.value for s in scratch_net(SPEC, PARAMS, mistake).stages(x, y)}


def test_the_catalogue_covers_the_issue_and_describes_each_mistake():
    assert set(MISTAKES) == set(EXPECTED)
    for m in MISTAKES.values():
        assert m.title and m.description and m.name.isidentifier()


@pytest.mark.parametrize("name", list(EXPECTED))
def test_each_mistake_changes_exactly_what_it_should(name):
    layers, first, params = EXPECTED[name]
    injection = inject(SPEC, name)
    assert injection.layers == layers and injection.first_stage == first
    assert changed(gradients(name), gradients()) == params


def test_dropped_factor_2_halves_every_gradient():
    right, wrong = gradients(), gradients("dropped_factor_2")
    for name in SPEC.param_names:
        np.testing.assert_array_equal(wrong[name], right[name] / 2)


def test_sigmoid_derivative_is_taken_of_the_activation():
    s = stages("sigmoid_derivative_of_activation")
    sigma_of_a = activation("sigmoid").fn(s["a2"])
    np.testing.assert_allclose(s["dL/dz2"], s["dL/da2"] * sigma_of_a * (1 - sigma_of_a))
    assert not np.allclose(s["dL/dz2"], s["dL/da2"] * s["a2"] * (1 - s["a2"]))


def test_forgotten_derivative_passes_dL_da_through():
    s = stages("forgotten_activation_derivative")
    np.testing.assert_array_equal(s["dL/dz1"], s["dL/da1"])
    np.testing.assert_array_equal(s["dL/dz2"], s["dL/da2"])


def test_untransposed_weight_multiplies_by_w_itself():
    s = stages("untransposed_weight")
    np.testing.assert_allclose(s["dL/da1"], PARAMS["w2"] @ s["dL/dz2"])
    np.testing.assert_allclose(stages()["dL/da1"], PARAMS["w2"].T @ s["dL/dz2"])


def test_untransposed_weight_needs_a_square_weight_above_layer_1():
    with pytest.raises(UserInputError, match="w·δ fails with a shape error"):
        inject(preset("2-10-5-1-sigmoid-squared"), "untransposed_weight")


def test_bias_summed_over_units_holds_the_sum_in_every_unit():
    s = stages("bias_gradient_wrong_axis")
    np.testing.assert_allclose(s["dL/db2"], np.full(10, s["dL/dz2"].sum()))
    np.testing.assert_array_equal(s["dL/db3"], s["dL/dz3"])  # one unit: the sum is the unit


def test_accumulated_gradients_sum_over_samples_and_across_calls():
    right = gradients()
    np.testing.assert_allclose(gradients("accumulated_gradients")["w2"],
                               np.cumsum(right["w2"], axis=0))
    net = scratch_net(SPEC, PARAMS, "accumulated_gradients")
    first = net.per_sample_gradients(DATA.x[:2], DATA.y[:2])[1]["b1"]
    later = net.per_sample_gradients(DATA.x[2:3], DATA.y[2:3])[1]["b1"]
    np.testing.assert_allclose(first, np.cumsum(right["b1"][:2], axis=0))
    np.testing.assert_allclose(later[0], right["b1"][:3].sum(axis=0))


def test_flipped_update_climbs_the_gradient():
    net = scratch_net(SPEC, PARAMS, "flipped_update_sign")
    grads = {n: np.ones_like(v) for n, v in PARAMS.items()}
    net.sgd_step(grads, 0.1)
    np.testing.assert_allclose(net.params["w1"], PARAMS["w1"] + 0.1)
    only_w2 = scratch_net(SPEC, PARAMS, "flipped_update_sign@2")
    only_w2.sgd_step(grads, 0.1)
    np.testing.assert_allclose(only_w2.params["w1"], PARAMS["w1"] - 0.1)
    np.testing.assert_allclose(only_w2.params["w2"], PARAMS["w2"] + 0.1)


def test_a_layer_suffix_limits_the_mistake():
    assert changed(gradients("forgotten_activation_derivative@1"), gradients()) == ["b1", "w1"]
    with pytest.raises(UserInputError, match=r"untransposed_weight@1: .* in layer 2$"):
        inject(SPEC, "untransposed_weight@1")
    with pytest.raises(UserInputError, match="can be made in layers 1, 2"):
        inject(SPEC, "bias_gradient_wrong_axis@x")


@pytest.mark.parametrize(("spec", "name", "message"), [
    (preset("2-2-1-tanh-bce"), "dropped_factor_2", "the bce loss has no factor 2 to drop"),
    (preset("2-2-1-tanh-bce"), "sigmoid_derivative_of_activation", "no layer of"),
    (NetworkSpec((2, 3, 1), ("identity", "identity")), "forgotten_activation_derivative",
     "no hidden layer with a derivative other than 1"),
    (NetworkSpec((2, 1, 1), ("tanh", "identity")), "bias_gradient_wrong_axis", "one unit"),
])
def test_a_mistake_that_cannot_be_made_says_why(spec, name, message):
    with pytest.raises(UserInputError, match=message):
        inject(spec, name)


def test_an_unknown_name_lists_the_catalogue():
    with pytest.raises(UserInputError, match="unknown mistake 'typo'; valid: sigmoid_deriv"):
        scratch_net(SPEC, PARAMS, "typo")


def test_a_sigmoid_output_takes_the_mistake_unless_bce_fuses_it():
    squared = NetworkSpec((2, 3, 1), ("sigmoid", "sigmoid"), dtype="float64")
    assert inject(squared, "sigmoid_derivative_of_activation").layers == (1, 2)
    swap = inject(squared, "sigmoid_derivative_of_activation").swaps()[0]
    assert swap.used == "∂L/∂z2 = 2(y2 - y)·sigmoid(y2)(1 - sigmoid(y2))"
    params = init_params(squared, 4)
    output = gradients("sigmoid_derivative_of_activation@2", squared, params)["b2"]
    assert not np.allclose(output, gradients(None, squared, params)["b2"])
    bce = NetworkSpec((2, 3, 1), ("sigmoid", "sigmoid"), loss="bce")
    assert inject(bce, "sigmoid_derivative_of_activation").layers == (1,)


def test_swaps_give_the_plans_formula_beside_the_one_used():
    plan = {info.key: info.formula for info in stage_plan(SPEC)}
    for injection in injections(SPEC):
        for swap in injection.swaps():
            assert swap.right == plan.get(swap.key, "θ ← θ - lr·∂L/∂θ")
            assert swap.used != swap.right
    (swap,) = inject(SPEC, "dropped_factor_2").swaps()
    assert (swap.key, swap.right, swap.used) == ("dL/dy_hat", "∂L/∂y3 = 2(y3 - y)",
                                                 "∂L/∂y3 = (y3 - y)")
    (swap,) = inject(SPEC, "untransposed_weight").swaps()
    assert (swap.right, swap.used) == ("∂L/∂y1 = ∂L/∂z2·w2", "∂L/∂y1 = ∂L/∂z2·w2ᵀ")
    (swap,) = inject(SPEC.with_options(layout="in_out"), "untransposed_weight").swaps()
    assert (swap.right, swap.used) == ("∂L/∂y1 = ∂L/∂z2·w2ᵀ", "∂L/∂y1 = ∂L/∂z2·w2")
    forgotten = inject(SPEC, "forgotten_activation_derivative").swaps()
    assert [(s.key, s.used) for s in forgotten] == [("dL/dz2", "∂L/∂z2 = ∂L/∂y2"),
                                                    ("dL/dz1", "∂L/∂z1 = ∂L/∂y1")]


@pytest.mark.parametrize("name", [n for n, m in MISTAKES.items() if m.from_sample == 1])
def test_the_scratch_pass_departs_from_torch_at_the_first_stage(name):
    x, y = DATA.sample(0)
    ours = scratch_net(SPEC, PARAMS, name).stages(x, y)
    theirs = TorchNet(SPEC, PARAMS).stages(x, y)
    assert first_departure(ours, theirs) == inject(SPEC, name).first_stage
    assert first_departure(ScratchNet(SPEC, PARAMS).stages(x, y), theirs) is None


def test_accumulation_departs_from_the_second_sample():
    net, reference = scratch_net(SPEC, PARAMS, "accumulated_gradients"), TorchNet(SPEC, PARAMS)
    assert first_departure(net.stages(*DATA.sample(0)), reference.stages(*DATA.sample(0))) is None
    assert first_departure(net.stages(*DATA.sample(1)),
                           reference.stages(*DATA.sample(1))) == "dL/dw3"


def test_training_with_a_flipped_update_climbs_while_torch_descends():
    data = default_set(SPEC, 10, seed=3)
    lockstep = Lockstep(SPEC, PARAMS, data, mistake="flipped_update_sign")
    records = list(train(SPEC, PARAMS, data, TrainConfig(lr=0.05, epochs=3), lockstep))
    epoch = [np.mean([r.loss_scratch for r in records if r.epoch == e]) for e in (1, 3)]
    torch_epoch = [np.mean([r.loss_torch for r in records if r.epoch == e]) for e in (1, 3)]
    assert epoch[1] > epoch[0] and torch_epoch[1] < torch_epoch[0]
    assert records[0].max_grad_diff < 1e-12 < records[1].max_grad_diff



def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)
            and node.module} | {alias.name for node in ast.walk(tree)
                                if isinstance(node, ast.Import) for alias in node.names}


def test_the_scratch_engine_is_the_chain_rule_and_knows_no_mistake():
    for method in (ScratchNet.backward, ScratchNet.sgd_step):
        source = inspect.getsource(method)
        assert [w for w in ("mistake", "_wrong", "BIAS", "BACK", "UPDATE") if w in source] == []
    plain = scratch_net(SPEC, PARAMS)
    assert type(plain) is ScratchNet and plain.mistake is None and plain.buffers() == {}
    net = Path(__file__).parents[1] / "engine" / "net"
    wrong_way = {f"{path.name} imports {name}" for path in net.glob("*.py")
                 for name in imported_modules(path) if name.startswith("engine.check")}
    assert wrong_way == set()

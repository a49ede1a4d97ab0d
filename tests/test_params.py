"""Parameters: torch-like initialisation, layouts, and user-given values checked."""

import numpy as np
import pytest
import torch

from engine.errors import SpecError
from engine.net.params import drift, from_layout, init_params, to_layout
from engine.net.spec import DEFAULT_PRESET, preset


def test_init_is_uniform_in_one_over_sqrt_fan_in_like_nn_linear():
    spec = preset(DEFAULT_PRESET)
    params = init_params(spec, seed=1)
    for layer, fan_in in ((1, 2), (2, 10), (3, 10)):
        bound = 1 / np.sqrt(fan_in)
        for name in (f"w{layer}", f"b{layer}"):
            assert params[name].dtype == np.float32
            assert np.all(np.abs(params[name]) <= bound)
    # torch's own nn.Linear draws from the same interval
    linear = torch.nn.Linear(10, 10)
    assert float(linear.weight.detach().abs().max()) <= 1 / np.sqrt(10)


def test_init_spreads_over_the_interval():
    spec = preset(DEFAULT_PRESET).with_options(sizes=(4, 400, 1),
                                                activations=("tanh", "identity"))
    w2 = init_params(spec, seed=2)["w2"]
    assert w2.min() < -0.04 and w2.max() > 0.04  # bound 1/sqrt(400) = 0.05


def test_init_is_seeded():
    spec = preset(DEFAULT_PRESET)
    a, b, c = init_params(spec, 7), init_params(spec, 7), init_params(spec, 8)
    assert all(np.array_equal(a[k], b[k]) for k in a)
    assert not np.array_equal(a["w2"], c["w2"])


@pytest.mark.parametrize("layout", ["out_in", "in_out"])
def test_layout_round_trip(layout):
    spec = preset(DEFAULT_PRESET).with_options(layout=layout)
    params = init_params(spec)
    shown = to_layout(params, layout)
    assert shown["w1"].shape == spec.param_shape("w1")
    back = from_layout(spec, {k: v.tolist() for k, v in shown.items()})
    assert all(np.array_equal(back[k], params[k]) for k in params)


def test_a_bias_may_be_given_as_a_row_as_the_seeds_print_it():
    spec = preset("2-2-1-tanh-bce")
    given = {k: v.tolist() for k, v in init_params(spec).items()}
    given["b1"] = [given["b1"]]
    assert from_layout(spec, given)["b1"].shape == (2,)


@pytest.mark.parametrize(("change", "message"), [
    (lambda p: p.pop("b2"), r"missing b2 \(it needs w1, b1, w2, b2\)"),
    (lambda p: p.update(w3=[[1.0]]), "unexpected w3"),
    (lambda p: p.update(w1=[[1.0, 2.0]]), r"parameter w1 has shape \(1, 2\); .* needs \(2, 2\)"),
    (lambda p: p.update(w2=[[1.0, 2.0], [3.0]]), r"parameter w2 is not a \(1, 2\) array"),
    (lambda p: p.update(b1=["a", "b"]), r"parameter b1\[0\] is the string 'a', not a number"),
    (lambda p: p.update(b2=[float("nan")]), r"parameter b2\[0\] is nan, not a finite number"),
])
def test_bad_parameters_say_which_and_why(change, message):
    spec = preset("2-2-1-tanh-bce")
    given = {k: v.tolist() for k, v in init_params(spec).items()}
    change(given)
    with pytest.raises(SpecError, match=message):
        from_layout(spec, given)


def test_drift_is_the_euclidean_distance():
    a = {"w1": np.zeros((2, 2)), "b1": np.zeros(2)}
    b = {"w1": np.full((2, 2), 1.0), "b1": np.zeros(2)}
    assert drift(a, b) == pytest.approx(2.0)

"""The scratch engine against torch autograd: every stage and every parameter, float32 and
float64, every activation and loss, on named and random networks."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from engine.net.params import init_params
from engine.net.reference import TorchNet
from engine.net.scratch import ScratchNet
from engine.net.spec import NetworkSpec, preset
from tests.helpers import assert_matches_torch
from tests.strategies import samples, specs

NAMED = {
    "seeds 2-10-10-1": preset("2-10-10-1-sigmoid-squared"),
    "2-10-5-1": preset("2-10-5-1-sigmoid-squared"),
    "2-2-1 tanh/bce": preset("2-2-1-tanh-bce"),
    "10, ten layers of 21, 1": NetworkSpec((10, *[21] * 10, 1), ("tanh",) * 10 + ("identity",)),
    "relu deep mse": NetworkSpec((3, 8, 8, 8, 2), ("relu", "leaky_relu", "elu", "identity"), "mse"),
    "softplus half": NetworkSpec((4, 6, 3), ("softplus", "identity"), "half_squared_error"),
}


def truth_of(spec: NetworkSpec, params: dict) -> TorchNet:
    """Autograd in float64 on the same numbers: the truth float32 results are held to."""
    return TorchNet(spec.with_options(dtype="float64"), params)


def check_stages(spec: NetworkSpec, seed: int) -> None:
    """Each stage of one sample: same keys in the same order, same values as autograd."""
    params = init_params(spec, seed)
    x, y = samples(spec, seed)
    ours = ScratchNet(spec, params).stages(x[0], y[0])
    theirs = TorchNet(spec, params).stages(x[0], y[0])
    truth = truth_of(spec, params).stages(x[0], y[0])
    assert [s.key for s in ours] == [s.key for s in theirs]
    for a, b, t in zip(ours, theirs, truth, strict=True):
        assert_matches_torch(a.value, b.value, f"{spec.describe()}: {a.key}", truth=t.value)


def check_per_sample_gradients(spec: NetworkSpec, seed: int, n: int = 7) -> None:
    """Per-sample losses and gradients of a batch, both engines, and the loop of backward()."""
    params = init_params(spec, seed)
    x, y = samples(spec, seed, n)
    torch_net = TorchNet(spec, params)
    ours_loss, ours = ScratchNet(spec, params).per_sample_gradients(x, y)
    vmap_loss, vmapped = torch_net.per_sample_gradients(x, y)
    loop_loss, looped = torch_net.gradients_loop(x, y)
    true_loss, true = truth_of(spec, params).per_sample_gradients(x, y)
    assert_matches_torch(ours_loss, vmap_loss, "losses", truth=true_loss)
    assert_matches_torch(loop_loss, vmap_loss, "losses, loop vs vmap", truth=true_loss)
    assert list(ours) == list(spec.param_names) == list(vmapped) == list(looped)
    for name in spec.param_names:
        assert ours[name].shape == (n, *spec.param_shape(name, "out_in"))
        for i in range(n):  # each sample on its own scale: gradients differ by orders
            assert_matches_torch(ours[name][i], vmapped[name][i], f"{name}[{i}]",
                                 truth=true[name][i])
            assert_matches_torch(looped[name][i], vmapped[name][i], f"{name}[{i}] loop",
                                 truth=true[name][i])


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("layout", ["out_in", "in_out"])
@pytest.mark.parametrize("name", list(NAMED))
def test_named_networks_stage_by_stage(name, layout, dtype):
    spec = NAMED[name].with_options(layout=layout, dtype=dtype)
    check_stages(spec, seed=3)
    check_per_sample_gradients(spec, seed=4)


@given(spec=specs(), seed=st.integers(0, 2**32 - 1))
def test_random_networks_stage_by_stage(spec, seed):
    check_stages(spec, seed)


@given(spec=specs(max_layers=3), seed=st.integers(0, 2**32 - 1))
def test_random_networks_per_sample_gradients(spec, seed):
    check_per_sample_gradients(spec, seed, n=5)


def test_stage_order_is_the_one_a_person_follows():
    spec = preset("2-10-10-1-sigmoid-squared")
    keys = [s.key for s in ScratchNet(spec, init_params(spec)).stages([0.5, 0.5], [0.25])]
    assert keys == ["z1", "a1", "z2", "a2", "z3", "y_hat", "loss", "dL/dy_hat",
                    "dL/dz3", "dL/dw3", "dL/db3", "dL/da2",
                    "dL/dz2", "dL/dw2", "dL/db2", "dL/da1",
                    "dL/dz1", "dL/dw1", "dL/db1"]


@pytest.mark.parametrize("layout", ["out_in", "in_out"])
def test_weight_gradient_stages_are_shown_in_the_spec_layout(layout):
    spec = preset("2-10-5-1-sigmoid-squared").with_options(layout=layout)
    params = init_params(spec)
    stages = {s.key: s for s in ScratchNet(spec, params).stages([0.1, 0.9], [0.41])}
    _, grads = ScratchNet(spec, params).per_sample_gradients(np.array([[0.1, 0.9]]), [[0.41]])
    for layer in (1, 2, 3):
        shown = stages[f"dL/dw{layer}"].value
        assert shown.shape == spec.param_shape(f"w{layer}")
        expected = grads[f"w{layer}"][0]
        np.testing.assert_array_equal(shown, expected.T if layout == "in_out" else expected)


def test_stage_values_are_copies_the_caller_may_keep():
    spec = preset("2-2-1-tanh-bce")
    net = ScratchNet(spec, init_params(spec))
    first = {s.key: s.value for s in net.stages([0.3, -0.2], [1.0])}
    kept = first["dL/dw1"].copy()
    net.stages([-0.9, 0.8], [0.0])
    np.testing.assert_array_equal(first["dL/dw1"], kept)

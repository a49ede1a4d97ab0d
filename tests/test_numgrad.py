"""Both engines against the numerical gradient (central differences in float64)."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.net.params import init_params
from engine.net.reference import TorchNet
from engine.net.scratch import ScratchNet
from engine.net.spec import NetworkSpec, preset
from tests.strategies import samples, specs

SMOOTH = ("sigmoid", "tanh", "softplus", "identity", "elu")


def check_against_numerical(spec: NetworkSpec, seed: int) -> None:
    """Every parameter's gradient of one sample, scratch and torch, against finite differences.
    Central differences with eps 1e-6 carry errors near 1e-9, so the bound is absolute and
    relative to the gradient's size."""
    from engine.net.numgrad import numerical_gradient

    params = init_params(spec, seed)
    x, y = samples(spec, seed)
    _, ours = ScratchNet(spec, params).per_sample_gradients(x, y)
    _, theirs = TorchNet(spec, params).per_sample_gradients(x, y)
    for name in spec.param_names:
        numeric = numerical_gradient(spec, params, x[0], y[0], name)
        scale = max(1.0, float(np.abs(numeric).max()))
        # float32 engines round their own forward pass: agreement is to ~1e-3 of the scale
        tol = 2e-3 if spec.dtype == "float32" else 1e-6
        for engine, grads in (("scratch", ours), ("torch", theirs)):
            np.testing.assert_allclose(grads[name][0], numeric, rtol=tol, atol=tol * scale,
                                       err_msg=f"{engine} {name} of {spec.describe()}")


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("name", ["2-10-10-1-sigmoid-squared", "2-10-5-1-sigmoid-squared",
                                  "2-2-1-tanh-bce"])
def test_presets_match_the_numerical_gradient(name, dtype):
    check_against_numerical(preset(name).with_options(dtype=dtype), seed=5)


@settings(max_examples=30)
@given(spec=specs(max_layers=3, max_width=5), seed=st.integers(0, 2**32 - 1))
def test_random_smooth_networks_match_the_numerical_gradient(spec, seed):
    smooth = tuple(a if a in SMOOTH else "tanh" for a in spec.activations)
    check_against_numerical(spec.with_options(activations=smooth), seed)


def test_numerical_gradient_leaves_the_parameters_untouched():
    from engine.net.numgrad import numerical_gradient

    spec = preset("2-2-1-tanh-bce")
    params = init_params(spec)
    before = {k: v.copy() for k, v in params.items()}
    numerical_gradient(spec, params, [0.2, 0.4], [1.0], "w1")
    for k in params:
        np.testing.assert_array_equal(params[k], before[k])

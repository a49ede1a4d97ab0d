"""Every activation and its derivative against torch's function and torch's autograd."""

import numpy as np
import pytest
import torch

from engine.errors import SpecError
from engine.net.activations import ACTIVATIONS, activation
from engine.net.reference import TORCH_ACTIVATIONS
from tests.helpers import assert_matches_torch

# kinks, saturation, softplus's threshold and values on both sides of each
Z = np.array([-100, -50, -20.5, -5, -1, -1e-3, 0, 1e-3, 0.5, 1, 5, 19.9, 20, 20.5, 50, 100.0])


def check_activation(name: str, dtype: type) -> None:
    z = Z.astype(dtype)
    zt = torch.tensor(z, requires_grad=True)
    out = TORCH_ACTIVATIONS[name]()(zt)
    (grad,) = torch.autograd.grad(out.sum(), zt)
    act = activation(name)
    assert_matches_torch(act.fn(z), out.detach().numpy(), f"{name}({dtype.__name__})")
    derivative = act.derivative(z, act.fn(z))
    assert_matches_torch(derivative, grad.numpy(), f"{name}'({dtype.__name__})", scale=1)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", list(ACTIVATIONS))
def test_activation_and_derivative_match_torch(name, dtype):
    check_activation(name, dtype)


def test_every_activation_has_a_torch_twin():
    assert set(ACTIVATIONS) == set(TORCH_ACTIVATIONS)


@pytest.mark.parametrize("name", list(ACTIVATIONS))
def test_activation_keeps_dtype_and_never_warns(name):
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        for dtype in (np.float32, np.float64):
            z = np.array([-1e4, -80, 0, 80, 1e4], dtype=dtype)
            act = activation(name)
            assert act.fn(z).dtype == dtype
            derivative = act.derivative(z, act.fn(z))
            assert derivative.dtype == dtype
            assert np.all(np.isfinite(derivative))


def test_unknown_activation_lists_the_valid_ones():
    with pytest.raises(SpecError, match="unknown activation 'swish'; valid: sigmoid, tanh, relu"):
        activation("swish")


def test_derivative_text_reads_as_the_seeds_write_it():
    assert activation("sigmoid").derivative_at("z2") == "sigmoid(z2)(1 - sigmoid(z2))"
    assert activation("identity").derivative_at("z3") == "1"

"""Every loss's value and dL/dŷ against torch, and bce's stability."""

import numpy as np
import pytest
import torch

from engine.errors import SpecError
from engine.net.activations import activation
from engine.net.losses import LOSSES, loss
from engine.net.reference import torch_loss
from tests.helpers import assert_matches_torch


def check_loss(name: str, dtype: type, n_out: int) -> None:
    rng = np.random.default_rng(n_out)
    z = rng.normal(0, 3, (6, n_out)).astype(dtype)
    z[0, 0] = 40  # a saturated sigmoid: bce must stay finite and exact
    y = rng.uniform(0, 1, (6, n_out)).astype(dtype)
    y_hat = activation("sigmoid").fn(z) if name == "bce" else z
    zt = torch.tensor(z, requires_grad=True)
    yh_t = torch.sigmoid(zt) if name == "bce" else zt
    yh_t.retain_grad()
    value = torch_loss(name, zt, yh_t, torch.tensor(y))
    value.sum().backward()
    ours = loss(name)
    tag = f"{name} {dtype.__name__} n={n_out}"
    assert_matches_torch(ours.value(z, y_hat, y), value.detach().numpy(), tag)
    act = activation("sigmoid" if name == "bce" else "identity")
    delta = ours.output_delta(z, y_hat, y, act, ours.grad(y_hat, y))
    assert_matches_torch(delta, zt.grad.numpy(), f"dL/dz {tag}")
    if name != "bce":  # bce's graph runs from the logits; its dL/dŷ is checked in the stages
        assert_matches_torch(ours.grad(y_hat, y), yh_t.grad.numpy(), f"dL/dŷ {tag}")


@pytest.mark.parametrize("n_out", [1, 3])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", list(LOSSES))
def test_loss_matches_torch(name, dtype, n_out):
    check_loss(name, dtype, n_out)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_bce_is_stable_where_the_sigmoid_saturates(dtype):
    z = np.array([[-1000.0], [-60.0], [60.0], [1000.0]], dtype=dtype)
    y = np.array([[1.0], [1.0], [0.0], [0.0]], dtype=dtype)
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        value = loss("bce").value(z, activation("sigmoid").fn(z), y)
    np.testing.assert_allclose(value, [1000, 60, 60, 1000], rtol=1e-6)


def test_squared_error_is_the_seeds_loss():
    # seed 003: x = (0.97436534, 0.31171513), y = (x1² + x2²)/2, prediction -0.28116576
    x1, x2 = 0.97436534, 0.31171513
    y_hat, y = np.array([[-0.28116576]]), np.array([[(x1**2 + x2**2) / 2]])
    assert y[0, 0] == pytest.approx(0.52328, abs=1e-5)
    assert loss("squared_error").value(y_hat, y_hat, y)[0] == pytest.approx(0.6471283, abs=1e-6)
    assert loss("squared_error").grad(y_hat, y)[0, 0] == pytest.approx(-1.6089, abs=1e-4)
    assert loss("half_squared_error").value(y_hat, y_hat, y)[0] == pytest.approx(0.6471283 / 2,
                                                                                abs=1e-6)


def test_unknown_loss_lists_the_valid_ones():
    with pytest.raises(SpecError, match="valid: squared_error, half_squared_error, mse, bce"):
        loss("cross_entropy")

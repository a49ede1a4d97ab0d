"""The seeds' worked figures, where they are self-consistent, and their formulas."""

import numpy as np
import pytest

from engine.net.params import init_params
from engine.net.scratch import ScratchNet
from engine.net.spec import preset
from engine.net.stages import stage_plan

# seed 003: 2-10-10-1, x and its scratch gradients (w as (out, in), as torch stores them)
X_003 = np.array([0.97436534, 0.31171513])
W1_GRAD_003 = np.array([
    [-0.00164108, -0.00052501], [-0.00132329, -0.00042334], [0.00725804, 0.00232196],
    [-0.01277838, -0.00408801], [0.02172195, 0.0069492], [-0.01480642, -0.00473681],
    [0.00754285, 0.00241308], [-0.01800024, -0.00575857], [0.00330978, 0.00105885],
    [0.00122226, 0.00039102]])
B1_GRAD_003 = np.array([-0.00168426, -0.00135811, 0.00744899, -0.01311456, 0.02229343,
                        -0.01519596, 0.0077413, -0.01847381, 0.00339685, 0.00125441])
W3_GRAD_003 = np.array([-0.77028648, -0.68547447, -0.72318788, -0.96456754, -0.86306459,
                        -0.74180506, -1.00498997, -0.79745549, -0.89748667, -0.95148059])
B3_GRAD_003 = -1.6088857

# seed 002: 2-10-5-1, dL/dw2 (5, 10) and dL/db2 (5,) from the same sample
W2_GRAD_002 = np.array([
    [-0.0352469, -0.0341221, -0.0466714, -0.0492586, -0.0220244, -0.0230503, -0.0425868,
     -0.0493314, -0.0361005, -0.0348435],
    [0.0477482, 0.0462245, 0.0632248, 0.0667296, 0.029836, 0.0312258, 0.0576914, 0.0668282,
     0.0489047, 0.0472018],
    [0.0536075, 0.0518967, 0.0709831, 0.074918, 0.0334973, 0.0350576, 0.0647708, 0.0750287,
     0.0549058, 0.052994],
    [0.0170999, 0.0165542, 0.0226425, 0.0238976, 0.0106851, 0.0111828, 0.0206608, 0.023933,
     0.0175141, 0.0169042],
    [0.0212497, 0.0205716, 0.0281373, 0.0296971, 0.0132781, 0.0138966, 0.0256748, 0.029741,
     0.0217644, 0.0210065]])
B2_GRAD_002 = np.array([-0.0764258, 0.1035325, 0.116237, 0.0370777, 0.0460758])


def test_seed_003_loss_and_output_gradient():
    """label 0.52328..., prediction -0.28116576: loss 0.6471283 and dL/db3 = -1.6089."""
    spec = preset("2-10-10-1-sigmoid-squared").with_options(dtype="float64")
    label = (X_003 ** 2).sum() / 2
    assert label == pytest.approx(0.52328, abs=1e-5)
    # a network whose output is the seed's prediction whatever the input: w3 = 0, b3 = ŷ
    params = init_params(spec)
    params["w3"][:] = 0
    params["b3"][:] = -0.28116576
    stages = {s.key: s.value for s in ScratchNet(spec, params).stages(X_003, [label])}
    assert float(stages["y_hat"][0]) == pytest.approx(-0.28116576, abs=1e-12)
    assert float(stages["loss"]) == pytest.approx(0.6471283, abs=5e-8)
    assert float(stages["dL/db3"][0]) == pytest.approx(-1.6089, abs=5e-5)
    assert float(stages["dL/db3"][0]) == pytest.approx(B3_GRAD_003, abs=1e-6)


def test_seed_003_weight_gradients_are_delta_times_input():
    """dL/dw_l = δ_lᵀ·y_{l-1}: the seed's w1 gradient is its b1 gradient times x, and its w3
    gradient is its b3 gradient times y2 (y2 then lies in (0, 1), as a sigmoid output must)."""
    np.testing.assert_allclose(B1_GRAD_003[:, None] * X_003[None, :], W1_GRAD_003,
                               rtol=2e-4, atol=2e-8)
    y2 = W3_GRAD_003 / B3_GRAD_003
    assert np.all((y2 > 0) & (y2 < 1))


def test_seed_002_rows_of_w2_share_one_y1():
    """dL/dw2[i, :] = δ2[i]·y1: every row divided by its bias gradient gives the same y1."""
    y1_per_row = W2_GRAD_002 / B2_GRAD_002[:, None]
    np.testing.assert_allclose(y1_per_row, np.broadcast_to(y1_per_row[0], y1_per_row.shape),
                               rtol=1e-4)
    assert np.all((y1_per_row > 0) & (y1_per_row < 1))


def test_formulas_are_written_as_seed_000_derives_them():
    plan = {s.key: s for s in stage_plan(preset("2-10-10-1-sigmoid-squared"))}
    assert plan["z1"].formula == "z1 = x·w1ᵀ + b1"
    assert plan["a1"].formula == "y1 = sigmoid(z1)"
    assert plan["y_hat"].formula == "y3 = z3"
    assert plan["loss"].formula == "L = (y3 - y)²"
    assert plan["dL/dw3"].expanded == "∂L/∂w3 = 2(y3 - y)·y2"
    assert plan["dL/db3"].expanded == "∂L/∂b3 = 2(y3 - y)"
    assert plan["dL/dw2"].expanded == "∂L/∂w2 = 2(y3 - y)·w3·sigmoid(z2)(1 - sigmoid(z2))·y1"
    assert plan["dL/db1"].expanded == (
        "∂L/∂b1 = 2(y3 - y)·w3·sigmoid(z2)(1 - sigmoid(z2))·w2·sigmoid(z1)(1 - sigmoid(z1))")
    assert plan["dL/dz2"].formula == "∂L/∂z2 = ∂L/∂y2 ⊙ sigmoid(z2)(1 - sigmoid(z2))"
    assert plan["dL/da1"].formula == "∂L/∂y1 = ∂L/∂z2·w2"


def test_in_out_formulas_read_as_x_times_w():
    plan = {s.key: s for s in stage_plan(preset("2-10-10-1-sigmoid-squared")
                                         .with_options(layout="in_out"))}
    assert plan["z1"].formula == "z1 = x·w1 + b1"
    assert plan["dL/dw2"].formula == "∂L/∂w2 = y1ᵀ·∂L/∂z2"
    assert plan["dL/da1"].formula == "∂L/∂y1 = ∂L/∂z2·w2ᵀ"


def test_bce_output_delta_is_written_in_its_fused_form():
    plan = {s.key: s for s in stage_plan(preset("2-2-1-tanh-bce"))}
    assert plan["loss"].formula == "L = -[y log y2 + (1 - y) log(1 - y2)]"
    assert plan["dL/dy_hat"].formula == "∂L/∂y2 = (y2 - y)/(y2(1 - y2))"
    assert plan["dL/dz2"].formula == "∂L/∂z2 = (y2 - y)"
    assert plan["dL/dz1"].formula == "∂L/∂z1 = ∂L/∂y1 ⊙ (1 - tanh²(z1))"


def test_stages_know_the_layers_they_touch():
    plan = {s.key: s for s in stage_plan(preset("2-10-10-1-sigmoid-squared"))}
    assert plan["z2"].layers == (2,) and plan["loss"].layers == (4,)
    assert plan["dL/dw2"].layers == (1, 2) and plan["dL/dw2"].on_edges
    assert plan["dL/da1"].layers == (1,) and not plan["dL/da1"].on_edges
    assert {s.direction for k, s in plan.items() if k.startswith("dL/")} == {"backward"}

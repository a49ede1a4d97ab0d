"""Grades by what rounding can explain: a correct float32 pass reads as exact, every catalogued
mistake is flagged where it departs, and training's float32 drift is drift, not a departure."""

import numpy as np
import pytest

from engine.check.compare import GOOD, compare_arrays
from engine.check.mistaken_net import scratch_net
from engine.check.mistakes import injections
from engine.check.rounding import DRIFT, EXACT, FLAGGED, grade_pair, reference, unit_roundoff
from engine.files.datasets import default_set
from engine.net.params import init_params
from engine.net.reference import TorchNet
from engine.net.scratch import ScratchNet
from engine.net.spec import PRESETS, NetworkSpec
from engine.session import Session
from engine.train.lockstep import Lockstep, TrainConfig
from engine.train.run import train

DTYPES = ("float32", "float64")
# networks beyond the presets: every activation, every loss, a deep one, a wide one
OTHERS = {
    "relu": NetworkSpec((2, 10, 10, 1), ("relu", "relu", "identity")),
    "tanh-elu-mse": NetworkSpec((3, 16, 8, 2), ("tanh", "elu", "identity"), loss="mse"),
    "softplus-leaky-bce": NetworkSpec((2, 32, 32, 1), ("softplus", "leaky_relu", "sigmoid"),
                                      loss="bce"),
    "deep": NetworkSpec((2, *(20,) * 8, 1), ("sigmoid",) * 8 + ("identity",),
                        loss="half_squared_error"),
    "wide": NetworkSpec((4, 256, 3), ("tanh", "identity")),
}
NETWORKS = {**PRESETS, **OTHERS}


def graded(spec: NetworkSpec, params, x, y, mistake=None) -> list[tuple[str, str, float]]:
    """(key, grade, worst excess) of every stage of one sample, scratch against torch."""
    ref = reference(spec, params, x, y)
    ours = scratch_net(spec, params, mistake).stages(x, y)
    theirs = TorchNet(spec, params).stages(x, y)
    out = []
    for a, b in zip(ours, theirs, strict=True):
        grade, excess = grade_pair(a.value, b.value, a.key, ref, ref)
        out.append((a.key, grade, float(np.max(excess))))
    return out


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", list(NETWORKS))
def test_a_correct_pass_grades_every_stage_exact(name, dtype):
    spec = NETWORKS[name].with_options(dtype=dtype)
    for seed in range(2):
        params, data = init_params(spec, seed), default_set(spec, 40, seed)
        for i in range(len(data)):
            for key, grade, excess in graded(spec, params, *data.sample(i)):
                assert grade == EXACT, f"{name} {dtype} sample {i + 1} {key}: {excess:.3g}"


def test_the_old_thresholds_called_correct_float32_stages_merely_acceptable():
    spec = PRESETS["2-10-10-1-sigmoid-squared"]
    params, data = init_params(spec), default_set(spec, 10)
    x, y = data.sample(0)
    ours = ScratchNet(spec, params).stages(x, y)
    theirs = TorchNet(spec, params).stages(x, y)
    old = [compare_arrays(a.value, b.value).grade for a, b in zip(ours, theirs, strict=True)]
    assert old.count(GOOD) < len(old)            # what the window showed amber
    assert all(g == EXACT for _, g, _ in graded(spec, params, x, y))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", [*PRESETS, "relu", "tanh-elu-mse"])
def test_every_catalogued_mistake_is_flagged_where_it_departs(name, dtype):
    spec = NETWORKS[name].with_options(dtype=dtype)
    params, data = init_params(spec), default_set(spec, 3)
    for injection in injections(spec):
        if injection.mistake.needs_updates or injection.from_sample > 1:
            continue  # these depart only along a run; see the session tests below
        grades = graded(spec, params, *data.sample(0), mistake=injection)
        first = next(key for key, grade, _ in grades if grade == FLAGGED)
        assert first == injection.first_stage, injection.label
        assert all(g == EXACT for key, g, _ in grades[:[k for k, *_ in grades].index(first)])


@pytest.mark.parametrize("dtype", DTYPES)
def test_the_session_flags_each_mistake_where_it_departs(dtype):
    spec = PRESETS["2-10-10-1-sigmoid-squared"].with_options(dtype=dtype)
    session = Session(spec)
    assert session.first_departure is None
    for injection in injections(spec):
        if injection.mistake.needs_updates:
            continue
        session.set_mistake(injection.label)
        session.go_to_sample(injection.from_sample - 1)
        assert session.first_departure == injection.first_stage, injection.label
        session.go_to_sample(0)


@pytest.mark.parametrize(("dtype", "relative"), [("float32", 1e-3), ("float64", 1e-11)])
def test_the_bound_is_tight_enough_to_catch_small_errors(dtype, relative):
    spec = PRESETS["2-10-10-1-sigmoid-squared"].with_options(dtype=dtype)
    params, data = init_params(spec), default_set(spec, 5)
    x, y = data.sample(0)
    ref = reference(spec, params, x, y)
    # an error far below any catalogued mistake's, in the largest element of every stage
    for stage in TorchNet(spec, params).stages(x, y):
        wrong = np.array(stage.value, dtype=np.float64)
        wrong.flat[int(np.argmax(np.abs(wrong)))] *= 1 + relative
        wrong = wrong.astype(spec.np_dtype)
        assert grade_pair(wrong, stage.value, stage.key, ref, ref)[0] == FLAGGED, stage.key
    assert unit_roundoff(dtype) < relative


def run_states(spec: NetworkSpec, mistake: str | None, steps: int):
    params, data = init_params(spec), default_set(spec)
    lockstep = Lockstep(spec, params, data, mistake=mistake)
    config = TrainConfig(lr=0.01, epochs=max(1, steps // len(data)), seed=0)
    for _ in train(spec, params, data, config, lockstep):
        pass
    return lockstep.params()


def test_training_drift_of_correct_float32_engines_is_not_a_departure():
    spec = PRESETS["2-10-10-1-sigmoid-squared"]
    scratch, theirs = run_states(spec, None, 500)
    session = Session(spec)
    session.set_params(scratch, torch_params=theirs)
    assert session.drifted_by_rounding
    for index in range(0, session.n_samples, 9):
        session.go_to_sample(index)
        assert session.first_departure is None, index
        assert {p.grade for p in session.pairs} <= {EXACT, DRIFT}


def test_a_wrong_update_departs_after_training():
    spec = PRESETS["2-10-10-1-sigmoid-squared"]
    scratch, theirs = run_states(spec, "flipped_update_sign", 100)
    assert np.isfinite(np.concatenate([v.ravel() for v in scratch.values()])).all()
    session = Session(spec, mistake="flipped_update_sign")
    session.set_params(scratch, torch_params=theirs)
    assert not session.drifted_by_rounding
    assert session.first_departure == "z1"

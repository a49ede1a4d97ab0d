"""The Qt-free session behind the window: navigation, events, and every number from engine/."""

import numpy as np
import pytest

from engine.datasets import regression_set
from engine.numgrad import numerical_gradient
from engine.params import init_params
from engine.reference import TorchNet
from engine.scratch import ScratchNet
from engine.session import Session
from engine.spec import NetworkSpec, preset


@pytest.fixture
def session():
    events = []
    s = Session()
    s.subscribe(events.append)
    s.events = events
    return s


def test_starts_at_the_first_stage_of_the_first_sample(session):
    assert (session.sample_index, session.stage_index, session.stage.key) == (0, 0, "z1")
    assert session.n_samples == 100 and len(session.pairs) == 19


def test_values_are_the_engines_own(session):
    x, y = session.sample
    ours = {s.key: s.value for s in ScratchNet(session.spec, session.params).stages(x, y)}
    theirs = {s.key: s.value for s in TorchNet(session.spec, session.params).stages(x, y)}
    for pair in session.pairs:
        np.testing.assert_array_equal(pair.scratch.value, ours[pair.key])
        np.testing.assert_array_equal(pair.torch.value, theirs[pair.key])
        assert pair.comparison.agree


def test_stepping_and_events(session):
    session.step()
    session.step()
    assert session.stage.key == "z2" and session.events == ["stage", "stage"]
    session.back()
    assert session.stage.key == "a1"
    session.run_sample()
    assert session.stage.key == "dL/db1"
    session.step()  # at the end: nothing moves, nothing fires
    assert session.events == ["stage"] * 4
    session.back()
    session.go_to_stage(0)
    session.back()
    assert session.stage_index == 0


def test_samples_keep_the_stage_and_recompute(session):
    session.go_to_stage(9)
    before = session.value("dL/dw3").copy()
    session.next_sample()
    assert (session.sample_index, session.stage.key) == (1, "dL/dw3")
    assert not np.array_equal(before, session.value("dL/dw3"))
    session.previous_sample()
    session.previous_sample()
    assert session.sample_index == 0
    session.go_to_sample(10_000)
    assert session.sample_index == 99
    assert session.events == ["stage", "sample", "sample", "sample"]
    session.reset()
    assert (session.sample_index, session.stage_index) == (0, 0)


def test_numerical_gradient_on_demand(session):
    assert session.numerical("z1") is None
    x, y = session.sample
    expected = numerical_gradient(session.spec, session.params, x, y, "w2")
    np.testing.assert_allclose(session.numerical("dL/dw2"), expected)
    np.testing.assert_allclose(session.numerical("dL/dw2"), session.value("dL/dw2"), rtol=1e-3,
                               atol=1e-6)


def test_numerical_gradient_follows_the_layout():
    spec = preset("2-10-5-1-sigmoid-squared").with_options(layout="in_out")
    s = Session(spec)
    assert s.numerical("dL/dw1").shape == (2, 10) == s.value("dL/dw1").shape


def test_changing_the_network_fits_the_data_and_keeps_the_sample():
    s = Session()
    events = []
    s.subscribe(events.append)
    s.go_to_sample(5)
    s.go_to_stage(3)
    deep = NetworkSpec((3, 6, 6, 2), ("relu", "relu", "identity"), "mse", "float64")
    s.set_network(deep)
    assert s.data.x.shape == (100, 3) and s.data.x.dtype == np.float64
    assert (s.sample_index, s.stage_index) == (5, 0)
    assert events[-1] == "network"
    assert [p.key for p in s.pairs][:2] == ["z1", "a1"]
    np.testing.assert_array_equal(s.params["w1"], init_params(deep)["w1"])


def test_new_data_and_new_parameters():
    s = Session()
    s.go_to_sample(3)
    s.set_data(regression_set(s.spec, 7, seed=2))
    assert s.n_samples == 7 and s.sample_index == 0
    params = init_params(s.spec, seed=11)
    s.set_params(params)
    np.testing.assert_array_equal(s.params["w3"], params["w3"])
    with pytest.raises(ValueError, match="does not fit"):
        s.set_data(regression_set(NetworkSpec((3, 1), ("identity",)), 4))


def test_torch_may_hold_its_own_parameters():
    s = Session()
    own = init_params(s.spec, seed=5)
    s.set_params(s.params, torch_params=own)
    x, y = s.sample
    theirs = {st.key: st.value for st in TorchNet(s.spec, own).stages(x, y)}
    np.testing.assert_array_equal(s.value("dL/dw1", "torch"), theirs["dL/dw1"])
    assert not s.stage.comparison.agree or not s.pairs[-1].comparison.agree
    s.set_params(s.params)
    assert s.torch_params is None and all(p.comparison.agree for p in s.pairs)


def test_parameters_that_overflow_show_inf_without_warnings():
    s = Session()
    huge = {k: v * 1e30 for k, v in s.params.items()}
    s.set_params(huge)
    assert not np.all(np.isfinite(s.value("loss")))

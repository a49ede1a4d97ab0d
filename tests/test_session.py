"""The Qt-free session behind the window: navigation, events, and every number from engine/."""

import numpy as np
import pytest

from engine.check.mistaken_net import scratch_net
from engine.check.mistakes import MISTAKES, inject
from engine.errors import UserInputError
from engine.files.datasets import regression_set
from engine.net.numgrad import numerical_gradient
from engine.net.params import init_params
from engine.net.reference import TorchNet
from engine.net.scratch import ScratchNet
from engine.net.spec import DEFAULT_PRESET, NetworkSpec, preset
from engine.session import PENDING, Session


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
        assert pair.agrees and pair.grade == "exact"


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
    assert not s.stage.agrees or not s.pairs[-1].agrees
    s.set_params(s.params)
    assert s.torch_params is None and all(p.agrees for p in s.pairs)


def test_parameters_that_overflow_show_inf_without_warnings():
    s = Session()
    huge = {k: v * 1e30 for k, v in s.params.items()}
    s.set_params(huge)
    assert not np.all(np.isfinite(s.value("loss")))


# a mistake injected in the scratch engine
def test_a_mistake_departs_at_its_first_stage_and_none_clears_it(session):
    from_sample_1 = [n for n, m in MISTAKES.items() if m.from_sample == 1]
    session.go_to_stage(4)
    session.events.clear()
    for name in from_sample_1:
        session.set_mistake(name)
        x, y = session.sample
        ours = scratch_net(session.spec, session.params, name).stages(x, y)
        assert [p.scratch.key for p in session.pairs] == [s.key for s in ours]
        for pair, stage in zip(session.pairs, ours, strict=True):
            np.testing.assert_array_equal(pair.scratch.value, stage.value)
        assert session.first_departure == inject(session.spec, name).first_stage, name
        assert session.pairs[session.departure_index].key == session.first_departure
        assert session.mistake.name == name
    assert session.events == ["mistake"] * len(from_sample_1)
    assert (session.sample_index, session.stage_index) == (0, 4)
    session.set_mistake(None)
    assert session.mistake is None and session.first_departure is None
    assert session.departure_index is None


def test_accumulated_gradients_hold_the_sum_of_the_samples_so_far():
    s = Session(mistake="accumulated_gradients")
    assert s.first_departure is None  # sample 1: the buffers were empty
    s.go_to_sample(3)
    assert s.first_departure == "dL/dw3"
    _, right = ScratchNet(s.spec, s.params).per_sample_gradients(s.data.x[:4], s.data.y[:4])
    np.testing.assert_allclose(s.value("dL/db2"), right["b2"].sum(axis=0), rtol=1e-5)
    np.testing.assert_allclose(s.value("dL/db2", "torch"), right["b2"][3], rtol=1e-5)
    s.next_sample()  # goes on from the buffers of sample 4, as a fresh walk to sample 5 does
    fresh = Session(mistake="accumulated_gradients")
    fresh.go_to_sample(4)
    np.testing.assert_allclose(s.value("dL/dw1"), fresh.value("dL/dw1"), rtol=1e-5)
    assert not np.allclose(s.value("dL/dw1"), s.value("dL/dw1", "torch"), rtol=1e-3)


def test_a_training_runs_buffers_are_where_the_stages_start():
    s = Session(mistake="accumulated_gradients")
    buffers = {name: np.full_like(value, 0.5) for name, value in s.params.items()}
    s.go_to_sample(2)
    s.set_params(s.params, buffers=buffers)
    np.testing.assert_allclose(s.value("dL/db1"), 0.5 + s.value("dL/db1", "torch"), rtol=1e-6)
    s.set_mistake("accumulated_gradients")  # a new mistake: the run's buffers are not its own
    assert s.buffers is None


def test_a_new_network_keeps_a_mistake_it_can_make_and_says_why_it_drops_one():
    s = Session(mistake="dropped_factor_2")
    s.set_network(preset("2-10-5-1-sigmoid-squared"))
    assert s.mistake.name == "dropped_factor_2" and s.mistake.spec == s.spec
    assert s.first_departure == "dL/dy_hat" and s.mistake_note == ""
    s.set_network(preset(DEFAULT_PRESET))
    s.set_mistake("untransposed_weight")
    s.set_network(preset("2-10-5-1-sigmoid-squared"))
    assert s.mistake is None and s.first_departure is None
    assert "untransposed_weight" in s.mistake_note and "square" in s.mistake_note


def test_a_mistake_the_network_cannot_make_is_refused_and_changes_nothing():
    s = Session(preset("2-2-1-tanh-bce"), mistake="forgotten_activation_derivative")
    events = []
    s.subscribe(events.append)
    with pytest.raises(UserInputError, match="no factor 2 to drop"):
        s.set_mistake("dropped_factor_2")
    assert s.mistake.name == "forgotten_activation_derivative" and events == []


def test_parameters_set_unannounced_are_computed_now_and_heard_when_announced():
    spec = preset(DEFAULT_PRESET)
    quiet, told = Session(spec, init_params(spec, 1)), Session(spec, init_params(spec, 1))
    events = []
    quiet.subscribe(events.append)
    params = init_params(spec, 7)
    quiet.set_params(params, sample=3, announce=False)
    told.set_params(params, sample=3)
    assert events == []
    assert_same_pairs(quiet, told)
    quiet.announce("network")
    assert events == ["network"]


# torch later: the window's session shows the scratch pass before torch is imported

def assert_same_pairs(later: Session, now: Session) -> None:
    """Every stage of `later` is what `now` has: values, comparison, grade and excess."""
    assert len(later.pairs) == len(now.pairs)
    for a, b in zip(later.pairs, now.pairs, strict=True):
        assert a.key == b.key and a.grade == b.grade and a.comparison == b.comparison
        np.testing.assert_array_equal(a.scratch.value, b.scratch.value)
        np.testing.assert_array_equal(a.torch.value, b.torch.value)
        np.testing.assert_array_equal(a.excess, b.excess)
    assert later.first_departure == now.first_departure
    assert (later.sample_index, later.stage_index) == (now.sample_index, now.stage_index)


def test_new_parameters_with_their_sample_are_computed_once():
    """set_params(..., sample=k) is set_params then go_to_sample(k), in one computation and
    one event; the sample is clamped as go_to_sample clamps it."""
    params, theirs = init_params(preset(DEFAULT_PRESET), 4), init_params(
        preset(DEFAULT_PRESET), 5)
    apart, together = Session(), Session()
    for s in (apart, together):
        s.go_to_stage(7)
    apart.set_params(params, theirs)
    apart.go_to_sample(3)
    events = []
    together.subscribe(events.append)
    together.set_params(params, theirs, sample=3)
    assert events == ["network"]
    assert_same_pairs(together, apart)
    together.set_params(params, sample=10_000)
    assert together.sample_index == together.n_samples - 1


def test_with_torch_later_the_scratch_pass_is_there_and_torch_is_pending():
    later, now = Session(torch_later=True), Session()
    assert not later.torch_ready and now.torch_ready
    assert [p.key for p in later.pairs] == [p.key for p in now.pairs]
    for a, b in zip(later.pairs, now.pairs, strict=True):
        np.testing.assert_array_equal(a.scratch.value, b.scratch.value)
        assert a.pending and a.agrees and a.grade == PENDING
        assert (a.torch, a.comparison, a.excess) == (None, None, None)
    assert later.value("loss", "torch") is None
    np.testing.assert_array_equal(later.value("loss"), now.value("loss"))
    assert later.first_departure is None and later.departure_index is None


def test_torch_arriving_gives_every_stage_what_a_session_with_torch_has(session):
    later = Session(torch_later=True)
    events = []
    later.subscribe(events.append)
    later.go_to_sample(3)
    later.go_to_stage(12)   # the user steps while torch loads
    later.torch_loaded()
    assert events == ["sample", "stage", "torch"] and later.torch_ready
    session.go_to_sample(3)
    session.go_to_stage(12)
    assert_same_pairs(later, session)
    later.torch_loaded()    # once is enough: nothing recomputed, nothing fired
    assert events[-1] == "torch" and len(events) == 3


@pytest.mark.parametrize("change", [
    lambda s: s.set_network(preset("2-2-1-tanh-bce")),
    lambda s: s.set_mistake("sigmoid_derivative_of_activation"),
    lambda s: s.set_params({k: v * 3 for k, v in s.params.items()},
                           torch_params={k: v * 3.001 for k, v in s.params.items()}),
    lambda s: s.set_data(regression_set(s.spec, 10, seed=4)),
])
def test_what_changes_while_torch_loads_is_torch_graded_once_it_is_in(change):
    later, now = Session(torch_later=True), Session()
    change(later)
    assert all(p.pending for p in later.pairs)
    later.torch_loaded()
    change(now)
    assert_same_pairs(later, now)


def test_a_torch_that_cannot_be_imported_leaves_torchs_side_pending_and_says_why():
    later = Session(torch_later=True)
    events = []
    later.subscribe(events.append)
    later.torch_failed("torch could not be loaded (ImportError: no libtorch)")
    assert events == ["no torch"] and later.torch_error.endswith("no libtorch)")
    assert all(p.pending for p in later.pairs) and not later.torch_ready
    later.step()
    assert later.stage.key == "a1" and later.stage.pending

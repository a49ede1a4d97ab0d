"""The session with the user's own code in the scratch engine's place: the stages it gives are
its values, graded against torch as the scratch engine's are; those it does not give keep the
scratch engine's value, marked unchecked; new parameters or data drop its values until a new
run brings them. Checked in float32 and float64."""

import numpy as np
import pytest

from engine.check.rounding import EXACT, FLAGGED
from engine.files.datasets import default_set
from engine.net.params import init_params
from engine.net.reference import TorchNet
from engine.net.spec import DEFAULT_PRESET, preset
from engine.session import SCRATCH, UNCHECKED, USER, YOURS, Session
from engine.usercode import UserCode, check_code
from engine.yours import your_values
from tests.test_check_code import BACK, STAGED, VECTOR, VECTORISED, mistaken, student

SAMPLES = 12


def session_with(tmp_path, body, dtype="float32", forward=True, layout="out_in"):
    spec = preset(DEFAULT_PRESET).with_options(dtype=dtype, layout=layout)
    session = Session(spec, init_params(spec, 3), default_set(spec, SAMPLES, 3))
    code = UserCode.parse(str(student(tmp_path, body, forward)))
    session.check_yours(code.label)
    checked = check_code(code, spec, session.params, session.data)
    session.set_yours(your_values(checked, spec.np_dtype))
    return session, checked


def torch_value(session, key):
    x, y = session.sample
    return next(s.value for s in TorchNet(session.spec, session.params).stages(x, y)
                if s.key == key)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_the_gradients_are_the_codes_and_the_rest_unchecked(tmp_path, dtype):
    session, checked = session_with(tmp_path, VECTORISED, dtype, forward=False)
    events = []
    session.subscribe(events.append)
    session.go_to_sample(5)
    assert events == ["sample"]
    by_key = {p.key: p for p in session.pairs}
    for name in ("w1", "b1", "w2", "b2", "w3", "b3"):
        pair = by_key[f"dL/d{name}"]
        assert pair.source == USER and pair.grade == EXACT
        expected = checked.comparison.aligned.b[name][5].astype(np.float64)
        assert pair.scratch.value.dtype == np.dtype(dtype)
        np.testing.assert_array_equal(pair.scratch.value, expected.astype(dtype))
        np.testing.assert_allclose(pair.scratch.value.astype(np.float64),
                                   torch_value(session, pair.key).astype(np.float64),
                                   rtol=1e-4 if dtype == "float32" else 1e-11, atol=1e-7)
    for key in ("z1", "a1", "y_hat", "loss", "dL/dz2"):
        assert by_key[key].source == SCRATCH and by_key[key].grade == UNCHECKED
    assert session.first_departure is None and session.ours_name == "yours"


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_with_stages_every_stage_is_the_codes(tmp_path, dtype):
    session, _ = session_with(tmp_path, STAGED, dtype)
    given = {p.key for p in session.pairs if p.source == USER}
    assert {"z1", "a1", "z2", "a2", "z3", "y_hat", "loss", "dL/dy_hat", "dL/dz2",
            "dL/dw3", "dL/db1"} <= given
    assert all(p.grade == EXACT for p in session.pairs if p.source == USER)
    z1 = next(p for p in session.pairs if p.key == "z1")
    assert z1.scratch.value.shape == (10,)   # the student's (1, 10) in the stage's shape


def test_a_mistake_departs_where_the_code_goes_wrong(tmp_path):
    body = mistaken(VECTOR, BACK, "delta = params[\"w%d\" % l].T @ delta")
    session, checked = session_with(tmp_path, body)
    assert session.first_departure == "dL/dw2"   # the pass reaches w2 before b2
    assert session.pairs[session.departure_index].grade == FLAGGED
    assert checked.comparison.report.first_disagreement == "b2"


def test_new_parameters_drop_the_values_until_a_new_run(tmp_path):
    session, _ = session_with(tmp_path, VECTORISED, forward=False)
    session.go_to_sample(3)
    session.go_to_stage(len(session.pairs) - 1)
    session.set_params({k: v * 1.5 for k, v in session.params.items()})
    assert session.checking_yours and session.yours is None
    assert all(p.grade == UNCHECKED and p.source == SCRATCH for p in session.pairs)
    assert session.sample_index == 3
    checked = check_code(UserCode.parse(str(tmp_path / "mine.py")), session.spec,
                         session.params, session.data)
    events = []
    session.subscribe(events.append)
    session.set_yours(your_values(checked, session.spec.np_dtype))
    assert events == [YOURS]
    assert session.sample_index == 3 and session.stage_index == len(session.pairs) - 1
    assert session.stage.source == USER and session.stage.grade == EXACT


def test_values_of_other_data_are_refused_and_stop_gives_the_place_back(tmp_path):
    session, checked = session_with(tmp_path, VECTORISED, forward=False)
    session.set_data(default_set(session.spec, SAMPLES + 1, 4))
    with pytest.raises(ValueError, match="12 samples"):
        session.set_yours(your_values(checked, session.spec.np_dtype))
    session.yours_failed("boom")
    assert session.yours_error == "boom" and session.checking_yours
    session.stop_yours()
    assert not session.checking_yours and session.ours_name == "scratch"
    assert all(p.source == SCRATCH and p.grade != UNCHECKED for p in session.pairs)

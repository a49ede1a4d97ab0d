"""The window's grades: a correct float32 pass of every preset reads exact in every panel, and
the float32 drift of a correct training run reads as drift, never as a departure."""

import numpy as np
import pytest

from engine.check.rounding import DRIFT, EXACT
from engine.files.datasets import default_set
from engine.net.params import init_params
from engine.net.spec import PRESETS
from engine.session import Session
from engine.train.lockstep import Lockstep, TrainConfig
from engine.train.run import train
from gui.stepping.stage_list import AGREEMENT
from tests.gui.windows import window_on

pytestmark = pytest.mark.qt_log_ignore("does not support propagateSizeHints")




@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("name", list(PRESETS))
def test_every_stage_of_a_correct_pass_reads_exact(qtbot, name, dtype):
    spec = PRESETS[name].with_options(dtype=dtype)
    w = window_on(qtbot, Session(spec))
    session, stages = w.model.session, w.stage_list
    for index in (0, 1, 2):
        session.go_to_sample(index)
        words = {stages.row_texts(row)[AGREEMENT] for row in range(len(session.pairs))}
        assert words == {"exact"}, (index, words)
        assert stages.red_rows() == []
    session.go_to_stage(len(session.pairs) - 1)
    assert w.status.agreement.text().startswith(f"✓ exact to {dtype}")
    assert f"exact to {dtype}" in w.stage_card.badge.text()
    assert f"within {dtype} rounding" in w.stage_column.legend.text()


def test_a_correct_training_runs_drift_is_not_a_departure(qtbot):
    spec = PRESETS["2-10-10-1-sigmoid-squared"]
    params, data = init_params(spec), default_set(spec)
    lockstep = Lockstep(spec, params, data)
    for _ in train(spec, params, data, TrainConfig(lr=0.1, epochs=5), lockstep):
        pass
    scratch, theirs = lockstep.params()
    w = window_on(qtbot, Session(spec, params, data))
    session = w.model.session
    session.set_params(scratch, torch_params=theirs)
    seen = set()
    for index in range(0, 100, 7):
        session.go_to_sample(index)
        assert session.first_departure is None
        assert w.stage_list.red_rows() == [] and w.stage_list.departure_row() is None
        seen |= {p.grade for p in session.pairs}
    assert seen <= {EXACT, DRIFT}
    assert np.isfinite(session.drift) and 0 < session.drift < 1e-4


def test_parameters_parted_by_rounding_read_as_drift(qtbot):
    spec = PRESETS["2-10-10-1-sigmoid-squared"]
    params = init_params(spec)
    rng = np.random.default_rng(3)
    # what a long correct run leaves (~1e-6 apart after 3·10^4 steps), a little further
    theirs = {k: (v * (1 + 1e-5 * rng.standard_normal(v.shape))).astype(v.dtype)
              for k, v in params.items()}
    w = window_on(qtbot, Session(spec, params))
    session = w.model.session
    session.set_params(params, torch_params=theirs)
    assert session.drifted_by_rounding and session.first_departure is None
    drifting = [i for i, p in enumerate(session.pairs) if p.grade == DRIFT]
    assert drifting
    session.go_to_stage(drifting[0])
    assert w.status.agreement.text().startswith("≈ drift from float32 rounding")
    assert w.stage_list.row_texts(drifting[0])[AGREEMENT] == "drift"
    assert w.stage_list.red_rows() == []

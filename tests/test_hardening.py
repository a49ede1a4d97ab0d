"""Divergence, for every activation and loss: learning rates up to 1e6 and inputs up to 1e30.
The trainer pauses at the first step whose loss or parameters are NaN or infinite and says so,
the session then shows inf and NaN stages, and `train` on the command line prints the message
and exits 1. None of it raises or warns (warnings are errors in these tests)."""

import json
import warnings

import numpy as np
import pytest

import app
from engine.files.datasets import Dataset, default_set, to_csv_text
from engine.net.activations import ACTIVATIONS
from engine.net.losses import LOSSES
from engine.net.params import init_params
from engine.net.spec import DTYPES, NetworkSpec
from engine.session import Session
from engine.train.lockstep import TrainConfig
from engine.train.run import DONE, Breakpoints, TrainingRun, run, train

REGIMES = [(1e6, 1.0), (1.0, 1e30), (1e6, 1e30)]   # (learning rate, input scale)
COMBINATIONS = [(loss, act) for loss in LOSSES for act in ACTIVATIONS]


def network(loss: str, activation: str, dtype: str = "float32") -> NetworkSpec:
    output = "sigmoid" if loss == "bce" else "identity"
    return NetworkSpec((2, 3, 3, 1), (activation, activation, output), loss, dtype)


def huge(spec: NetworkSpec, scale: float, n: int = 8) -> Dataset:
    base = default_set(spec, n, seed=0)
    return Dataset(base.x * spec.np_dtype(scale), base.y, f"inputs ×{scale:g}")


class Recorder:
    def __init__(self):
        self.records = []

    def interrupted(self) -> bool:
        return False

    def report(self, records) -> None:
        self.records += records


def must_diverge(loss: str, activation: str) -> bool:
    """At lr 1e6 on inputs of 1e30 a squared loss on an identity output blows up whatever the
    hidden layers, and so does bce on a linear network. A bce network with nonlinear hidden
    layers may not: bounded or dead units keep its logits finite."""
    return loss != "bce" or activation == "identity"


def show_every_stage(session: Session) -> list[str]:
    """Walk the current sample's stages as the window does; the keys holding inf or NaN."""
    broken = []
    for index, pair in enumerate(session.pairs):
        session.go_to_stage(index)
        for stage in (pair.scratch, pair.torch):
            if not np.all(np.isfinite(stage.value)):
                broken.append(stage.key)
    session.numerical("dL/dw1")
    return broken


@pytest.fixture(autouse=True)
def warnings_are_errors():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        yield


@pytest.mark.parametrize("dtype", list(DTYPES))
@pytest.mark.parametrize(("loss", "activation"), COMBINATIONS)
def test_divergence_pauses_with_a_message_and_the_session_shows_it(loss, activation, dtype):
    spec = network(loss, activation, dtype)
    diverged_at = []
    for lr, scale in REGIMES:
        data = huge(spec, scale)
        training = TrainingRun(spec, init_params(spec, 0), data, TrainConfig(lr=lr, epochs=20))
        state = Recorder()
        outcome = run(training, state, breakpoints=Breakpoints(on_nonfinite=True))
        broken = next((r for r in state.records if not r.finite), None)
        if broken is None:
            assert outcome == DONE and training.done
            continue
        diverged_at.append((lr, scale))
        assert training.step == broken.step == state.records[-1].step   # paused right there
        assert outcome.startswith(f"diverged at step {broken.step}: the loss is ")
        assert f"with learning rate {lr:g}; try a smaller one, such as {lr / 10:g}" in outcome
        session = Session(spec, data=data)
        session.set_params(*training.lockstep.params())   # after the step that broke
        assert show_every_stage(session), "a diverged network shows inf or NaN somewhere"
        session.set_params(*training.timeline.params_at(broken.step - 1))   # just before it
        session.go_to_sample(broken.samples[0])
        show_every_stage(session)
    if must_diverge(loss, activation):
        assert (1e6, 1e30) in diverged_at


@pytest.mark.parametrize(("loss", "activation"), COMBINATIONS)
def test_train_on_the_command_line_says_so_and_exits_1(tmp_path, capsys, loss, activation):
    spec = network(loss, activation)
    model = tmp_path / "model.json"
    model.write_text(json.dumps(spec.to_dict()))
    data = huge(spec, 1e30, n=10)
    (tmp_path / "data.csv").write_text(to_csv_text(data))
    expected = next((r for r in train(spec, init_params(spec, 0), data,
                                      TrainConfig(lr=1e6, epochs=4)) if not r.finite), None)
    status = app.main(["train", "--model", str(model), "--data", str(tmp_path / "data.csv"),
                       "--lr", "1e6", "--epochs", "4"])
    out, err = capsys.readouterr()
    if expected is None:
        assert not must_diverge(loss, activation)
        assert status == 0 and err == ""
        return
    assert status == 1
    assert err.startswith(f"train: diverged at step {expected.step} (epoch {expected.epoch}, "
                          f"sample {expected.samples[0] + 1}): the loss is ")
    assert err.rstrip().endswith("try a smaller one, such as 100000")
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in out + err

"""The torch helper process: the same numbers as in-process, whatever happens to it."""

import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest
import torch
from torch import nn

from engine.files.datasets import default_set
from engine.net.params import init_params, unflat
from engine.net.reference import TorchNet, _engine_backward, _mse, _public_backward, torch_loss
from engine.net.spec import NetworkSpec, preset
from engine.train import launch
from engine.train.lockstep import LocalTorch, Lockstep, Schedule, TrainConfig, batch_arrays
from engine.train.run import TrainingRun, train
from engine.train.torch_process import (
    CHECK_EVERY,
    MAX_PARAMS,
    MIN_STEPS,
    RemoteTorch,
    TorchHelper,
    worthwhile,
)

DEADLINE = 120.0   # seconds a helper may take to import torch on a loaded machine


def handed_over(training: TrainingRun) -> list:
    """Wait for `training`'s helper to be ready, then step until it has taken over the torch
    engine (at most CHECK_EVERY steps); the records of those steps."""
    start = time.monotonic()
    while not training.handover.helper.ready():
        assert time.monotonic() - start < DEADLINE, "the torch helper never became ready"
        time.sleep(0.01)
    records = []
    while not training.handover.active:
        assert len(records) <= CHECK_EVERY
        records.append(training.advance())
    return records


def runs(spec: NetworkSpec, config: TrainConfig) -> tuple[TrainingRun, TrainingRun]:
    params, data = init_params(spec, 3), default_set(spec, 30, 3)
    return (TrainingRun(spec, params, data, config, parallel=False),
            TrainingRun(spec, params, data, config, parallel=True))


def finish(training: TrainingRun) -> list:
    records = []
    while not training.done:
        records.append(training.advance())
    return records


def same_params(a: TrainingRun, b: TrainingRun) -> bool:
    return all(np.array_equal(x[k], y[k]) for x, y in zip(a.lockstep.params(),
                                                            b.lockstep.params(), strict=True)
               for k in x)


@pytest.mark.parametrize("name, config", [
    ("2-10-10-1-sigmoid-squared", TrainConfig(lr=0.05, epochs=40)),
    ("2-10-10-1-sigmoid-squared-f64", TrainConfig(lr=0.05, epochs=40, shuffle=True, seed=7)),
    ("2-2-1-tanh-bce", TrainConfig(lr=0.3, epochs=40, batch_size=4, shuffle=True)),
])
def test_the_helper_gives_bit_identical_records_and_parameters(name, config):
    spec = (preset(name.removesuffix("-f64")).with_options(dtype="float64")
            if name.endswith("-f64") else preset(name))
    local, helped = runs(spec, config)
    try:
        got = [helped.advance() for _ in range(10)]   # in-process while the helper starts
        got += handed_over(helped)
        at = helped.step
        got += finish(helped)
        # the steps after the handover came from the helper, bit for bit the same
        assert at < len(got) == local.total
        assert got == finish(local)
        assert same_params(local, helped)
        # the timeline's snapshots were taken from the helper's parameters too
        assert np.array_equal(helped.timeline.params_at(helped.step)[1]["w1"],
                              local.timeline.params_at(local.step)[1]["w1"])
    finally:
        helped.close()


def test_a_helper_that_dies_mid_run_leaves_the_run_going_in_process():
    local, helped = runs(preset("2-10-10-1-sigmoid-squared"), TrainConfig(lr=0.05, epochs=60))
    try:
        handed_over(helped)
        for _ in range(100):
            helped.advance()
        helped.handover.remote.helper.process.kill()
        rest = finish(helped)
        expected = finish(local)
        assert rest == expected[-len(rest):]
        assert helped.lockstep.torch.local is not None       # it went on in-process
        assert same_params(local, helped)
    finally:
        helped.close()


def test_closing_ends_the_helper_and_the_run_can_still_go_on():
    local, helped = runs(preset("2-10-10-1-sigmoid-squared"), TrainConfig(lr=0.05, epochs=20))
    handed_over(helped)
    process = helped.handover.remote.helper.process
    helped.close()
    assert process.wait(timeout=10) is not None
    finish(helped)
    finish(local)
    assert same_params(local, helped)


def test_the_helper_is_in_the_runs_session_in_a_process_group_of_its_own():
    """So that the run's nice value holds for the helper too (see the child's test), and
    Ctrl-C goes to the run only."""
    _, helped = runs(preset("2-10-10-1-sigmoid-squared"), TrainConfig(lr=0.05, epochs=20))
    try:
        pid = helped.handover.helper.process.pid
        assert os.getsid(pid) == os.getsid(0)
        assert os.getpgid(pid) == pid != os.getpgid(0)
    finally:
        helped.close()


def test_a_finished_run_ends_its_helper():
    _, helped = runs(preset("2-2-1-tanh-bce"), TrainConfig(lr=0.1, epochs=30))
    handed_over(helped)
    process = helped.handover.remote.helper.process
    finish(helped)
    assert process.wait(timeout=10) is not None


def test_only_long_runs_of_small_nets_start_a_helper():
    spec = preset("2-10-10-1-sigmoid-squared")
    assert not worthwhile(spec, MIN_STEPS - 1) and worthwhile(spec, MIN_STEPS)
    big = NetworkSpec(sizes=(1000, 100, 1), activations=("sigmoid", "identity"))
    assert big.n_params > MAX_PARAMS and not worthwhile(big, 10**6)
    short = TrainingRun(spec, init_params(spec), default_set(spec, 10), TrainConfig(epochs=2))
    assert short.handover.helper is None


def test_the_helper_goes_when_the_app_is_killed(tmp_path):
    """kill -9 of the app leaves no helper behind: it sees its pipes close and leaves."""
    script = textwrap.dedent("""
        import sys, time
        from engine.files.datasets import default_set
        from engine.net.params import init_params
        from engine.net.spec import preset
        from engine.train.lockstep import TrainConfig
        from engine.train.run import TrainingRun
        spec = preset("2-10-10-1-sigmoid-squared")
        run = TrainingRun(spec, init_params(spec), default_set(spec, 50),
                          TrainConfig(lr=0.05, epochs=10**6))
        while not run.handover.active:
            run.advance()
        print(run.handover.remote.helper.process.pid, flush=True)
        while True:
            run.advance()
    """)
    app = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True,
                           cwd=os.getcwd())
    try:
        child = int(app.stdout.readline())
        os.kill(app.pid, signal.SIGKILL)
        app.wait(timeout=10)
        start = time.monotonic()
        while _running(child):
            assert time.monotonic() - start < 30, "the helper outlived the app"
            time.sleep(0.05)
    finally:
        app.kill()
        app.wait()


def _running(pid: int) -> bool:
    """Alive and not a zombie (the killed app's children are reparented and reaped)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except FileNotFoundError:
        return False


# the step the helper runs


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("loss, activation", [("squared_error", "sigmoid"), ("mse", "tanh"),
                                              ("half_squared_error", "relu"), ("bce", "elu")])
def test_train_step_is_autograd_of_the_per_sample_loss(dtype, loss, activation):
    """The single-sample path (addmv, fused loss, the engine called directly) against
    backward() through the modules on the same sample, and the SGD update it makes."""
    outputs = 1 if loss == "bce" else 2
    last = "sigmoid" if loss == "bce" else "identity"
    spec = NetworkSpec(sizes=(3, 5, outputs), activations=(activation, last), loss=loss,
                       dtype=dtype)
    params = init_params(spec, 5)
    data = default_set(spec, 4, 5)
    x, y = data.x[1:2], data.y[1:2]
    net = TorchNet(spec, params)
    loss_value, grads, after = net.train_step(x, y, 0.1)
    tol = {"float32": dict(rtol=1e-6, atol=1e-7), "float64": dict(rtol=1e-13, atol=1e-15)}
    np.testing.assert_allclose(loss_value, _loss_of(spec, params, x, y), **tol[dtype])
    for name, g in unflat(spec, grads).items():
        np.testing.assert_allclose(g, _module_grads(spec, params, x, y)[name], **tol[dtype])
        np.testing.assert_allclose(unflat(spec, after)[name],
                                   params[name] - spec.np_dtype(0.1) * g, **tol[dtype])


def _module_grads(spec, params, x, y):
    net = TorchNet(spec, params)
    net.model.zero_grad()
    out = net.model(torch.from_numpy(x))
    z = net.model[:-1](torch.from_numpy(x))
    torch_loss(spec.loss, z, out, torch.from_numpy(y)).sum().backward()
    return {net._names[k]: p.grad.numpy() for k, p in net.model.named_parameters()}


def _loss_of(spec, params, x, y):
    net = TorchNet(spec, params)
    with torch.no_grad():
        out = net.model(torch.from_numpy(x))
        z = net.model[:-1](torch.from_numpy(x))
        return torch_loss(spec.loss, z, out, torch.from_numpy(y)).item()


@pytest.mark.parametrize("backward", [_engine_backward, _public_backward])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_the_backward_a_step_calls_adds_torch_autograd_grad(backward, dtype):
    """The direct engine call (and its public fallback) adds exactly autograd's gradients
    into the .grad it finds there."""
    a = torch.randn(4, 3, dtype=dtype, requires_grad=True)
    b = torch.randn(3, dtype=dtype, requires_grad=True)
    start = [torch.randn(4, 3, dtype=dtype), torch.randn(3, dtype=dtype)]
    a.grad, b.grad = start[0].clone(), start[1].clone()

    def loss():
        return torch.sigmoid(a @ b).pow(2).sum()

    backward(loss(), (a, b))
    for param, before, theirs in zip((a, b), start, torch.autograd.grad(loss(), (a, b)),
                                     strict=True):
        assert torch.equal(param.grad, before + theirs)


@pytest.mark.filterwarnings("ignore:Using a target size")   # mse_loss's, on purpose
@pytest.mark.parametrize("reduction", ["sum", "mean"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_the_fused_squared_loss_is_mse_loss_bit_for_bit(reduction, dtype):
    """The loss without the broadcast node: the same value and gradient as
    nn.functional.mse_loss, also where the shapes differ and it broadcasts."""
    for shape in ((3,), (2, 3)):
        y_hat = torch.randn(shape, dtype=dtype, requires_grad=True)
        y = torch.randn(shape[-1:], dtype=dtype)
        ours, theirs = _mse(y_hat, y, reduction), nn.functional.mse_loss(y_hat, y,
                                                                         reduction=reduction)
        assert torch.equal(ours, theirs)
        assert torch.equal(*(torch.autograd.grad(v, y_hat)[0] for v in (ours, theirs)))


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_a_step_after_the_stages_and_the_loop_of_backwards_is_the_same(dtype):
    """stages() and gradients_loop() run backward() on the same parameters a step writes its
    gradients through: the steps after them are those of a net that never ran them."""
    spec = NetworkSpec(sizes=(2, 4, 1), activations=("tanh", "identity"), dtype=dtype)
    data = default_set(spec, 6, 1)
    used, fresh = TorchNet(spec, init_params(spec, 1)), TorchNet(spec, init_params(spec, 1))
    for i in range(len(data)):
        used.stages(data.x[i], data.y[i])
        used.gradients_loop(data.x, data.y)
        used.per_sample_gradients(data.x, data.y)
        ours, theirs = (net.train_step(data.x[i:i + 1], data.y[i:i + 1], 0.1)
                        for net in (used, fresh))
        assert ours[0] == theirs[0]
        assert np.array_equal(ours[1], theirs[1]) and np.array_equal(ours[2], theirs[2])


def test_a_helper_that_dies_before_the_handover_leaves_the_run_in_process():
    local, helped = runs(preset("2-10-10-1-sigmoid-squared"), TrainConfig(lr=0.05, epochs=20))
    start = time.monotonic()
    while not helped.handover.helper.ready():
        assert time.monotonic() - start < DEADLINE, "the torch helper never became ready"
        time.sleep(0.01)
    helped.handover.helper.process.kill()
    helped.handover.helper.process.wait()
    assert finish(helped) == finish(local)
    assert not helped.handover.active and helped.handover.helper is None


def test_the_helper_finds_engine_where_it_is_not_installed():
    from engine.train.launch import ROOT

    assert (ROOT / "engine" / "train" / "torch_process.py").is_file()


# the headless `train`: all of torch's steps in the helper, the scratch engine ahead of them


def trained(spec: NetworkSpec, config: TrainConfig, parallel: bool, mistake: str | None = None,
            stop_after: int | None = None) -> tuple[list, Lockstep]:
    """The records of `train` (the first `stop_after` of them, then the generator closed) and
    its engines after."""
    params, data = init_params(spec, 3), default_set(spec, 30, 3)
    lockstep = Lockstep(spec, params, data, mistake=mistake)
    records = []
    steps = train(spec, params, data, config, lockstep, parallel=parallel)
    for record in steps:
        records.append(record)
        if len(records) == stop_after:
            break
    steps.close()
    return records, lockstep


def same_engines(a: Lockstep, b: Lockstep) -> bool:
    return all(np.array_equal(x[k], y[k]) for x, y in zip((*a.params(), a.buffers()),
                                                            (*b.params(), b.buffers()),
                                                            strict=True)
               for k in x) and a.buffers().keys() == b.buffers().keys()


@pytest.mark.parametrize("name, config, mistake", [
    ("2-10-10-1-sigmoid-squared", TrainConfig(lr=0.05, epochs=200), None),
    ("2-10-10-1-sigmoid-squared-f64", TrainConfig(lr=0.05, epochs=200, shuffle=True, seed=7),
     None),
    ("2-2-1-tanh-bce", TrainConfig(lr=0.3, epochs=40, batch_size=4, shuffle=True), None),
    ("2-10-10-1-sigmoid-squared", TrainConfig(lr=0.05, epochs=40), "accumulated_gradients"),
])
def test_train_with_the_helper_gives_the_records_and_engines_of_an_in_process_run(
        name, config, mistake):
    spec = (preset(name.removesuffix("-f64")).with_options(dtype="float64")
            if name.endswith("-f64") else preset(name))
    helped, with_helper = trained(spec, config, parallel=True, mistake=mistake)
    local, in_process = trained(spec, config, parallel=False, mistake=mistake)
    # every torch step came from the helper
    assert isinstance(with_helper.torch, RemoteTorch) and with_helper.torch.local is None
    assert helped == local and len(local) == config.epochs * -(-30 // config.batch_size)
    assert same_engines(with_helper, in_process)


@pytest.mark.parametrize("stop_after", [1, 700])
@pytest.mark.parametrize("mistake", [None, "accumulated_gradients"])
def test_a_train_stopped_early_leaves_the_engines_of_its_last_record(stop_after, mistake):
    """The scratch engine runs ahead of torch's steps: a run left after `stop_after` records
    sets it back, so the engines are those of the last record, as in-process."""
    spec, config = preset("2-10-10-1-sigmoid-squared"), TrainConfig(lr=0.05, epochs=100)
    helped, with_helper = trained(spec, config, True, mistake, stop_after)
    local, in_process = trained(spec, config, False, mistake, stop_after)
    assert helped == local and len(helped) == stop_after
    assert same_engines(with_helper, in_process)
    # and they go on from there with the same numbers (torch in this process now)
    data = default_set(spec, 30, 3)
    rows = np.array([stop_after % len(data)])
    assert with_helper.step(rows, 0.05) == in_process.step(rows, 0.05)
    assert same_engines(with_helper, in_process)


def test_a_helper_that_dies_mid_train_leaves_it_going_in_process():
    spec, config = preset("2-10-10-1-sigmoid-squared"), TrainConfig(lr=0.05, epochs=60)
    params, data = init_params(spec, 3), default_set(spec, 30, 3)
    lockstep = Lockstep(spec, params, data)
    records = []
    for record in train(spec, params, data, config, lockstep, parallel=True):
        records.append(record)
        if record.step == 100:
            lockstep.torch.helper.process.kill()
    assert lockstep.torch.local is not None                  # it went on in-process
    local, in_process = trained(spec, config, parallel=False)
    assert records == local
    assert same_engines(lockstep, in_process)


def test_a_helper_that_cannot_start_leaves_train_in_process(monkeypatch):
    spec, config = preset("2-10-10-1-sigmoid-squared"), TrainConfig(lr=0.05, epochs=10)

    def no_process(*args, **kwargs):
        raise OSError("no more processes")

    monkeypatch.setattr(subprocess, "Popen", no_process)
    helped, with_helper = trained(spec, config, parallel=True)
    assert isinstance(with_helper.torch, LocalTorch)
    local, in_process = trained(spec, config, parallel=False)
    assert helped == local and same_engines(with_helper, in_process)


def test_only_long_trains_of_small_nets_use_a_helper():
    spec = preset("2-10-10-1-sigmoid-squared")
    params, data = init_params(spec, 3), default_set(spec, 10, 3)
    lockstep = Lockstep(spec, params, data)
    list(train(spec, params, data, TrainConfig(epochs=2), lockstep))
    assert isinstance(lockstep.torch, LocalTorch)
    lockstep = Lockstep(spec, params, data)
    next(train(spec, params, data, TrainConfig(epochs=MIN_STEPS // 10), lockstep))
    assert isinstance(lockstep._torch, RemoteTorch)


class SlowHelper:
    """A stand-in for the helper's side of a run (RemoteTorch): torch's numbers, computed
    here, "arrive" only after `waits` looks at whether they have; every call is logged."""

    def __init__(self, spec: NetworkSpec, params: dict, waits: int, log: list):
        self.local, self.waits, self.log = LocalTorch(spec, params), waits, log
        self.helper = self   # what the run closes

    def waiting(self) -> bool:
        self.waits -= 1
        return self.waits >= 0

    def step(self, x, y, lr):
        self.log.append("torch")
        return self.local.step(x, y, lr)

    def params(self):
        return self.local.params()

    def close(self) -> None:
        self.log.append("closed")


def run_ahead(waits: int, monkeypatch, ahead_bytes: int | None = None) -> tuple[list, list]:
    """The records of a run on SlowHelper, and the order in which the engines stepped."""
    from engine.train import run as run_module

    if ahead_bytes is not None:
        monkeypatch.setattr(run_module, "AHEAD_BYTES", ahead_bytes)
    spec, config = preset("2-10-10-1-sigmoid-squared"), TrainConfig(lr=0.05, epochs=4)
    params, data = init_params(spec, 3), default_set(spec, 30, 3)
    lockstep, log = Lockstep(spec, params, data), []
    scratch_step = lockstep.scratch_step

    def logged(*args, **kwargs):
        log.append("scratch")
        return scratch_step(*args, **kwargs)

    monkeypatch.setattr(lockstep, "scratch_step", logged)
    remote = SlowHelper(spec, params, waits, log)
    records = list(run_module._train_ahead(lockstep, Schedule(len(data), config), config.lr,
                                           remote))
    return records, log


def test_the_scratch_engine_steps_on_while_torch_has_not_answered(monkeypatch):
    records, log = run_ahead(waits=50, monkeypatch=monkeypatch)
    # the first step, then one more for each look that found torch's numbers not there
    assert log[:52] == ["scratch"] * 51 + ["torch"]
    assert log.count("scratch") == log.count("torch") == 120 and log[-1] == "closed"
    local, _ = trained(preset("2-10-10-1-sigmoid-squared"), TrainConfig(lr=0.05, epochs=4),
                       parallel=False)
    assert records == local


def test_the_scratch_engine_runs_ahead_only_so_far(monkeypatch):
    spec = preset("2-10-10-1-sigmoid-squared")
    row = 2 * spec.n_params * 4 + 256
    _, log = run_ahead(waits=10**6, monkeypatch=monkeypatch, ahead_bytes=10 * row)
    ahead = [log[:i].count("scratch") - log[:i].count("torch") for i in range(len(log))]
    assert max(ahead) == 10


# a helper started early (`app.py train` starts one before it reads its options)


@pytest.fixture
def early():
    """A helper started as `app.py train` starts one; discarded after the test if unused."""
    launch.start_early()
    started = launch._early
    yield started
    launch.discard()


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_an_early_helper_is_adopted_and_reads_a_set_larger_than_its_pipe(early, dtype):
    """The run adopts the helper started early; it reads its settings while it imports torch,
    here a set larger than the pipe holds, and gives the numbers of torch in this process."""
    spec = preset("2-10-10-1-sigmoid-squared").with_options(dtype=dtype)
    params, data = init_params(spec, 3), default_set(spec, 150_000, 3)
    assert data.x.nbytes + data.y.nbytes > launch.PIPE_BYTES
    config = TrainConfig(lr=0.05, epochs=1, shuffle=True, seed=2)
    flat = Lockstep(spec, params, data).torch_flat()
    helper = TorchHelper(spec, data, config, None, (0, flat))
    try:
        assert helper.process is early.process and launch._early is None
        remote, local = RemoteTorch(helper, 0, flat), LocalTorch(spec, unflat(spec, flat))
        schedule = Schedule(len(data), config)
        for step in range(1, 40):
            x, y = batch_arrays(data, schedule.batch(step))
            theirs, ours = remote.step(x, y, 0.05), local.step(x, y, 0.05)
            assert theirs[0] == ours[0]
            assert np.array_equal(theirs[1], ours[1]) and np.array_equal(theirs[2], ours[2])
        assert remote.local is None       # every step came from the helper
    finally:
        helper.close()


def test_a_train_without_a_helper_stops_the_early_one_at_once(early):
    spec = preset("2-10-10-1-sigmoid-squared")
    params, data = init_params(spec, 3), default_set(spec, 10, 3)
    steps = train(spec, params, data, TrainConfig(epochs=2), parallel=False)
    next(steps)
    assert launch._early is None and early.process.poll() is not None
    steps.close()


def test_an_early_helper_that_died_leaves_train_in_process(early):
    early.process.kill()
    early.process.wait()
    spec, config = preset("2-10-10-1-sigmoid-squared"), TrainConfig(lr=0.05, epochs=20)
    helped, with_helper = trained(spec, config, parallel=True)
    assert isinstance(with_helper.torch, LocalTorch)
    local, in_process = trained(spec, config, parallel=False)
    assert helped == local and same_engines(with_helper, in_process)

"""The training run in a child process (engine/train/child.py, client.py): the same records,
bit for bit, as the run in-process; pause, step, breakpoints and divergence as the window uses
them; and a child that dies, hangs or talks nonsense is a message, never a crash or a wait.

One child serves most tests (each imports torch, ~1.5 s); those that end a child start their
own, and check it is gone and reaped. Waits poll `receive` against a deadline, never sleep.
"""

import os
import select
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable

import numpy as np
import pytest

from engine.check.mistakes import inject
from engine.files.datasets import default_set
from engine.net.params import init_params
from engine.net.spec import DEFAULT_PRESET, preset
from engine.train.child import PREFIX, BrokenStream, FrameReader, encode
from engine.train.client import (
    Exited,
    Failed,
    Finished,
    Message,
    Paused,
    Ready,
    Records,
    Snapshot,
    StateAt,
    TrainingClient,
)
from engine.train.lockstep import TrainConfig
from engine.train.run import Breakpoints, TrainingRun

DEADLINE = 60.0     # s for anything a child does, torch's import included, on a loaded machine
DEFAULT = preset(DEFAULT_PRESET)
BCE = preset("2-2-1-tanh-bce")


def left_behind(pid: int) -> bool:
    """Whether our child `pid` is still there, running or a zombie nobody reaped."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            parent = f.read().rsplit(")", 1)[1].split()[1]
    except OSError:
        return False
    return int(parent) == os.getpid()


def running(pid: int) -> bool:
    """Whether process `pid` runs (whoever its parent; a zombie does not)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def until(client: TrainingClient, done: Callable[[Message], bool],
          deadline: float = DEADLINE) -> list[Message]:
    """Every message `client` receives until one for which `done` is true."""
    got: list[Message] = []
    end = time.monotonic() + deadline
    while not any(done(m) for m in got):
        assert time.monotonic() < end, f"nothing came that was awaited; last: {got[-3:]}"
        if client.fileno() >= 0:
            select.select([client.fileno()], [], [], 0.05)   # wakes as soon as it writes
        started = time.monotonic()
        got += client.receive()
        assert time.monotonic() - started < 0.5, "receive waited"
    return got


def of(kind: type) -> Callable[[Message], bool]:
    return lambda m: isinstance(m, kind)


def records(messages: list[Message]) -> list:
    return [r for m in messages if isinstance(m, Records) for r in m.records]


def same(a: dict, b: dict) -> bool:
    """Bit-identical parameter sets, dtype included."""
    return a.keys() == b.keys() and all(a[k].dtype == b[k].dtype and np.array_equal(a[k], b[k])
                                        for k in a)


@pytest.fixture(scope="module")
def threads_1():
    """The in-process reference runs torch with one thread, as the child does."""
    from engine.net.reference import set_torch_threads, torch_threads
    before = torch_threads()
    set_torch_threads(1)
    yield
    set_torch_threads(before)


@pytest.fixture(scope="module")
def child(threads_1):
    client = TrainingClient()
    yield client
    client.close()
    assert not left_behind(client.pid)


def begin(client: TrainingClient, spec, config: TrainConfig, n: int = 20,
          mistake: str | None = None, **options) -> TrainingRun:
    """Give `client` a new run; the same run in-process, to compare with."""
    params, data = init_params(spec, 1), default_set(spec, n, seed=1)
    client.begin(spec, params, data, config, mistake, parallel=False, **options)
    until(client, of(Ready))
    return TrainingRun(spec, params, data, config, parallel=False,
                       mistake=inject(spec, mistake) if mistake else None)


def finish(training: TrainingRun) -> list:
    steps = []
    while not training.done:
        steps.append(training.advance())
    return steps


# the wire
def test_frames_come_out_whole_however_the_bytes_are_cut():
    arrays = {"a": np.arange(6.0).reshape(2, 3), "b": np.float32([1.5, np.nan]),
              "c": np.int64([-1, 2**40]), "empty": np.zeros((0, 4))}
    data = encode({"kind": "x", "n": 1}, arrays) + encode({"kind": "y"})
    reader = FrameReader()
    frames = [f for i in range(len(data)) for f in reader.feed(data[i:i + 1])]
    assert [h for h, _ in frames] == [{"kind": "x", "n": 1}, {"kind": "y"}]
    for name, value in arrays.items():
        got = frames[0][1][name]
        assert got.dtype == value.dtype and got.shape == value.shape
        assert np.array_equal(got, value, equal_nan=True)
    assert reader.pending == 0


def frame(text: bytes, payload: bytes = b"") -> bytes:
    return PREFIX.pack(len(text), len(payload)) + text + payload


@pytest.mark.parametrize("data", [
    b"\xff" * 16,                                                  # a header of 4 GB
    frame(b"{oops"),                                                # not JSON
    frame(b"[]"),                                                   # not an object
    frame(b'{"kind": "x", "arrays": [["a", "<f8", [3]]]}', bytes(8)),   # 24 bytes in 8
    frame(b'{"kind": "x", "arrays": [["a", "<f8", [1]]]}', bytes(9)),   # one byte too many
    frame(b'{"kind": "x", "arrays": [["a", "<f8", -1]]}', bytes(8)),    # no shape
], ids=["huge", "not-json", "not-object", "short", "long", "shape"])
def test_a_frame_that_is_not_ours_breaks_the_stream(data):
    with pytest.raises(BrokenStream):
        FrameReader().feed(data)


def test_arrays_of_other_dtypes_or_pickles_never_travel():
    with pytest.raises(ValueError, match="do not travel"):
        encode({"kind": "x"}, {"a": np.array([object()])})
    text = b'{"kind": "x", "arrays": [["a", "|O", [1]]]}'
    with pytest.raises(BrokenStream, match="not an array of ours"):
        FrameReader().feed(frame(text, bytes(8)))


# the same numbers
@pytest.mark.parametrize("spec, config, mistake", [
    (DEFAULT, TrainConfig(lr=0.1, epochs=10), None),
    (DEFAULT, TrainConfig(lr=0.1, epochs=10, shuffle=True, seed=3), "dropped_factor_2"),
    (DEFAULT.with_options(dtype="float64"), TrainConfig(lr=0.1, epochs=10), "dropped_factor_2"),
    (BCE.with_options(dtype="float64"), TrainConfig(lr=0.3, epochs=20, batch_size=3,
                                                    shuffle=True), None),
    (BCE, TrainConfig(lr=0.3, epochs=20, batch_size=3), "accumulated_gradients"),
], ids=["default-f32", "default-f32-mistake", "default-f64-mistake", "bce-f64-batches",
        "bce-f32-accumulated"])
def test_the_child_gives_the_records_and_parameters_of_the_run_in_process(child, spec, config,
                                                                          mistake):
    expected_run = begin(child, spec, config, mistake=mistake, snapshot_every=16)
    child.run()
    got = until(child, of(Finished))
    expected = finish(expected_run)
    assert records(got) == expected          # every field, the floats bit for bit
    assert any(len(r.samples) < config.batch_size for r in expected) == (config.batch_size == 3)
    last = [m for m in got if isinstance(m, Snapshot)][-1]
    assert last.step == expected_run.total
    scratch, theirs = expected_run.lockstep.params()
    assert same(last.scratch, scratch) and same(last.torch, theirs)
    assert same(last.buffers, expected_run.lockstep.buffers())
    # time travel: the child's timeline replays any step exactly
    middle = expected_run.total // 2 + 1
    child.state_at(middle)
    state = next(m for m in until(child, of(StateAt)) if isinstance(m, StateAt))
    for ours, theirs in zip(state.state, expected_run.timeline.state_at(middle), strict=True):
        assert same(ours, theirs)


# commands
def test_step_run_pause_and_resume_go_on_from_where_the_run_was(child):
    expected_run = begin(child, DEFAULT, TrainConfig(lr=0.1, epochs=200), n=30)
    child.step()
    first = until(child, of(Paused))
    assert records(first)[-1].step == 1 and first[-1] == Paused(1, "steps")
    child.run(10)
    ten = until(child, of(Paused))
    assert [r.step for r in records(ten)] == list(range(2, 12))
    assert ten[-1] == Paused(11, "steps")
    child.resume()
    going = until(child, of(Records))
    child.pause()
    going += until(child, of(Paused))
    paused = going[-1]
    assert paused.reason == "interrupted"
    assert 11 < paused.step < expected_run.total, "the run must pause before its end"
    assert records(going)[-1].step == paused.step
    assert [m for m in going if isinstance(m, Snapshot)][-1].step == paused.step
    child.resume()
    rest = until(child, of(Finished))
    steps = records(first + ten + going + rest)
    assert steps == finish(expected_run)


def test_a_breakpoint_pauses_with_its_reason_and_new_ones_apply_mid_run(child):
    begin(child, DEFAULT, TrainConfig(lr=0.1, epochs=300), n=20, mistake="dropped_factor_2",
          breakpoints=Breakpoints(at_epoch_end=True))
    child.run()
    assert until(child, of(Paused))[-1] == Paused(20, "end of epoch 1 (step 20)")
    child.set_breakpoints(Breakpoints())
    child.run()
    until(child, of(Records))
    # while it runs: the loop goes on with the new breakpoints, without a pause between
    child.set_breakpoints(Breakpoints(grad_diff_above=1e-3))
    paused = until(child, of(Paused))[-1]
    assert "the gradients of" in paused.reason and "above the breakpoint's 0.001" in paused.reason
    assert paused.step < 300 * 20


def test_a_diverging_learning_rate_pauses_with_the_message_the_window_shows(child):
    begin(child, DEFAULT, TrainConfig(lr=1e3, epochs=20))
    child.run()
    got = until(child, of(Paused))
    broken = records(got)[-1]
    assert not broken.finite
    assert got[-1].reason.startswith(f"diverged at step {broken.step}: the loss is ")
    assert "try a smaller one, such as 100" in got[-1].reason


def test_a_breakpoint_sends_the_state_the_broken_step_began_from(child):
    training = begin(child, DEFAULT, TrainConfig(lr=1e3, epochs=20))
    child.run()
    got = until(child, of(Paused))
    broke = got[-1].step
    state = got[-2]
    assert isinstance(state, StateAt) and state.step == broke - 1
    while training.step < broke - 1:
        training.advance()
    scratch, theirs = training.lockstep.params()
    assert same(state.scratch, scratch) and same(state.torch, theirs)
    assert all(np.all(np.isfinite(v)) for v in state.scratch.values())


def test_a_dropped_run_ends_and_the_child_takes_the_next(child):
    begin(child, DEFAULT, TrainConfig(lr=0.1, epochs=2))
    child.drop()
    child.run()
    failed = until(child, of(Failed))[-1]
    assert failed.command == "run" and "no run has started" in failed.message
    begin(child, DEFAULT, TrainConfig(lr=0.1, epochs=1))
    child.run()
    assert until(child, of(Finished))[-1] == Finished(20)


def test_the_learning_rate_changes_before_the_first_step_only(child):
    begin(child, DEFAULT, TrainConfig(lr=1e3, epochs=2))
    child.set_lr(0.05)
    child.run()
    got = until(child, of(Finished))
    expected = finish(TrainingRun(DEFAULT, init_params(DEFAULT, 1), default_set(DEFAULT, 20, 1),
                                  TrainConfig(lr=0.05, epochs=2), parallel=False))
    assert records(got) == expected
    child.set_lr(0.1)
    failed = until(child, of(Failed))[-1]
    assert failed.user and "only before its first step" in failed.message
    child.send({"cmd": "dance"})
    failed = until(child, of(Failed))[-1]
    assert not failed.user and "unknown command 'dance'" in failed.message
    assert child.alive


def test_a_mistake_the_network_cannot_make_is_a_message_for_the_user(child):
    child.begin(BCE, init_params(BCE, 1), default_set(BCE, 20, 1), TrainConfig(),
                "dropped_factor_2")
    failed = until(child, of(Failed))[-1]
    assert failed.user and failed.command == "start"
    assert "dropped_factor_2 cannot be made in this network" in failed.message
    assert child.alive


# a child that goes wrong
def started(**options) -> TrainingClient:
    client = TrainingClient.start(DEFAULT, init_params(DEFAULT, 1), default_set(DEFAULT, 30, 1),
                                  TrainConfig(lr=0.1, epochs=100_000), parallel=False,
                                  **options)
    until(client, of(Ready))
    return client


def test_a_killed_child_is_a_message_and_the_records_before_it_stay():
    client = started()
    try:
        client.run()
        got = until(client, lambda m: isinstance(m, Records) and m.records[-1].step > 100)
        os.kill(client.pid, signal.SIGKILL)
        got += until(client, of(Exited))
        exited = got[-1]
        assert exited.message == ("the training process stopped: it was killed by signal 9 "
                                  "(SIGKILL)")
        assert exited.code == -signal.SIGKILL and not exited.expected
        steps = [r.step for r in records(got)]
        assert steps == list(range(1, len(steps) + 1))
        assert not client.alive and client.exit_reason == exited.message
        client.pause()                  # to a dead child: dropped, no error
        assert client.receive() == [] and client.receive() == []
        assert not left_behind(client.pid)
    finally:
        client.close()


def test_a_hung_child_is_ended_and_reported():
    client = started(silence=0.5)
    try:
        client.run()
        until(client, of(Records))
        os.kill(client.pid, signal.SIGSTOP)
        exited = until(client, of(Exited), deadline=10)[-1]
        assert exited.message == ("the training process stopped: it stopped answering "
                                  "(no word in 0.5 s) and was ended")
    finally:
        client.close()
    assert not left_behind(client.pid)


def test_stop_ends_the_child_and_close_leaves_none_behind():
    client = started()
    client.run()
    until(client, of(Records))
    client.stop()
    exited = until(client, of(Exited))[-1]
    assert exited.expected and exited.code == 0
    client.close()
    assert not left_behind(client.pid)
    # closed while it still imports torch: gone as well, and no zombie
    early = TrainingClient()
    early.close()
    assert not left_behind(early.pid)


def test_the_child_runs_below_the_window_in_its_session_but_not_its_process_group():
    """Where the kernel shares the cores between sessions first (Linux's autogroup), a child
    in a session of its own would get as much as the window whatever its nice value, and the
    window's event loop waited for a core (paints took twice their CPU time); in a process
    group of its own, Ctrl-C at the terminal still goes to the window alone."""
    client = TrainingClient(nice=5)
    try:
        assert os.getsid(client.pid) == os.getsid(0)
        assert os.getpgid(client.pid) == client.pid != os.getpgid(0)
        ours = os.getpriority(os.PRIO_PROCESS, 0)
        assert os.getpriority(os.PRIO_PROCESS, client.pid) == min(ours + 5, 19)
    finally:
        client.close()


def test_the_child_ends_when_its_parent_is_killed():
    script = textwrap.dedent("""
        import sys, time
        from engine.files.datasets import default_set
        from engine.net.params import init_params
        from engine.net.spec import DEFAULT_PRESET, preset
        from engine.train.client import Ready, TrainingClient
        from engine.train.lockstep import TrainConfig
        spec = preset(DEFAULT_PRESET)
        client = TrainingClient.start(spec, init_params(spec), default_set(spec, 30),
                                      TrainConfig(epochs=100_000), parallel=False)
        while not any(isinstance(m, Ready) for m in client.receive()):
            time.sleep(0.01)
        client.run()
        print(client.pid, flush=True)
        sys.stdin.read()
    """)
    parent = subprocess.Popen([sys.executable, "-c", script], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    try:
        pid = int(parent.stdout.readline())
        assert running(pid)
        parent.kill()
        parent.wait()
        end = time.monotonic() + DEADLINE
        while running(pid):
            assert time.monotonic() < end, "the child outlived its parent"
            time.sleep(0.01)
    finally:
        parent.kill()
        parent.wait()


FAKE = textwrap.dedent("""
    import os, sys
    fd_in, fd_out = int(sys.argv[-2]), int(sys.argv[-1])
    os.write(fd_out, bytes.fromhex(sys.argv[1]))
    while os.read(fd_in, 65536):
        pass
""")
READY = encode({"kind": "ready", "total": 1, "step": 0,
                "columns": ["step", "epoch", "epoch_end", "loss_scratch", "loss_torch", "drift",
                            "grad_diff.w1", "grad_diff.b1", "grad_diff.w2", "grad_diff.b2",
                            "grad_diff.w3", "grad_diff.b3", "sample.0"]})


@pytest.mark.parametrize("sent, expected", [
    (b"\xff" * 16, "a frame of"),
    (frame(b"{oops"), "the header is not JSON"),
    (encode({"kind": "records"}, {"rows": np.zeros((1, 13))}), "before any run was ready"),
    (READY + encode({"kind": "nonsense"}), "an unknown kind of message, 'nonsense'"),
    (READY + encode({"kind": "records"}, {"rows": np.zeros((1, 3))}), "records of shape (1, 3)"),
    (READY + encode({"kind": "paused", "step": 1}), "a 'paused' message without"),
], ids=["huge", "not-json", "early", "unknown", "width", "incomplete"])
def test_a_malformed_message_from_the_child_is_an_error_message(sent, expected):
    client = TrainingClient.start(DEFAULT, init_params(DEFAULT, 1),
                                  default_set(DEFAULT, 30, 1), TrainConfig(),
                                  command=[sys.executable, "-c", FAKE, sent.hex()])
    try:
        got = until(client, of(Exited), deadline=20)
        assert got[:-1] == ([Ready(1, 0)] if sent.startswith(READY) else [])
        assert got[-1].message.startswith("the training process stopped: it sent a malformed "
                                          "message (")
        assert expected in got[-1].message
        assert client.receive() == []
    finally:
        client.close()
    assert not left_behind(client.pid)

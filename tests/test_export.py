"""Export in-process: the files, their agreement with the engines, cancel and atomic writes."""

import numpy as np
import pytest

from engine.export import ExportCancelled, export, gradient_sets
from engine.files.datasets import default_set
from engine.files.readers import read_gradients
from engine.net.params import init_params
from engine.net.reference import TorchNet
from engine.net.scratch import ScratchNet
from engine.net.spec import DEFAULT_PRESET, preset

SPEC = preset(DEFAULT_PRESET)


def test_files_hold_each_engines_per_sample_gradients(tmp_path):
    params, data = init_params(SPEC, 3), default_set(SPEC, 12, seed=3)
    export(tmp_path, SPEC, params, data)
    _, ours = ScratchNet(SPEC, params).per_sample_gradients(data.x, data.y)
    _, theirs = TorchNet(SPEC, params).per_sample_gradients(data.x, data.y)
    mine = read_gradients(tmp_path / "my_autograd.dat")
    torch_file = read_gradients(tmp_path / "torch_autograd.dat")
    assert mine.engine.startswith("scratch") and torch_file.engine.startswith("torch")
    for name in SPEC.param_names:
        np.testing.assert_array_equal(mine.stacked(name), ours[name])
        np.testing.assert_array_equal(torch_file.stacked(name), theirs[name])
    np.testing.assert_array_equal(mine.x, data.x)


def test_in_out_layout_writes_transposed_weights(tmp_path):
    spec = SPEC.with_options(layout="in_out")
    torch_set, _ = gradient_sets(spec, init_params(spec), default_set(spec, 3))
    assert torch_set.samples[0]["w1"].shape == (2, 10) and torch_set.layout == "in_out"


def test_cancel_writes_nothing(tmp_path):
    calls = []

    def cancel(done, total):
        calls.append((done, total))
        return done >= 50

    with pytest.raises(ExportCancelled):
        export(tmp_path / "out", SPEC, init_params(SPEC), default_set(SPEC, 200), lr=0.1,
               progress=cancel)
    assert calls[0] == (50, 200)
    assert not (tmp_path / "out").exists()


def test_progress_reaches_the_total(tmp_path):
    seen = []
    export(tmp_path, SPEC, init_params(SPEC), default_set(SPEC, 120), lr=0.1,
           progress=lambda done, total: seen.append((done, total)))
    assert seen[-1] == (120, 120) and seen == sorted(seen)


def test_an_interrupted_write_keeps_the_old_files(tmp_path, monkeypatch):
    export(tmp_path, SPEC, init_params(SPEC, 1), default_set(SPEC, 5))
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}

    def broken(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr("os.replace", broken)
    with pytest.raises(OSError):
        export(tmp_path, SPEC, init_params(SPEC, 2), default_set(SPEC, 5))
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before

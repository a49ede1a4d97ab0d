"""Model files: round trip in both layouts, and every error a user's file can hold."""

import json
import re

import numpy as np
import pytest

from engine.errors import SpecError
from engine.files.model_file import model_to_dict, read_model, write_model
from engine.net.params import init_params
from engine.net.spec import DEFAULT_PRESET, preset


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("layout", ["out_in", "in_out"])
def test_round_trip_is_exact(tmp_path, layout, dtype):
    spec = preset(DEFAULT_PRESET).with_options(layout=layout, dtype=dtype)
    params = init_params(spec, 4)
    path = tmp_path / "model.json"
    write_model(path, spec, params)
    model = read_model(path)
    assert model.spec == spec
    run_spec, run_params = model.run()
    assert run_spec == spec
    for name in spec.param_names:
        assert run_params[name].dtype == spec.np_dtype
        np.testing.assert_array_equal(run_params[name], params[name])
    stored = json.loads(path.read_text())
    assert stored["layout"] == layout
    assert np.shape(stored["params"]["w1"]) == spec.param_shape("w1")


def test_without_params_the_seed_initialises(tmp_path):
    path = tmp_path / "m.json"
    path.write_text('{"sizes": [2, 3, 1], "activations": ["tanh", "identity"], "loss": "mse"}')
    a, b = read_model(path, seed=1), read_model(path, seed=1)
    assert np.array_equal(a.params["w1"], b.params["w1"])
    assert not np.array_equal(a.params["w1"], read_model(path, seed=2).params["w1"])


def test_the_seeds_in_out_layout_is_read_as_such(tmp_path):
    spec = preset("2-2-1-tanh-bce")
    content = model_to_dict(spec.with_options(layout="in_out"), init_params(spec))
    content["params"]["b1"] = [content["params"]["b1"]]  # (1, out) as the seeds print biases
    path = tmp_path / "m.json"
    path.write_text(json.dumps(content))
    model = read_model(path)
    np.testing.assert_array_equal(model.run()[1]["w1"], init_params(spec)["w1"])


BAD = [
    (b"", "not valid JSON \\(line 1, column 1"),
    (b"{'sizes': [2, 1]}", "not valid JSON"),
    (b"\xff\xfe\x00junk", "not a text file"),
    (b"[1, 2]", "a model file must hold one JSON object"),
    (b'{"sizes": [2, 1], "activations": ["relu"], "loss": "mse", "lr": 1}',
     "unknown key\\(s\\) 'lr'; valid: sizes, activations, loss, dtype, layout, params"),
    (b'{"sizes": [2, 1], "activations": ["relu"]}', "the network has no 'loss'"),
    (b'{"sizes": [2, 3, 1], "activations": ["relu"], "loss": "mse"}',
     "make 2 layer\\(s\\), so they need 2 activation\\(s\\)"),
    (b'{"sizes": [2, 1], "activations": ["gelu"], "loss": "mse"}', "unknown activation 'gelu'"),
    (b'{"sizes": [2, 1], "activations": ["relu"], "loss": "mse", "params": {"w1": [[1, 2]]}}',
     "missing b1"),
    (b'{"sizes": [2, 1], "activations": ["relu"], "loss": "mse",'
     b' "params": {"w1": [[1, 2, 3]], "b1": [0]}}', "params.w1 has shape \\(1, 3\\)"),
    (b'{"sizes": [2, 1], "activations": ["relu"], "loss": "mse",'
     b' "params": {"w1": [[NaN, 2]], "b1": [0]}}', "NaN is not a number a model may hold"),
    (b'{"sizes": [2, 1], "activations": ["relu"], "loss": "mse", "params": [1]}',
     "'params' must be an object"),
    (b"[" * 100000 + b"]" * 100000, "nested too deeply|must hold one JSON object"),
]


@pytest.mark.parametrize(("content", "message"), BAD)
def test_bad_model_files_name_the_file_and_the_problem(tmp_path, content, message):
    path = tmp_path / "bad.json"
    path.write_bytes(content)
    with pytest.raises(SpecError, match=f"^{re.escape(str(path))}: .*({message})"):
        read_model(path)


def test_missing_file(tmp_path):
    with pytest.raises(SpecError, match="cannot read it"):
        read_model(tmp_path / "none.json")


def test_write_is_atomic_and_keeps_the_old_file_on_failure(tmp_path, monkeypatch):
    spec = preset(DEFAULT_PRESET)
    path = tmp_path / "model.json"
    write_model(path, spec, init_params(spec, 1))
    before = path.read_bytes()

    def broken(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr("os.replace", broken)
    with pytest.raises(OSError, match="disk full"):
        write_model(path, spec, init_params(spec, 2))
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["model.json"]

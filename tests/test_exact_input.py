"""The numbers a user gives (a model file's parameters, a CSV's samples) are read at float64 and
converted once, to the dtype the run computes in: never rounded through float32 on the way."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from engine.autosave import SessionFolder, Snapshot, read_autosave
from engine.files.datasets import load_csv
from engine.files.model_file import read_model
from engine.net.spec import DEFAULT_PRESET, preset
from engine.session import Session

ROOT = Path(__file__).resolve().parent.parent

# Matt Mazur, "A Step by Step Backpropagation Example" (mattmazur.com, 2015-03-17): a 2-2-2
# network with sigmoid in both layers, E = Σ ½(target - out)², one sample, learning rate 0.5.
MAZUR_MODEL = {
    "sizes": [2, 2, 2], "activations": ["sigmoid", "sigmoid"], "loss": "half_squared_error",
    "params": {"w1": [[0.15, 0.20], [0.25, 0.30]], "b1": [0.35, 0.35],
               "w2": [[0.40, 0.45], [0.50, 0.55]], "b2": [0.60, 0.60]}}
MAZUR_DATA = "i1,i2,o1,o2\n0.05,0.10,0.01,0.99\n"
MAZUR_TOTAL_ERROR = 0.298371109          # "E_total = 0.274811083 + 0.023560026 = 0.298371109"
# the updated weights as printed there, engine layout (out, in): w1..w4, then w5..w8
MAZUR_UPDATED = {"w1": [["0.149780716", "0.19956143"], ["0.24975114", "0.29950229"]],
                 "w2": [["0.35891648", "0.408666186"], ["0.511301270", "0.561370121"]]}


def app(*args: object, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(ROOT / "app.py"), *map(str, args)], cwd=cwd,
                          capture_output=True, text=True, timeout=120)


def decimal_model(dtype: str | None) -> dict:
    """The default network with decimal parameters of many digits, dtype stated or not."""
    spec = preset(DEFAULT_PRESET)
    rng = np.random.default_rng(7)
    params = {name: np.round(rng.uniform(-0.9, 0.9, spec.param_shape(name)), 14).tolist()
              for name in spec.param_names}
    content = {**spec.to_dict(), "params": params}
    del content["dtype"]
    return content if dtype is None else {**content, "dtype": dtype}


@pytest.fixture
def models(tmp_path) -> tuple[Path, Path]:
    """The same decimal model twice: without "dtype", and saying "dtype": "float64"."""
    paths = tmp_path / "unstated.json", tmp_path / "float64.json"
    for path, dtype in zip(paths, (None, "float64"), strict=True):
        path.write_text(json.dumps(decimal_model(dtype)))
    return paths


def test_a_model_files_decimals_are_kept_at_float64(models):
    spec, params = read_model(models[0]).run("float64")
    assert spec.dtype == "float64"
    given = decimal_model(None)["params"]
    for name in spec.param_names:
        assert params[name].dtype == np.float64
        np.testing.assert_array_equal(params[name], np.array(given[name]))
    assert read_model(models[0]).run("float64")[1]["w1"][0, 0] != \
        np.float64(np.float32(given["w1"][0][0]))


def test_float32_runs_convert_the_given_numbers_once(models):
    _, params = read_model(models[0]).run()
    given = decimal_model(None)["params"]
    for name, value in params.items():
        assert value.dtype == np.float32
        np.testing.assert_array_equal(value, np.array(given[name], dtype=np.float32))


def test_export_of_an_unstated_model_at_float64_is_bit_identical(models, tmp_path):
    outs = []
    for i, model in enumerate(models):
        out = tmp_path / f"out{i}"
        result = app("export", out, "--model", model, "--dtype", "float64", "--samples", "20")
        assert result.returncode == 0, result.stderr
        outs.append(out)
    for name in ("torch_autograd.dat", "my_autograd.dat", "model.json", "data.csv"):
        assert (outs[0] / name).read_bytes() == (outs[1] / name).read_bytes(), name
    # the model written back holds the user's own decimals
    written = json.loads((outs[0] / "model.json").read_text())["params"]
    assert written == decimal_model(None)["params"]


def test_train_of_an_unstated_model_at_float64_is_bit_identical(models, tmp_path):
    results = []
    for i, model in enumerate(models):
        saved = tmp_path / f"saved{i}.json"
        result = app("train", "--model", model, "--dtype", "float64", "--samples", "20",
                     "--epochs", "2", "--json", "--save-model", saved)
        assert result.returncode == 0, result.stderr
        results.append((result.stdout, saved.read_bytes()))
    assert results[0] == results[1]


def test_compare_with_an_unstated_model_is_bit_identical(models, tmp_path):
    out = tmp_path / "files"
    assert app("export", out, "--model", models[1], "--samples", "20", "--inject",
               "dropped_factor_2").returncode == 0
    (out / "model.json").unlink()   # only --model says what the network is
    outputs = []
    for model in models:
        result = app("compare", out / "torch_autograd.dat", out / "my_autograd.dat", "--model",
                     model, "--data", out / "data.csv", "--json")
        assert result.returncode == 1, result.stderr
        outputs.append(json.loads(result.stdout))
    assert outputs[0] == outputs[1]
    assert outputs[0]["reproduced_by"] == "dropped_factor_2"


def test_a_published_worked_example_is_reproduced_to_1e_9(tmp_path):
    model, data, saved = tmp_path / "mazur.json", tmp_path / "mazur.csv", tmp_path / "after.json"
    model.write_text(json.dumps(MAZUR_MODEL))
    data.write_text(MAZUR_DATA)
    result = app("train", "--model", model, "--data", data, "--dtype", "float64", "--epochs",
                 "1", "--lr", "0.5", "--json", "--save-model", saved)
    assert result.returncode == 0, result.stderr
    loss = json.loads(result.stdout)["loss_scratch"][0]
    assert abs(loss - MAZUR_TOTAL_ERROR) < 1e-9
    after = json.loads(saved.read_text())["params"]
    for name, rows in MAZUR_UPDATED.items():
        for i, row in enumerate(rows):
            for j, printed in enumerate(row):
                # within half a unit of the printed last digit, and 1e-9 where 9 are printed
                places = len(printed.split(".")[1])
                bound = 1e-9 if places >= 9 else 0.5 * 10.0 ** -places
                assert abs(after[name][i][j] - float(printed)) <= bound, (name, i, j)


def test_csv_numbers_are_kept_for_a_later_float64_run(tmp_path):
    path = tmp_path / "data.csv"
    path.write_text("x1,x2,y\n0.15,0.2,0.1234567890123\n0.3,0.7,0.9876543210987\n")
    spec32 = preset(DEFAULT_PRESET)
    data = load_csv(path, spec32)
    assert data.x.dtype == np.float32
    session = Session(spec32, data=data)
    session.set_network(spec32.with_options(dtype="float64"))
    np.testing.assert_array_equal(session.data.x, [[0.15, 0.2], [0.3, 0.7]])
    np.testing.assert_array_equal(session.data.y, [[0.1234567890123], [0.9876543210987]])
    direct = load_csv(path, spec32.with_options(dtype="float64"))
    np.testing.assert_array_equal(session.data.x, direct.x)


def test_an_autosave_keeps_the_given_numbers(tmp_path):
    path = tmp_path / "data.csv"
    path.write_text("x1,x2,y\n0.15,0.2,0.1234567890123\n")
    spec32 = preset(DEFAULT_PRESET)
    session = Session(spec32, data=load_csv(path, spec32))
    folder = SessionFolder.create(tmp_path / "autosave")
    try:
        folder.write(Snapshot.of(session))
        restored = read_autosave(folder.path)
    finally:
        folder.remove()
    assert restored.data.x.dtype == np.float32
    np.testing.assert_array_equal(restored.data.x, session.data.x)
    np.testing.assert_array_equal(restored.data.as_dtype(np.float64).y, [[0.1234567890123]])

"""compare grades by what rounding explains when the run behind the files is known: a correct
float32 export of every preset agrees, exact to float32; every catalogued mistake is still named
where it departs; an explicit tolerance is honoured as given."""

import json
from dataclasses import replace

import numpy as np
import pytest

from engine.check.mistakes import injections
from engine.check.report import compare_files
from engine.check.rounding import WITHIN, rounding_bounds, unit_roundoff
from engine.export import SCRATCH_FILE, TORCH_FILE, export
from engine.files.datasets import default_set
from engine.files.gradfile import write_gradients
from engine.files.readers import read_gradients
from engine.net.params import init_params
from engine.net.spec import PRESETS
from tests.test_cli import app

# a preset whose output gradient nearly cancels where ŷ ≈ y (b3 = 2(ŷ - y))
CANCELLING = "2-10-5-1-sigmoid-squared"


def exported(folder, name: str, dtype: str = "float32", mistake=None):
    spec = PRESETS[name].with_options(dtype=dtype)
    export(folder, spec, init_params(spec), default_set(spec), mistake=mistake)
    return folder / TORCH_FILE, folder / SCRATCH_FILE


def parted_by_rounding(folder):
    """Correct float32 files of CANCELLING that part beyond rtol 1e-5 but within float32
    rounding: how far two correct passes part depends on the CPU's kernels (on some they part
    by 1.2e-5 at b3, on others by less), so the scratch file is torch's with b3 moved by half
    what rounding allows at the sample where that is largest relative to the value."""
    spec = PRESETS[CANCELLING].with_options(dtype="float32")
    params, data = init_params(spec), default_set(spec)
    a, b = exported(folder, CANCELLING)
    right, bounds = rounding_bounds(spec, params, data.x, data.y)
    half = WITHIN * unit_roundoff(np.float32) * bounds["dL/db3"][:, 0]
    k = int(np.argmax(half / np.abs(right["dL/db3"][:, 0])))
    theirs = read_gradients(a)
    samples = [{name: np.array(value, np.float64) for name, value in s.items()}
               for s in theirs.samples]
    value = samples[k]["b3"]
    assert half[k] > 1e-4 * np.abs(value).max()     # far beyond rtol 1e-5, within rounding
    value += half[k]
    write_gradients(b, replace(theirs, samples=samples, dtype="float32", source=str(b)))
    return a, b


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("name", list(PRESETS))
def test_a_correct_export_of_every_preset_agrees(tmp_path, name, dtype):
    report = compare_files(*exported(tmp_path, name, dtype)).report
    assert report.agree, report.diagnosis
    assert report.first_disagreement is None and report.reproduced_by is None


def test_rounding_through_a_cancellation_is_exact_to_float32(tmp_path):
    a, b = parted_by_rounding(tmp_path)
    result = app("compare", a, b, "--json")
    assert result.returncode == 0, result.stdout
    out = json.loads(result.stdout)
    assert out["agree"] and out["exact_to"] == "float32"
    assert out["params"]["b3"]["within_rounding"] and out["params"]["b3"]["max_rel_diff"] > 1e-5
    assert "within float32 rounding" in out["diagnosis"][0]
    text = app("compare", a, b).stdout
    assert "Verdict: the files agree, exact to float32" in text
    assert "agree (rounding)" in text


def test_an_explicit_tolerance_is_honoured_as_given(tmp_path):
    a, b = parted_by_rounding(tmp_path)
    result = app("compare", a, b, "--rtol", "1e-5", "--json")
    assert result.returncode == 1
    out = json.loads(result.stdout)
    assert out["exact_to"] is None and out["first_disagreement"] == "b3"


def test_without_the_run_the_rounding_is_only_described(tmp_path):
    a, b = parted_by_rounding(tmp_path)
    (tmp_path / "model.json").unlink()
    report = compare_files(a, b).report
    assert not report.agree and report.exact_to is None
    assert any("rounding level" in s for s in report.diagnosis)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("name", list(PRESETS))
def test_every_mistake_is_still_named(tmp_path, name, dtype):
    spec = PRESETS[name].with_options(dtype=dtype)
    for i, injection in enumerate(injections(spec)):
        if injection.mistake.needs_updates:
            continue
        folder = tmp_path / str(i)
        report = compare_files(*exported(folder, name, dtype, injection)).report
        assert not report.agree, injection.label
        assert report.exact_to is None
        assert report.reproduced_by is not None, injection.label

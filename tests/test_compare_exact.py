"""Exact numbers in `compare`: values are compared as read, in float64; what a file is (its
dtype, or the digits a printout shows) chooses the default tolerances and caps the digits
column, and never rounds a value. The foreign files are printed here as people's code prints
gradients ("w1 = [[...]]", no header, no model.json beside them)."""

import subprocess
import sys
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from engine.check.report import compare_files
from engine.export import Exported, export
from engine.files.datasets import default_set
from engine.files.gradfile import write_gradients
from engine.files.gradset import GradientSet
from engine.net.params import init_params
from engine.net.spec import DEFAULT_PRESET, preset

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = 20


def exported(folder: Path, dtype: str) -> Exported:
    """Our export (torch_autograd.dat, my_autograd.dat, model.json, data.csv) in `dtype`."""
    spec = preset(DEFAULT_PRESET).with_options(dtype=dtype)
    return export(folder, spec, init_params(spec, seed=3), default_set(spec, n=SAMPLES))


def printout(samples: list[dict[str, np.ndarray]], number: Callable[[float], str]) -> str:
    """Sample after sample, "w1 = [[...], ...]" per parameter, each value as `number` prints
    it: a name seen again starts the next sample."""
    def nested(values: np.ndarray) -> str:
        if values.ndim == 1:
            return "[" + ", ".join(number(float(v)) for v in values) + "]"
        return "[" + ",\n      ".join(nested(row) for row in values) + "]"

    return "".join(f"{name} = {nested(np.asarray(values))}\n"
                   for sample in samples for name, values in sample.items())


def samples_of(gs: GradientSet) -> list[dict[str, np.ndarray]]:
    return [{name: np.array(s[name]) for name in gs.names} for s in gs.samples]


def write(folder: Path, name: str, text: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(text)
    return path


def astride_a_float32_midpoint(v: float) -> float:
    """A float64 value near `v` whose 12-digit printout lies on the other side of the midpoint
    between two float32 numbers: rounded to float32, the value and its printout part by a
    float32 step (6e-8 relative), where as read they are 5e-12 apart. One value in some
    tens of thousands of a 12-digit printout falls there; this one is put there."""
    low = float(np.float32(v))
    high = float(np.nextafter(np.float32(v), np.float32(np.inf)))
    middle = (low + high) / 2
    printed = float(twelve_digits(middle))
    assert printed != middle
    return float(np.nextafter(middle, -np.inf if printed > middle else np.inf))


def twelve_digits(v: float) -> str:
    return f"{v:.12g}"


def four_digits(v: float) -> str:
    return f"{v:.4g}"


@pytest.fixture(scope="module")
def float64_export(tmp_path_factory) -> Exported:
    return exported(tmp_path_factory.mktemp("ours64"), "float64")


@pytest.fixture(scope="module")
def float32_export(tmp_path_factory) -> Exported:
    return exported(tmp_path_factory.mktemp("ours32"), "float32")


def app(*args: object) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(ROOT / "app.py"), *map(str, args)],
                          capture_output=True, text=True, timeout=120, cwd=ROOT)


def test_a_twelve_digit_printout_agrees_with_our_float64_export_at_1e_9(float64_export,
                                                                        tmp_path):
    samples = samples_of(float64_export.torch)
    samples[0]["b3"][0] = astride_a_float32_midpoint(samples[0]["b3"][0])
    ours = tmp_path / "ours" / "torch_autograd.dat"
    ours.parent.mkdir()
    write_gradients(ours, replace(float64_export.torch, samples=samples))
    theirs = write(tmp_path / "theirs", "grads.txt", printout(samples, twelve_digits))
    report = compare_files(ours, theirs, rtol=1e-9).report
    # rounded to float32 first, b3 was 1e-7 apart (one float32 step); as read, 12 digits
    # hold 5e-12
    assert report.agree, report.params
    assert max(p.max_rel_diff for p in report.params.values()) < 1e-11
    assert all(p.digits <= 12 for p in report.params.values())
    # by default too: a 12-digit printout of float64 values is held to float64's tolerances
    default = compare_files(ours, theirs).report
    assert default.agree and (default.rtol, default.atol) == (1e-9, 1e-12)
    result = app("compare", ours, theirs, "--rtol", "1e-9")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Verdict: the files agree" in result.stdout


def test_a_difference_below_float32_resolution_is_reported(float64_export, tmp_path):
    samples = samples_of(float64_export.torch)
    samples[0]["w2"][3, 4] *= 1 + 1e-9
    theirs = write(tmp_path / "theirs", "grads.txt", printout(samples, twelve_digits))
    report = compare_files(float64_export.files[0], theirs).report
    w2 = report.params["w2"]
    assert w2.max_abs_diff > 0 and w2.worst == (1, 3, 4)
    assert 5e-10 < w2.max_rel_diff < 2e-9
    assert all(p.max_rel_diff < 1e-11 for name, p in report.params.items() if name != "w2")
    tight = compare_files(float64_export.files[0], theirs, rtol=1e-10, atol=0).report
    assert not tight.agree and tight.first_disagreement == "w2"


def test_a_four_digit_printout_of_float32_gradients_agrees_by_default(float32_export,
                                                                      tmp_path):
    theirs = write(tmp_path / "theirs", "grads.txt",
                   printout(samples_of(float32_export.torch), four_digits))
    report = compare_files(float32_export.files[0], theirs).report
    assert report.agree, report.params
    assert report.rtol == pytest.approx(1e-3) and report.atol == 1e-8
    assert all(p.digits <= 4 for p in report.params.values())
    assert f"{theirs} prints 4 significant digits: it cannot agree closer than 1e-03" in (
        report.notes)
    assert any(f"what {theirs} holds, the coarser of the two files" in n for n in report.notes)


def test_an_explicit_tight_rtol_is_honoured_against_a_four_digit_printout(float32_export,
                                                                          tmp_path):
    theirs = write(tmp_path / "theirs", "grads.txt",
                   printout(samples_of(float32_export.torch), four_digits))
    report = compare_files(float32_export.files[0], theirs, rtol=1e-5).report
    assert not report.agree and report.rtol == 1e-5
    assert (f"{theirs} prints 4 significant digits: agreement closer than 1e-03 is beyond "
            "what it holds") in report.notes
    result = app("compare", float32_export.files[0], theirs, "--rtol", "1e-5")
    assert result.returncode == 1, result.stdout + result.stderr
    assert "beyond what it holds" in result.stdout


def test_a_tolist_printout_of_float32_values_counts_as_float32(float64_export, tmp_path):
    """torch's .tolist() of a float32 tensor prints 17 digits, of float32 values: against our
    float64 export they part by float32's rounding, which float32's tolerances allow."""
    samples = [{name: torch.tensor(v, dtype=torch.float32).tolist() for name, v in s.items()}
               for s in samples_of(float64_export.torch)]
    text = "".join(f"{name} = {values}\n" for s in samples for name, values in s.items())
    theirs = write(tmp_path / "theirs", "grads.txt", text)
    report = compare_files(float64_export.files[0], theirs).report
    assert report.agree and (report.rtol, report.atol) == (1e-5, 1e-8)
    assert all(p.digits <= 7.3 for p in report.params.values())
    assert any(n.startswith(f"{theirs} prints 17 significant digits, every one of them a "
                            "float32 value") for n in report.notes)
    # held to float64's tolerances, float32's rounding would show
    assert not compare_files(float64_export.files[0], theirs, rtol=1e-9, atol=1e-12).report.agree


def test_the_notes_name_the_digits_of_each_text_file(float64_export, tmp_path):
    samples = samples_of(float64_export.torch)
    fine = write(tmp_path / "a", "fine.txt", printout(samples, twelve_digits))
    coarse = write(tmp_path / "b", "coarse.txt", printout(samples, four_digits))
    notes = compare_files(fine, coarse).report.notes
    assert sum(n.startswith(f"{fine} prints 12 significant digits") for n in notes) == 1
    assert sum(n.startswith(f"{coarse} prints 4 significant digits") for n in notes) == 1
    assert "default rtol 0.001 and atol 1e-08: what " f"{coarse} holds, the coarser of the two " \
           "files" in notes
    # our own files state their dtype and lose nothing: nothing to measure, nothing to say
    ours = compare_files(float64_export.files[0], fine).report.notes
    assert not any("significant digits" in n and str(float64_export.files[0]) in n
                   for n in ours)


def test_only_the_gradients_digits_count(float32_export, tmp_path):
    """Inputs printed in full beside 4-digit gradients do not make the printout finer."""
    x = float32_export.torch.x
    text = "".join(f"x = [{', '.join(repr(float(v)) for v in x[k])}]\n"
                   + printout([s], four_digits)
                   for k, s in enumerate(samples_of(float32_export.torch)))
    theirs = write(tmp_path / "theirs", "grads.txt", text)
    report = compare_files(float32_export.files[0], theirs).report
    assert report.agree and report.rtol == pytest.approx(1e-3)
    assert any(n.startswith(f"{theirs} prints 4 significant digits") for n in report.notes)

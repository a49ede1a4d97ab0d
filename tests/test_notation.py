"""No formula reaches a reader as markup: the mistakes' texts, the notes of files written by
older versions, and what `app.py compare` prints for a disagreeing pair read as Unicode."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from engine.check.mistakes import MISTAKES, inject
from engine.check.notation import raw_markup, unicode_notation
from engine.net.spec import DEFAULT_PRESET, preset
from engine.net.stages import stage_plan

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize(("written", "read"), [
    ("δ_l = w_{l+1}ᵀ·δ_{l+1}, the factor f'(z_l) left out",
     "δₗ = wₗ₊₁ᵀ·δₗ₊₁, the factor f'(zₗ) left out"),
    ("∂L/∂y_{l-1} = w_l·δ_l where w_l^{T}·δ_l is right", "∂L/∂yₗ₋₁ = wₗ·δₗ where wₗᵀ·δₗ is right"),
    ("x^2 and n_{l-1}", "x² and nₗ₋₁"),
    # names and groups without a Unicode form stay as written
    ("my_autograd.dat, dL_dw1, dropped_factor_2, x_{foo}", "my_autograd.dat, dL_dw1, "
     "dropped_factor_2, x_{foo}"),
])
def test_markup_becomes_unicode_and_names_stay(written, read):
    assert unicode_notation(written) == read


def test_raw_markup_is_found_and_names_are_not():
    assert raw_markup("δ_l = w_{l+1}") == ["δ_l", "_{"]
    assert raw_markup("y_(l-1), Σ_units, a <sub>2</sub>, \\delta") == [
        "y_(", "Σ_u", "<sub>", "</sub>", "\\d"]
    assert raw_markup("δₗ = wₗ₊₁ᵀ·δₗ₊₁ in my_autograd.dat (forgotten_activation_derivative@1)") \
        == []


def test_every_mistake_reads_without_markup():
    spec = preset(DEFAULT_PRESET)
    for mistake in MISTAKES.values():
        assert raw_markup(mistake.title + mistake.description) == [], mistake.name
        if mistake.layers(spec):
            injection = inject(spec, mistake.name)
            for info in stage_plan(spec):
                for layer in injection.layers:
                    assert raw_markup(mistake.used(info, layer)) == [], mistake.name


def app(*args) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, str(ROOT / "app.py"), *map(str, args)],
                          capture_output=True, text=True, env=env, timeout=120)


@pytest.mark.parametrize("mistake", ["forgotten_activation_derivative", "untransposed_weight",
                                     "bias_gradient_wrong_axis"])
def test_compare_prints_a_disagreement_without_markup(tmp_path, mistake):
    assert app("export", tmp_path, "--samples", "5", "--inject", mistake).returncode == 0
    result = app("compare", tmp_path / "torch_autograd.dat", tmp_path / "my_autograd.dat")
    assert result.returncode == 1, result.stderr
    assert f"injected mistake: {mistake}" in result.stdout   # the note is there, and read
    assert raw_markup(result.stdout) == [], result.stdout


def test_an_older_files_note_is_printed_as_unicode(tmp_path):
    assert app("export", tmp_path, "--samples", "5").returncode == 0
    mine = tmp_path / "my_autograd.dat"
    lines = mine.read_text().splitlines(keepends=True)
    lines.insert(1, "# note: injected mistake: δ_l = w_{l+1}ᵀ·δ_{l+1}, f'(z_l) left out\n")
    mine.write_text("".join(lines))
    result = app("compare", tmp_path / "torch_autograd.dat", mine)
    assert "δₗ = wₗ₊₁ᵀ·δₗ₊₁, f'(zₗ) left out" in result.stdout, result.stdout + result.stderr

"""A file has one layout, its square weights too: a foreign file that states none is laid out
as the shapes of its non-square weights show, against the other file's or the model's, and the
notes say so once; where nothing shows it, they say it is a guess and how to state it. The
foreign files are printed here as (in, out) or torch-style code prints them."""

import contextlib
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from engine.check.align import align
from engine.check.report import compare_aligned, compare_files
from engine.check.reproduce import reproduce
from engine.export import export, gradient_sets
from engine.files.datasets import default_set
from engine.files.gradset import GradientSet
from engine.net.params import init_params
from engine.net.spec import NetworkSpec, preset

ROOT = Path(__file__).resolve().parent.parent
SPEC = preset("2-10-10-1-sigmoid-squared")
SQUARE = NetworkSpec((2, 2, 2), ("sigmoid", "identity"))
N = 12
HOW_TO_STATE = ('to state it, put a model.json with "layout" beside the file, give --model, or, '
                'in one of our .dat files, write the header line "# layout: in_out" (or out_in)')


def made(layout: str = "out_in", mistake: str | None = None,
         spec: NetworkSpec = SPEC) -> tuple[GradientSet, GradientSet]:
    """(torch, scratch) gradient sets of N samples, weights in `layout`."""
    spec = spec.with_options(layout=layout)
    return gradient_sets(spec, init_params(spec, 1), default_set(spec, N, seed=2),
                         mistake=mistake)


def ours(folder: Path, layout: str = "out_in", spec: NetworkSpec = SPEC) -> Path:
    """Our export of the same gradients into `folder` (with its model.json and data.csv);
    its torch_autograd.dat."""
    spec = spec.with_options(layout=layout)
    export(folder, spec, init_params(spec, 1), default_set(spec, N, seed=2))
    return folder / "torch_autograd.dat"


def numpy_printout(path: Path, gs: GradientSet, change=lambda name, v: v) -> Path:
    """`gs` as code that prints each labelled array with numpy writes it: no header, no
    layout, and `change(name, value)` applied to each value first."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(
        f"{name}\n{np.array2string(change(name, v.astype(np.float64)), precision=12)}\n"
        for sample in gs.samples for name, v in sample.items()))
    return path


def torch_printout(path: Path, gs: GradientSet) -> Path:
    """`gs` as torch code prints a list of its gradients per sample."""
    out = io.StringIO()
    torch.set_printoptions(precision=10)
    try:
        with contextlib.redirect_stdout(out):
            for sample in gs.samples:
                print([torch.from_numpy(np.array(v)) for v in sample.values()])
    finally:
        torch.set_printoptions(profile="default")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(out.getvalue())
    return path


def in_out_note(path: Path | str, other: Path | str) -> str:
    return (f"{path} is (in, out), as its w1 and w3 show: every weight transposed to {other}'s "
            "(out, in) to align, w2 included")


def layout_notes(notes: list[str]) -> list[str]:
    """The notes that say how weights were laid out, but for the reader's "does not state"."""
    return [n for n in notes if ("layout" in n or "transpose" in n or "(in, out)" in n)
            and "does not state its weight layout" not in n]


def test_an_in_out_printout_agrees_with_our_out_in_file(tmp_path):
    a = ours(tmp_path / "ours")
    _, scratch = made("in_out")
    b = numpy_printout(tmp_path / "theirs" / "grads.txt", scratch)
    report = compare_files(a, b).report
    assert report.agree, report.diagnosis
    assert layout_notes(report.notes) == [in_out_note(b, a)]


def test_an_in_out_printout_agrees_on_the_command_line(tmp_path):
    a = ours(tmp_path / "ours")
    b = numpy_printout(tmp_path / "theirs" / "grads.txt", made("in_out")[1])
    result = subprocess.run([sys.executable, str(ROOT / "app.py"), "compare", str(a), str(b)],
                            capture_output=True, text=True, timeout=120,
                            env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Verdict: the files agree" in result.stdout
    assert in_out_note(b, a) in result.stdout


def test_our_in_out_export_agrees_with_a_torch_printout(tmp_path):
    a = ours(tmp_path / "ours", "in_out")
    torch_set, _ = made("out_in")
    b = torch_printout(tmp_path / "theirs" / "grads.txt", torch_set)
    result = compare_files(a, b)
    assert result.report.agree, result.report.diagnosis
    assert result.aligned.layout == "in_out"
    assert layout_notes(result.report.notes) == [
        f"{b} is (out, in), as its w1 and w3 show: every weight transposed to {a}'s (in, out) "
        "to align, w2 included"]


def test_a_printout_first_gives_the_aligned_arrays_its_shown_layout(tmp_path):
    b = ours(tmp_path / "ours")
    a = numpy_printout(tmp_path / "theirs" / "grads.txt", made("in_out")[1])
    result = compare_files(a, b)
    assert result.report.agree, result.report.diagnosis
    assert result.aligned.layout == "in_out" and result.aligned.a["w1"].shape == (N, 2, 10)
    assert f"{a} is (in, out), as its w1 and w3 show against {b}'s; so is its w2" in (
        result.report.notes)


@pytest.mark.parametrize("foreign_first", [False, True])
def test_a_mistake_in_an_in_out_printout_is_located_and_named(tmp_path, foreign_first):
    """w2 used untransposed in the backward pass makes b1 and w1 wrong, not w2; the model.json
    and data.csv beside our file make the mistake again in the layout the shapes showed."""
    ours_file = ours(tmp_path / "ours")
    _, wrong = made("in_out", "untransposed_weight@2")
    theirs = numpy_printout(tmp_path / "theirs" / "grads.txt", wrong)
    a, b = (theirs, ours_file) if foreign_first else (ours_file, theirs)
    report = compare_files(a, b).report
    assert report.first_disagreement == "b1"
    assert {n for n, p in report.params.items() if not p.agree} == {"b1", "w1"}
    # only w2 is square, so the mistake in the whole network is that in layer 2
    assert report.reproduced_by == "untransposed_weight", report.diagnosis
    suspect = "A" if foreign_first else "B"
    assert any(s.startswith(f"{suspect} is made again by the scratch engine with the mistake "
                            "untransposed_weight (") for s in report.diagnosis)


def test_a_halved_square_weight_is_told_as_such(tmp_path):
    a = ours(tmp_path / "ours")
    b = numpy_printout(tmp_path / "theirs" / "grads.txt", made("in_out")[1],
                       lambda name, v: v * 0.5 if name == "w2" else v)
    report = compare_files(a, b).report
    assert report.first_disagreement == "w2"
    assert [n for n, p in report.params.items() if not p.agree] == ["w2"]
    assert any(s.startswith("B = ½·A in w2, in every sample") for s in report.diagnosis)


def test_a_mistake_is_named_where_neither_file_states_a_layout():
    """Both (in, out) and stating nothing: the aligned arrays are as the files hold them, and
    the re-run takes the layout their shapes show against the network's, square w2 too."""
    torch_set, wrong = made("in_out", "untransposed_weight@2")
    stripped = [GradientSet(**{**gs.__dict__, "layout": None, "spec": None}) for gs in
                (torch_set, wrong)]
    aligned = align(*stripped)
    assert aligned.layout is None and aligned.a["w1"].shape == (N, 2, 10)
    data = default_set(SPEC, N, seed=2)
    found = reproduce(aligned, SPEC, init_params(SPEC, 1), data.x, data.y, 0.0)
    assert (found.suspect, found.reproduced_by) == ("B", "untransposed_weight")


def test_a_flat_weight_of_a_file_shown_in_out_is_cut_as_in_out():
    torch_set, _ = made("out_in")
    _, scratch = made("in_out")
    flat = [{k: v.ravel() if k == "w2" else v for k, v in s.items()} for s in scratch.samples]
    foreign = GradientSet(flat, "foreign.txt")
    aligned = align(torch_set, foreign)
    assert compare_aligned(aligned).agree
    assert ("foreign.txt: w2 is a flat vector of 100 values; reshaped row-major to (10, 10), "
            "its in_out, and transposed to torch autograd's (10, 10)") in aligned.notes


def test_weights_that_disagree_on_the_layout_are_aligned_one_by_one():
    torch_set, _ = made("out_in")
    mixed = [{k: v.T.copy() if k == "w1" else v for k, v in s.items()}
             for s in torch_set.samples]
    aligned = align(torch_set, GradientSet(mixed, "foreign.txt"))
    assert ("foreign.txt's weights do not show one layout: w3 as torch autograd's, w1 "
            "transposed; each is aligned by its shape, square ones (w2) as they are") in (
        aligned.notes)
    assert compare_aligned(aligned).agree


def test_a_net_of_square_weights_says_its_layout_is_a_guess(tmp_path):
    a = ours(tmp_path / "ours", spec=SQUARE)
    _, scratch = made("in_out", spec=SQUARE)
    b = numpy_printout(tmp_path / "theirs" / "grads.txt", scratch)
    report = compare_files(a, b).report
    assert layout_notes(report.notes) == [
        f"{b}'s weights are all square, so their shapes cannot show its layout: it is taken as "
        f"{a}'s (out, in), a guess; " + HOW_TO_STATE]
    assert not report.agree
    # stated the way the note says, the same file agrees
    (b.parent / "model.json").write_text(json.dumps({**SQUARE.to_dict(), "layout": "in_out"}))
    assert compare_files(a, b).report.agree


def test_a_given_model_states_the_layout(tmp_path):
    a = ours(tmp_path / "ours")
    b = numpy_printout(tmp_path / "theirs" / "grads.txt", made("in_out")[1])
    report = compare_files(a, b, model=SPEC).report
    assert report.agree
    assert not any("does not state its weight layout" in n for n in report.notes)
    assert (f"{b} is (in, out), as its w1 and w3 show: every weight transposed to the model's "
            "(out, in) to align, w2 included") in report.notes


def test_a_model_json_without_a_layout_beside_the_file_states_it(tmp_path):
    """A model.json that names the network but not the layout gives the default (out, in)."""
    a = ours(tmp_path / "ours")
    b = torch_printout(tmp_path / "theirs" / "grads.txt", made("out_in")[0])
    without = {k: v for k, v in SPEC.to_dict().items() if k != "layout"}
    (b.parent / "model.json").write_text(json.dumps(without))
    report = compare_files(a, b).report
    assert report.agree
    assert not any("does not state its weight layout" in n for n in report.notes)

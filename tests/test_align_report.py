"""Aligning two gradient sets and the report on them: layouts, flat vectors, the first
disagreement walking back from the loss, and the --json object."""

import json

import numpy as np
import pytest

from engine.check.align import align
from engine.check.report import compare_aligned, format_report
from engine.export import gradient_sets
from engine.files.datasets import default_set
from engine.files.gradset import GradientFileError, GradientSet
from engine.net.params import init_params
from engine.net.spec import DEFAULT_PRESET, preset

SPEC = preset(DEFAULT_PRESET)


def sets(layout="out_in", n=5, dtype="float32"):
    spec = SPEC.with_options(layout=layout, dtype=dtype)
    return gradient_sets(spec, init_params(spec, 1), default_set(spec, n, seed=2))


def strip(gs: GradientSet, **changes) -> GradientSet:
    """The same gradients as a foreign file would give them: no layout, no network."""
    fields = {**gs.__dict__, "layout": None, "spec": None, "source": "foreign.txt"}
    fields.update(changes)
    return GradientSet(**fields)


def test_agreeing_files():
    torch_set, scratch_set = sets()
    report = compare_aligned(align(torch_set, scratch_set))
    assert report.agree and report.first_disagreement is None and report.samples == 5
    assert report.params["w1"].shape == (10, 2)
    assert "all 6 parameters agree" in report.diagnosis[0]


def test_layouts_that_differ_are_transposed_square_ones_too():
    torch_set, _ = sets("out_in")
    _, scratch_in_out = sets("in_out")
    aligned = align(torch_set, scratch_in_out)
    assert compare_aligned(aligned).agree
    assert any("w2 is stored in_out; transposed to out_in" in n for n in aligned.notes)


def test_unknown_layout_is_told_by_transposed_shapes():
    torch_set, _ = sets("out_in")
    _, scratch = sets("in_out")
    aligned = align(torch_set, strip(scratch))
    # w1 and w3 show the file's layout, and it holds for the square w2 too
    assert aligned.notes == ["foreign.txt is (in, out), as its w1 and w3 show: every weight "
                             "transposed to torch autograd's (out, in) to align, w2 included"]
    assert compare_aligned(aligned).agree and aligned.layout == "out_in"


def test_flat_vectors_and_row_biases_are_reshaped():
    torch_set, scratch = sets()
    flat = [{k: (v.ravel() if k == "w2" else v[None] if k == "b1" else v) for k, v in s.items()}
            for s in scratch.samples]
    aligned = align(torch_set, strip(scratch, samples=flat))
    assert compare_aligned(aligned).agree
    assert any("w2 is a flat vector of 100 values; reshaped row-major" in n
               for n in aligned.notes)
    assert any("b1 is a (1, 10) array" in n for n in aligned.notes)


def test_a_model_gives_a_foreign_file_its_layout():
    """A foreign file states nothing; the model it came with says in_out, square w2 included,
    and the other file, stored out_in, is transposed to it."""
    _, scratch_in_out = sets("in_out")
    torch_set, _ = sets("out_in")
    aligned = align(strip(scratch_in_out), torch_set, SPEC.with_options(layout="in_out"))
    assert aligned.layout == "in_out"
    assert compare_aligned(aligned).agree
    assert aligned.a["w1"].shape == (5, 2, 10)


@pytest.mark.parametrize(("change", "message"), [
    (lambda s: s.samples.pop(), "has 4 samples but .* has 5"),
    (lambda s: [x.pop("b3") for x in s.samples], "holds w1, b1, w2, b2, w3 but"),
    (lambda s: [x.update(w2=np.zeros((3, 3))) for x in s.samples], "w2 has shape \\(3, 3\\)"),
])
def test_what_cannot_be_aligned_names_the_file(change, message):
    torch_set, scratch = sets()
    other = strip(scratch)
    change(other)
    with pytest.raises(GradientFileError, match=f"^foreign.txt: .*{message}"):
        align(torch_set, other)


def test_first_disagreement_walks_back_from_the_loss():
    torch_set, scratch = sets()
    for s in scratch.samples:
        s["w2"] = s["w2"] * 2
        s["w1"] = s["w1"] + 1
    report = compare_aligned(align(torch_set, scratch))
    assert not report.agree
    assert report.first_disagreement == "w2"
    assert "b3, w3, b2 after it agree" in report.diagnosis[0]
    assert "layer 2's backward step" in report.diagnosis[0]


def test_worst_names_the_sample_from_1_and_the_element_from_0():
    torch_set, scratch = sets()
    scratch.samples[3]["w1"][7, 1] += 0.5
    report = compare_aligned(align(torch_set, scratch))
    assert report.params["w1"].worst == (4, 7, 1)
    assert report.first_disagreement == "w1"


def test_json_object_has_the_documented_schema():
    torch_set, scratch = sets()
    scratch.samples[0]["b3"] = scratch.samples[0]["b3"] + 1
    data = json.loads(json.dumps(compare_aligned(align(torch_set, scratch)).to_json()))
    assert set(data) == {"agree", "samples", "params", "first_disagreement", "diagnosis",
                         "notes", "reproduced_by", "exact_to"}
    assert data["agree"] is False and data["samples"] == 5
    assert data["first_disagreement"] == "b3"
    assert list(data["params"]) == ["w1", "b1", "w2", "b2", "w3", "b3"]
    w1 = data["params"]["w1"]
    assert set(w1) == {"shape", "max_abs_diff", "max_rel_diff", "digits", "worst",
                       "within_rounding"}
    assert w1["shape"] == [10, 2] and len(w1["worst"]) == 3
    assert all(isinstance(s, str) for s in data["diagnosis"])


def test_tolerances_can_be_given_and_float64_defaults_are_tight():
    torch_set, scratch = sets(dtype="float64")
    report = compare_aligned(align(torch_set, scratch), precision="float64")
    assert report.agree and (report.rtol, report.atol) == (1e-9, 1e-12)
    assert report.params["w1"].digits > 13
    for s in scratch.samples:
        s["w3"] = s["w3"] * (1 + 1e-7)
    assert not compare_aligned(align(torch_set, scratch), precision="float64").agree
    assert compare_aligned(align(torch_set, scratch), rtol=1e-6, precision="float64").agree
    # float32's tolerances (the default) let float32-sized differences pass
    assert compare_aligned(align(torch_set, scratch)).agree


def test_float64_tolerances_only_when_both_files_carry_float64(tmp_path):
    from engine.check.report import compare_files
    from engine.files.gradfile import write_gradients

    torch_set, scratch = sets(dtype="float64")
    write_gradients(tmp_path / "a.dat", torch_set)
    write_gradients(tmp_path / "b.dat", scratch)
    assert compare_files(tmp_path / "a.dat", tmp_path / "b.dat").report.rtol == 1e-9
    printed = tmp_path / "printed.txt"
    printed.write_text("\n".join(f"{k}\n{np.array2string(v, precision=12)}"
                                 for s in scratch.samples for k, v in s.items()))
    result = compare_files(tmp_path / "a.dat", printed)
    # 12 decimals of float64 values carry more than float32 does
    assert result.report.rtol == 1e-9 and result.report.agree
    assert any(n.startswith(f"{printed} prints ") and n.endswith(
        "more than float32 carries, so it is held to float64's tolerances")
        for n in result.report.notes)
    short = tmp_path / "short.txt"
    short.write_text("\n".join(f"{k}\n{np.array2string(v)}"
                               for s in scratch.samples for k, v in s.items()))
    result = compare_files(tmp_path / "a.dat", short)
    assert result.report.rtol == 1e-5
    assert any(n.startswith(f"{short} prints ") and n.endswith(
        "does not state a dtype: it is held to float32's tolerances")
        for n in result.report.notes)


def test_table_reads_in_backward_order():
    torch_set, scratch = sets()
    text = format_report(compare_aligned(align(torch_set, scratch)), "A.dat", "B.dat")
    rows = [line.split()[0] for line in text.splitlines() if line[:2] in ("w1", "b1", "w2",
                                                                          "b2", "w3", "b3")]
    assert rows == ["b3", "w3", "b2", "w2", "b1", "w1"]
    assert "Verdict: the files agree" in text


def test_rounding_level_differences_are_told_apart_from_mistakes():
    """A float32 difference of a few units in the last place where ŷ ≈ y makes 2(ŷ - y)
    small: it fails the elementwise tolerance, and the diagnosis says it is rounding."""
    torch_set, scratch = sets(n=5)
    small = 2  # make its ŷ - y nearly cancel in both files, then round one differently
    torch_set.samples[small]["b3"] = np.array([0.002], dtype=np.float32)
    scratch.samples[small]["b3"] = np.array([0.002 + 3e-7], dtype=np.float32)
    report = compare_aligned(align(torch_set, scratch))
    assert not report.agree
    assert any("rounding level" in s for s in report.diagnosis)
    assert not any("mix-up" in s for s in report.diagnosis)
    scratch.samples[small]["b3"] = scratch.samples[small]["b3"] + np.float32(0.1)
    report = compare_aligned(align(torch_set, scratch))
    assert not any("rounding level" in s for s in report.diagnosis)

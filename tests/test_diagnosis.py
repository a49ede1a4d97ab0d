"""What compare tells about a disagreement: the patterns read from the numbers alone (files
crafted by editing a correct export), and the mistake named by making it again."""

import numpy as np
import pytest

from engine.check.align import align
from engine.check.diagnosis import holds
from engine.check.mistakes import MISTAKES
from engine.check.report import compare_aligned
from engine.check.reproduce import along_the_way_note, learning_rate_in, reproduce
from engine.export import gradient_sets
from engine.files.datasets import default_set
from engine.files.gradset import GradientSet
from engine.net.params import init_params
from engine.net.spec import DEFAULT_PRESET, preset

SPEC = preset(DEFAULT_PRESET)
PARAMS = init_params(SPEC, 1)
DATA = default_set(SPEC, 8, seed=2)


def sets(lr=0.0, mistake=None):
    return gradient_sets(SPEC, PARAMS, DATA, lr, mistake=mistake)


def edited(gs: GradientSet, change) -> GradientSet:
    """A copy of `gs` whose stacked arrays (N, *shape) went through change(name, values)."""
    stacked = {name: change(name, gs.stacked(name)) for name in gs.names}
    samples = [{name: stacked[name][k] for name in gs.names} for k in range(gs.n_samples)]
    return GradientSet(**{**gs.__dict__, "samples": samples, "notes": []})


def diagnosis(a: GradientSet, b: GradientSet) -> str:
    report = compare_aligned(align(a, b))
    assert not report.agree
    return "\n".join(report.diagnosis)


TORCH, SCRATCH = sets()


def test_agreeing_files_have_no_pattern():
    report = compare_aligned(align(TORCH, SCRATCH))
    assert report.agree and len(report.diagnosis) == 1
    assert report.reproduced_by is None


@pytest.mark.parametrize(("factor", "says"), [
    (0.5, "B = ½·A in every parameter (b3, w3, b2, w2, b1, w1), in every sample: B drops a "
          "factor 2 that A keeps"),
    (2.0, "B = 2·A in every parameter"),
    (-1.0, "B = -A in every parameter (b3, w3, b2, w2, b1, w1), in every sample: a sign flip"),
    (0.1, "B = 0.1·A in every parameter"),
])
def test_a_constant_ratio_is_recognised(factor, says):
    assert says in diagnosis(TORCH, edited(SCRATCH, lambda n, v: v * np.float32(factor)))


def test_a_ratio_in_some_parameters_names_them():
    text = diagnosis(TORCH, edited(SCRATCH, lambda n, v: v * 2 if n in ("w1", "b1") else v))
    assert "B = 2·A in b1, w1, in every sample" in text


def test_a_ratio_that_holds_nowhere_is_not_claimed():
    noisy = edited(SCRATCH, lambda n, v: v * (1 + np.linspace(0, 1, v.size).reshape(v.shape)))
    assert "·A" not in diagnosis(TORCH, noisy)


def test_a_transposed_square_weight_is_recognised():
    text = diagnosis(TORCH, edited(SCRATCH, lambda n, v: v.transpose(0, 2, 1) if n == "w2"
                                   else v))
    assert "B's w2 is the transpose of A's in every sample" in text
    assert "w2 is the first parameter that disagrees" in text


def test_accumulation_is_recognised_in_either_file():
    summed = edited(SCRATCH, lambda n, v: np.cumsum(v, axis=0))
    assert "B's sample k holds the sum of A's samples 1..k in b3, w3, b2, w2, b1, w1" in (
        diagnosis(TORCH, summed))
    assert "A's sample k holds the sum of B's samples 1..k" in diagnosis(summed, TORCH)
    assert "part from sample 2 on" not in diagnosis(TORCH, summed)


def test_a_bias_summed_over_units_is_recognised():
    def over_units(name, v):
        return np.repeat(v.sum(axis=1, keepdims=True), v.shape[1], axis=1) if name == "b1" else v
    text = diagnosis(TORCH, edited(SCRATCH, over_units))
    assert "B's b1 holds in every unit the sum over the layer's units" in text
    assert "b1 is the first parameter that disagrees walking back from the loss, and w1 agrees" \
        in text


def test_one_sample_that_differs_is_a_data_mix_up():
    def swap_sample_3(name, v):
        v = v.copy()
        v[2] = v[5]
        return v
    text = diagnosis(TORCH, edited(SCRATCH, swap_sample_3))
    assert "only sample 3 disagrees; the other 7 agree in every parameter" in text


def test_files_that_part_after_the_first_sample_point_at_the_update():
    moving, _ = sets(lr=0.3)
    text = diagnosis(TORCH, moving)
    assert "sample 1 agrees in every parameter and the files part from sample 2 on" in text


@pytest.mark.parametrize("name", list(MISTAKES))
def test_no_pattern_is_claimed_where_it_does_not_hold(name):
    torch_set, scratch_set = sets(0.1 if MISTAKES[name].needs_updates else 0.0, name)
    text = diagnosis(torch_set, scratch_set)
    claims = {"ratio": "·A ", "transpose": "is the transpose of", "sum": "holds the sum of",
              "units": "the sum over the layer's units", "one sample": "only sample"}
    expected = {"dropped_factor_2": {"ratio"}, "accumulated_gradients": {"sum"},
                "bias_gradient_wrong_axis": {"units"}}.get(name, set())
    assert {claim for claim, words in claims.items() if words in text} == expected


def test_holds_is_relative_to_each_samples_largest_value():
    a = np.array([[1.0, 1e-9], [1e6, 2.0]])
    assert holds(a, a * (1 + 1e-6))
    assert not holds(a, a + np.array([[0.0, 1e-3], [0.0, 0.0]]))


def test_the_learning_rate_note_reads_back():
    assert learning_rate_in(["something else", along_the_way_note(0.25)]) == 0.25
    assert learning_rate_in(["no rate here"]) == 0.0


@pytest.mark.parametrize("lr", [0.0, 0.1])
def test_reproduction_names_the_mistake_in_either_file(lr):
    torch_set, scratch_set = sets(lr, "untransposed_weight")
    for a, b, suspect in ((torch_set, scratch_set, "B"), (scratch_set, torch_set, "A")):
        found = reproduce(align(a, b), SPEC, PARAMS, DATA.x, DATA.y, lr)
        assert (found.suspect, found.reproduced_by, found.also) == (
            suspect, "untransposed_weight", [])
        assert f"so {suspect} holds the mistake" in found.sentences[0]


def test_a_mistake_outside_the_catalogue_is_not_named():
    odd = edited(SCRATCH, lambda n, v: v + 1 if n == "w1" else v)
    found = reproduce(align(TORCH, odd), SPEC, PARAMS, DATA.x, DATA.y, 0.0)
    assert found.suspect == "B" and found.reproduced_by is None
    assert "none of the" in found.sentences[-1] and "makes B" in found.sentences[-1]


def test_other_parameters_reproduce_neither_file():
    found = reproduce(align(*sets(0.0, "dropped_factor_2")), SPEC, init_params(SPEC, 9),
                      DATA.x, DATA.y, 0.0)
    assert found.suspect is None and found.reproduced_by is None
    assert "makes neither file" in found.sentences[0]


def test_data_of_another_size_is_said_and_not_run():
    found = reproduce(align(TORCH, SCRATCH), SPEC, PARAMS, DATA.x[:3], DATA.y[:3], 0.0)
    assert found.reproduced_by is None and "has 3 samples and the files 8" in found.sentences[0]

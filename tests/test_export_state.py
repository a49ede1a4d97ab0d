"""Export after a training run parted the engines: each file at its engine's parameters (the
scratch engine continuing its gradient sums under accumulated_gradients), and notes saying
how far apart they are."""

import numpy as np
import pytest

from engine.check.mistaken_net import scratch_net
from engine.errors import UserInputError
from engine.export import BUFFERS_NOTE, export, gradient_sets
from engine.files.datasets import default_set
from engine.files.model_file import read_model
from engine.files.readers import read_gradients
from engine.net.params import drift, init_params
from engine.net.reference import TorchNet
from engine.net.scratch import ScratchNet
from engine.net.spec import DEFAULT_PRESET, preset

SPEC = preset(DEFAULT_PRESET)
DATA = default_set(SPEC, 12, seed=2)
SCRATCH = init_params(SPEC, 2)


def parted(scale: float = 0.05, seed: int = 7) -> dict[str, np.ndarray]:
    """Torch's parameters after a pretend run: the scratch ones, moved a little."""
    rng = np.random.default_rng(seed)
    return {k: (v + scale * rng.standard_normal(v.shape)).astype(v.dtype)
            for k, v in SCRATCH.items()}


def test_each_file_is_taken_at_its_engines_parameters(tmp_path):
    theirs = parted()
    export(tmp_path, SPEC, SCRATCH, DATA, torch_params=theirs)
    _, want_torch = TorchNet(SPEC, theirs).per_sample_gradients(DATA.x, DATA.y)
    _, want_ours = ScratchNet(SPEC, SCRATCH).per_sample_gradients(DATA.x, DATA.y)
    torch_file = read_gradients(tmp_path / "torch_autograd.dat")
    mine = read_gradients(tmp_path / "my_autograd.dat")
    for name in SPEC.param_names:
        np.testing.assert_array_equal(torch_file.stacked(name), want_torch[name])
        np.testing.assert_array_equal(mine.stacked(name), want_ours[name])
    apart = f"||θ_scratch - θ_torch|| = {drift(SCRATCH, theirs):.6g}"
    assert any("torch's gradients are taken at its own parameters" in n and apart in n
               for n in torch_file.notes)
    assert any("scratch engine's gradients are taken at its own" in n and apart in n
               for n in mine.notes)
    model = read_model(tmp_path / "model.json")
    assert all(np.array_equal(np.asarray(model.params[k], SCRATCH[k].dtype), SCRATCH[k])
               for k in SCRATCH)


def test_accumulated_gradients_continue_the_runs_buffers():
    buffers = {k: np.full_like(v, 0.25) for k, v in SCRATCH.items()}
    theirs = parted()
    torch_set, scratch_set = gradient_sets(SPEC, SCRATCH, DATA, mistake="accumulated_gradients",
                                           torch_params=theirs, buffers=buffers)
    net = scratch_net(SPEC, SCRATCH, "accumulated_gradients", buffers)
    _, want = net.per_sample_gradients(DATA.x, DATA.y)
    _, fresh = scratch_net(SPEC, SCRATCH, "accumulated_gradients").per_sample_gradients(
        DATA.x, DATA.y)
    for name in SPEC.param_names:
        np.testing.assert_array_equal(scratch_set.stacked(name), want[name])
        assert not np.allclose(scratch_set.stacked(name), fresh[name])
    assert BUFFERS_NOTE in scratch_set.notes and BUFFERS_NOTE not in torch_set.notes
    assert any(n.startswith("injected mistake: accumulated_gradients") for n in scratch_set.notes)


def test_buffers_of_no_accumulating_mistake_change_nothing():
    buffers = {k: np.ones_like(v) for k, v in SCRATCH.items()}
    plain = gradient_sets(SPEC, SCRATCH, DATA, mistake="dropped_factor_2")[1]
    given = gradient_sets(SPEC, SCRATCH, DATA, mistake="dropped_factor_2", buffers=buffers)[1]
    for name in SPEC.param_names:
        np.testing.assert_array_equal(given.stacked(name), plain.stacked(name))
    assert given.notes == plain.notes


def test_an_update_mistake_exports_at_lr_0_only_after_training():
    with pytest.raises(UserInputError, match="changes only the SGD update"):
        gradient_sets(SPEC, SCRATCH, DATA, mistake="flipped_update_sign")
    theirs = parted()
    torch_set, scratch_set = gradient_sets(SPEC, SCRATCH, DATA, mistake="flipped_update_sign",
                                           torch_params=theirs)
    right = gradient_sets(SPEC, SCRATCH, DATA)[1]
    np.testing.assert_array_equal(scratch_set.stacked("w1"), right.stacked("w1"))
    assert not np.allclose(torch_set.stacked("w1"), scratch_set.stacked("w1"))


def test_without_training_state_the_notes_are_as_before():
    torch_set, scratch_set = gradient_sets(SPEC, SCRATCH, DATA, lr=0.1)
    assert torch_set.notes == scratch_set.notes and len(torch_set.notes) == 1
    assert "SGD along the way" in torch_set.notes[0]

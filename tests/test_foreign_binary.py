"""Binary gradient files: torch.save, np.save and np.savez in the shapes people save them, and
hostile or broken files, which are refused without running anything."""

import pickle
import zipfile

import numpy as np
import pytest
import torch

from engine.files.gradset import GradientFileError
from engine.files.readers import read_gradients
from engine.net.spec import NetworkSpec

SPEC = NetworkSpec((2, 3, 1), ("sigmoid", "identity"))
NAMES = ("w1", "b1", "w2", "b2")


def gradients(n: int = 3, dtype: torch.dtype = torch.float32) -> list[list[torch.Tensor]]:
    """Per-sample (w1, b1, w2, b2) gradients of a 2-3-1 net, as autograd returns them."""
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(2, 3), torch.nn.Sigmoid(),
                              torch.nn.Linear(3, 1)).to(dtype)
    out = []
    for _ in range(n):
        x = torch.rand(2, dtype=dtype)
        loss = (net(x) - 1).square().sum()
        out.append(list(torch.autograd.grad(loss, list(net.parameters()))))
    return out


def assert_same(gs, grads, flat: bool = False) -> None:
    """gs holds exactly `grads`, bit for bit, sample by sample."""
    assert gs.n_samples == len(grads)
    for got, want in zip(gs.samples, grads, strict=True):
        assert list(got) == list(NAMES)
        for name, w in zip(NAMES, want, strict=True):
            w = np.asarray(w.numpy() if isinstance(w, torch.Tensor) else w)
            assert got[name].dtype == w.dtype, name
            np.testing.assert_array_equal(got[name], w.ravel() if flat else w, err_msg=name)


def save(tmp_path, obj, name: str = "grads.pt"):
    path = tmp_path / name
    torch.save(obj, path)
    return path


def test_torch_list_of_per_sample_lists(tmp_path):
    grads = gradients(3)
    gs = read_gradients(save(tmp_path, grads))
    assert_same(gs, grads)
    assert gs.dtype == "float32" and gs.layout is None


def test_torch_single_sample_list_and_tuple(tmp_path):
    grads = gradients(1, torch.float64)
    assert_same(read_gradients(save(tmp_path, grads[0])), grads)
    gs = read_gradients(save(tmp_path, tuple(grads[0])))
    assert_same(gs, grads)
    assert gs.dtype == "float64"


def test_torch_state_dict_style_names(tmp_path):
    grads = gradients(1)
    named = dict(zip(("fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias"), grads[0],
                     strict=True))
    assert_same(read_gradients(save(tmp_path, named)), grads)
    dense = dict(zip(("dense.0.weight", "dense.0.bias", "dense.2.weight", "dense.2.bias"),
                     grads[0], strict=True))
    gs = read_gradients(save(tmp_path, dense))
    assert_same(gs, grads)
    assert any("dense.0, dense.2 taken as layers 1..2" in note for note in gs.notes)


def test_torch_list_of_named_dicts_per_sample(tmp_path):
    grads = gradients(3)
    per_sample = [{f"grad_{n}": g for n, g in zip(NAMES, s, strict=True)} for s in grads]
    assert_same(read_gradients(save(tmp_path, per_sample)), grads)


def test_torch_dict_of_samples_with_losses(tmp_path):
    grads = gradients(2)
    obj = {f"sample_{k}": {"loss": torch.tensor(0.5 + k),
                           **{n: g for n, g in zip(NAMES, s, strict=True)}}
           for k, s in enumerate(grads)}
    gs = read_gradients(save(tmp_path, obj))
    assert_same(gs, grads)
    np.testing.assert_array_equal(gs.losses, [0.5, 1.5])


def test_torch_checkpoint_like_dict_with_other_entries(tmp_path):
    grads = gradients(2)
    gs = read_gradients(save(tmp_path, {"epoch": 3, "note": "run 1", "grads": grads}))
    assert_same(gs, grads)
    assert any("'epoch'" in note for note in gs.notes)


def test_torch_dict_of_per_sample_lists(tmp_path):
    grads = gradients(3)
    obj = {n: [s[i] for s in grads] for i, n in enumerate(NAMES)}
    assert_same(read_gradients(save(tmp_path, obj)), grads)


def test_torch_dict_of_stacked_tensors_with_x_and_y(tmp_path):
    grads = gradients(4)
    obj = {n: torch.stack([s[i] for s in grads]) for i, n in enumerate(NAMES)}
    obj["x"], obj["y"] = torch.rand(4, 2), torch.rand(4, 1)
    gs = read_gradients(save(tmp_path, obj))
    assert_same(gs, grads)
    np.testing.assert_array_equal(gs.x, obj["x"].numpy())
    assert any("leading axis of 4" in note for note in gs.notes)


def test_torch_file_of_numpy_arrays_loads_and_leaves_no_global_allowance(tmp_path):
    grads = [[g.numpy() for g in s] for s in gradients(2)]
    assert_same(read_gradients(save(tmp_path, grads)), grads)
    # torch registers some globals of its own lazily; none of numpy's may stay allowed
    leftover = [g for g in torch.serialization.get_safe_globals()
                if "numpy" in str(getattr(g, "__module__", g))]
    assert leftover == []


def test_torch_half_precision_tensors_are_read_as_floats_and_integer_labels_too(tmp_path):
    grads = gradients(1)
    half = [g.to(torch.bfloat16) for g in grads[0]]
    gs = read_gradients(save(tmp_path, half))
    assert gs.dtype == "float32"
    assert_same(gs, [[g.float() for g in half]])
    labelled = dict(zip(NAMES, grads[0], strict=True)) | {"y": torch.ones(1, dtype=torch.int64)}
    gs = read_gradients(save(tmp_path, labelled))
    assert gs.y.dtype == np.float64 and gs.y.tolist() == [[1.0]]


def test_integer_tensors_where_gradients_belong_are_refused(tmp_path):
    ints = [torch.ones(3, 2, dtype=torch.int64), torch.ones(3, dtype=torch.int64),
            torch.ones(1, 3, dtype=torch.int64), torch.ones(1, dtype=torch.int64)]
    with pytest.raises(GradientFileError, match=r"grads\.pt: holds an int64 tensor \(\[0\]\); "
                                                r"gradients must be float32 or float64"):
        read_gradients(save(tmp_path, ints))


def test_flat_per_sample_matrix_needs_the_network(tmp_path):
    grads = gradients(3)
    flat = torch.stack([torch.cat([g.ravel() for g in s]) for s in grads])
    path = save(tmp_path, flat)
    with pytest.raises(GradientFileError, match=r"holds a single array of shape \(3, 13\)"):
        read_gradients(path)
    gs = read_gradients(path, model_spec=SPEC)
    assert_same(gs, grads, flat=True)
    assert any("split into w1, b1, w2, b2" in note for note in gs.notes)


def test_npy_flat_matrix_with_model_json_beside_it(tmp_path):
    grads = gradients(2, torch.float64)
    np.save(tmp_path / "grads.npy", np.stack([np.concatenate([g.numpy().ravel() for g in s])
                                              for s in grads]))
    (tmp_path / "model.json").write_text('{"sizes": [2, 3, 1], "activations": ["sigmoid", '
                                         '"identity"], "loss": "squared_error", '
                                         '"layout": "out_in"}')
    gs = read_gradients(tmp_path / "grads.npy")
    assert_same(gs, grads, flat=True)
    assert gs.layout == "out_in" and gs.spec.sizes == (2, 3, 1)


def test_npz_with_names_stacked_or_not(tmp_path):
    grads = gradients(3)
    np.savez(tmp_path / "stacked.npz",
             **{n: np.stack([s[i].numpy() for s in grads]) for i, n in enumerate(NAMES)})
    assert_same(read_gradients(tmp_path / "stacked.npz"), grads)
    np.savez(tmp_path / "one.npz", **{n: g.numpy() for n, g in
                                      zip(("fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias"),
                                          grads[0], strict=True)})
    assert_same(read_gradients(tmp_path / "one.npz"), grads[:1])


def test_npz_of_positional_arrays(tmp_path):
    grads = gradients(1)
    np.savez(tmp_path / "grads.npz", *[g.numpy() for g in grads[0]])
    assert_same(read_gradients(tmp_path / "grads.npz"), grads)


def test_stacked_1d_gradients_need_the_network_to_be_split(tmp_path):
    """(N, 6) for w1 could be one sample's 6x... or N samples of 6 values: only the network
    tells; with it, N samples."""
    grads = gradients(4)
    stacked = {n: np.stack([s[i].numpy().ravel() for s in grads]) for i, n in enumerate(NAMES)}
    np.savez(tmp_path / "grads.npz", **stacked)
    gs = read_gradients(tmp_path / "grads.npz", model_spec=SPEC)
    assert_same(gs, grads, flat=True)


# Hostile files: loading them would create the marker file. Nothing may run.
class Payload:
    def __init__(self, marker) -> None:
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


@pytest.fixture
def marker(tmp_path):
    path = tmp_path / "ran.txt"
    yield path
    assert not path.exists(), "a payload in a gradient file ran"


def test_hostile_torch_file_is_refused(tmp_path, marker, monkeypatch):
    monkeypatch.setenv("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", "1")  # must not flip our explicit True
    path = save(tmp_path, {"w1": torch.ones(2, 2), "evil": Payload(marker)})
    with pytest.raises(GradientFileError, match=r"grads\.pt: is a torch\.save file holding more "
                                                r"than tensors.*\((builtins|io)\.open\); it is not "
                                                r"opened, since loading it could run code"):
        read_gradients(path)


@pytest.mark.parametrize("name", ["grads.pkl", "my_autograd.dat", "grads.pt"])
def test_plain_pickles_are_never_opened(tmp_path, marker, name):
    path = tmp_path / name
    path.write_bytes(pickle.dumps([np.ones(2), Payload(marker)]))
    with pytest.raises(GradientFileError, match=r": is a Python pickle; pickles are never opened"):
        read_gradients(path)


def test_legacy_torch_format_is_a_pickle_and_refused(tmp_path):
    path = tmp_path / "old.pt"
    torch.save(gradients(1)[0], path, _use_new_zipfile_serialization=False)
    with pytest.raises(GradientFileError, match=r"is a Python pickle"):
        read_gradients(path)


def test_object_arrays_in_npy_and_npz_are_refused(tmp_path, marker):
    objects = np.array([Payload(marker), 1.0], dtype=object)
    np.save(tmp_path / "evil.npy", objects, allow_pickle=True)
    np.savez(tmp_path / "evil.npz", w1=np.ones((2, 2)), b1=objects)
    for name in ("evil.npy", "evil.npz"):
        with pytest.raises(GradientFileError, match=r"holds Python objects.*never loaded"):
            read_gradients(tmp_path / name)


def test_torch_file_with_an_object_array_is_refused(tmp_path, marker):
    path = save(tmp_path, [np.array([Payload(marker)], dtype=object)])
    with pytest.raises(GradientFileError, match=r"is a torch\.save file holding more than"):
        read_gradients(path)


# Broken files: one line naming the file and the problem.
def test_truncated_binary_files(tmp_path):
    path = save(tmp_path, gradients(2))
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(GradientFileError, match=r"grads\.pt: is (a damaged zip archive|not a "
                                                r"readable torch\.save file)"):
        read_gradients(path)
    np.save(tmp_path / "g.npy", np.ones((100, 13)))
    data = (tmp_path / "g.npy").read_bytes()
    (tmp_path / "g.npy").write_bytes(data[: len(data) // 2])
    with pytest.raises(GradientFileError, match=r"g\.npy: is cut short: its header promises "
                                                r"\(100, 13\) values of float64"):
        read_gradients(tmp_path / "g.npy")


def test_npy_header_promising_a_huge_array_is_not_allocated(tmp_path):
    np.save(tmp_path / "g.npy", np.ones(4))
    data = (tmp_path / "g.npy").read_bytes()
    old, new = b"'shape': (4,), }", b"'shape': (999999999999,), }"
    start, end = data.index(old), data.index(b"\n")  # the header is space-padded up to its \n
    grow = len(new) - len(old)
    assert data[end - grow:end] == b" " * grow
    (tmp_path / "g.npy").write_bytes(data[:start] + new + data[start + len(old):end - grow]
                                     + data[end:])
    with pytest.raises(GradientFileError, match=r"g\.npy: is cut short: its header promises "
                                                r"\(999999999999,\) values of float64"):
        read_gradients(tmp_path / "g.npy")


def test_other_zip_archives_and_non_number_arrays(tmp_path):
    with zipfile.ZipFile(tmp_path / "a.zip", "w") as z:
        z.writestr("readme.txt", "hello")
    with pytest.raises(GradientFileError, match=r"a\.zip: is a zip archive but neither an "
                                                r"\.npz of arrays nor a torch\.save file"):
        read_gradients(tmp_path / "a.zip")
    np.save(tmp_path / "s.npy", np.array(["a", "b"]))
    with pytest.raises(GradientFileError, match=r"s\.npy: holds <U1 values, not numbers"):
        read_gradients(tmp_path / "s.npy")
    path = save(tmp_path, [torch.ones(2, 2, dtype=torch.complex64)])
    with pytest.raises(GradientFileError, match=r"holds a complex64 tensor \(\[0\]\); "
                                                r"gradients must be float32 or float64"):
        read_gradients(path)


def test_inconsistent_samples_in_torch_files(tmp_path):
    grads = gradients(2)
    grads[1][2] = torch.ones(3, 1)
    with pytest.raises(GradientFileError, match=r"sample 2: w2 has shape \(3, 1\) but in sample "
                                                r"1 it has shape \(1, 3\)"):
        read_gradients(save(tmp_path, grads))
    grads = gradients(2)
    grads[0][1] = torch.tensor([0.0, float("nan"), 1.0])
    with pytest.raises(GradientFileError, match=r"sample 1: b1 holds NaN at \[1\]"):
        read_gradients(save(tmp_path, grads))


def test_absurdly_nested_torch_file(tmp_path):
    nested: list = [torch.ones(1)]
    for _ in range(40):
        nested = [nested]
    with pytest.raises(GradientFileError, match=r"nested more than 32 deep"):
        read_gradients(save(tmp_path, nested))

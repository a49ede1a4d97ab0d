"""Gradient files other people's code printed: numpy and torch output, lists and dicts of
them, labelled in the many ways people label them. Each file is made here the way such code
makes it (print, np.array2string, repr of tensors), never typed in by hand, except the seeds'
own excerpts."""

import contextlib
import io
import json
from collections import OrderedDict
from collections.abc import Callable, Iterable

import numpy as np
import pytest
import torch

from engine.files import readers
from engine.files.gradset import GradientFileError, GradientSet
from engine.files.readers import read_gradients
from engine.files.readers.names import ParamKey, canonical_names, parse_label
from engine.files.readers.text import parse_text

SIZES = (2, 3, 1)


def torch_gradients(n: int = 3, dtype: torch.dtype = torch.float32, graph: bool = False,
                    seed: int = 0) -> list[tuple[torch.Tensor, ...]]:
    """Per-sample gradients of a 2-3-1 net as an assignment computes them: (w1, b1, w2, b2)
    from autograd, one tuple per sample. graph=True keeps grad_fn on them."""
    torch.manual_seed(seed)
    net = torch.nn.Sequential(torch.nn.Linear(2, 3), torch.nn.Sigmoid(),
                              torch.nn.Linear(3, 1)).to(dtype)
    out = []
    for _ in range(n):
        x = torch.rand(2, dtype=dtype)
        loss = (net(x) - x.square().sum() / 2).square().sum()
        out.append(torch.autograd.grad(loss, list(net.parameters()), create_graph=graph))
    return out


def numpy_gradients(n: int = 3, spread: bool = False) -> list[dict[str, np.ndarray]]:
    """Per-sample w1, b1, w2, b2 as float64 numpy arrays; spread=True mixes magnitudes from
    1e-9 to 1e3, so numpy prints them in e-notation."""
    samples = []
    for grads in torch_gradients(n, torch.float64):
        sample = {name: g.numpy().copy() for name, g in zip(("w1", "b1", "w2", "b2"), grads,
                                                             strict=True)}
        if spread:
            sample["w1"] *= 10.0 ** np.array([[-9, 3], [0, -4], [2, -7]])
        samples.append(sample)
    return samples


def printed(*lines: Iterable[object] | Callable[[], None]) -> str:
    """What `print` writes for each item (or what a callable prints)."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        for item in lines:
            item() if callable(item) else print(item)
    return out.getvalue()


def read_text(tmp_path, text: str, name: str = "grads.txt", **kwargs) -> GradientSet:
    path = tmp_path / name
    path.write_bytes(text.encode())
    return read_gradients(path, **kwargs)


def assert_values(gs: GradientSet, expected: list[dict[str, np.ndarray]], rtol: float = 0,
                  atol: float = 0) -> None:
    assert gs.n_samples == len(expected)
    for got, want in zip(gs.samples, expected, strict=True):
        assert list(got) == ["w1", "b1", "w2", "b2"]
        for name in got:
            np.testing.assert_allclose(got[name], np.asarray(want[name]).reshape(got[name].shape),
                                       rtol=rtol, atol=atol, err_msg=name)


def as_dicts(grads: list[tuple[torch.Tensor, ...]]) -> list[dict[str, np.ndarray]]:
    return [{n: g.detach().double().numpy() for n, g in zip(("w1", "b1", "w2", "b2"), s,
                                                            strict=True)} for s in grads]


def pasted(text: str) -> str:
    """Text as the seeds' reports hold it: every line ends in two spaces."""
    return "".join(line + "  \n" for line in text.splitlines())


# The seeds' own files, as their authors pasted them.
SEED_002 = pasted("""dLdw3
[ [-1.1294516, -0.5752896, -1.1747783, -1.096516 , -1.0257739]]
dLdw2
[ [-0.0352469, -0.0341221, -0.0466714, -0.0492586, -0.0220244, -0.0230503,
    -0.0425868, -0.0493314, -0.0361005, -0.0348435],
  [ 0.0477482,  0.0462245,  0.0632248,  0.0667296,  0.029836 ,  0.0312258,
   0.0576914,  0.0668282,  0.0489047,  0.0472018],
  [ 0.0536075,  0.0518967,  0.0709831,  0.074918 ,  0.0334973,  0.0350576,
   0.0647708,  0.0750287,  0.0549058,  0.052994 ],
  [ 0.0170999,  0.0165542,  0.0226425,  0.0238976,  0.0106851,  0.0111828,
   0.0206608,  0.023933 ,  0.0175141,  0.0169042],
  [ 0.0212497,  0.0205716,  0.0281373,  0.0296971,  0.0132781,  0.0138966,
   0.0256748,  0.029741 ,  0.0217644,  0.0210065]]
dLdw1
[ [ 0.0025872,  0.0045841],
  [ 0.0014506,  0.0025703],
  [-0.0044858, -0.0079482],
  [-0.0021293, -0.0037728],
  [-0.0004203, -0.0007447],
  [-0.0041614, -0.0073735],
  [ 0.0022857,  0.00405 ],
  [ 0.003307 ,  0.0058596],
  [ 0.0017463,  0.0030942],
  [-0.0048133, -0.0085284]]
dLdb3
[-1.8975985]
dLdb2
[-0.0764258,  0.1035325,  0.116237 ,  0.0370777,  0.0460758]
dLdb1
[ 0.0065181,  0.0036547, -0.0113015, -0.0053645, -0.0010589, -0.0104844,
  0.0057587,  0.0083318,  0.0043996, -0.0121266]
""")

SEED_003_TORCH = """[tensor([-0.0016, -0.0005, -0.0013, -0.0004,  0.0073,  0.0023, -0.0128, -0.0041,
          0.0217,  0.0069, -0.0148, -0.0047,  0.0075,  0.0024, -0.0180, -0.0058,
          0.0033,  0.0011,  0.0012,  0.0004]),
 tensor([-0.0017, -0.0014,  0.0074, -0.0131,  0.0223, -0.0152,  0.0077, -0.0185,
          0.0034,  0.0013]),
 tensor([ 0.0025,  0.0053,  0.0053,  0.0044,  0.0034,  0.0037,  0.0050,  0.0029,
          0.0046,  0.0028]),
 tensor([ 0.0073,  0.0079,  0.0187, -0.0500,  0.1119, -0.0817,  0.0220, -0.1226,
          0.1163, -0.0183]),
 tensor([-0.7703, -0.6855, -0.7232, -0.9646, -0.8631, -0.7418, -1.0050, -0.7975,
         -0.8975, -0.9515]),
 tensor([-1.6089])]
"""

SEED_003_NUMPY = pasted("""[array([[ -0.00164108, -0.00052501],
       [ -0.00132329, -0.00042334],
       [  0.00725804,  0.00232196]]),
array([-0.00168426, -0.00135811,  0.00744899]),
array([[ 0.00254151,  0.0052963 ,  0.0053351 ],
       [ 0.00275756,  0.00574654,  0.00578863]]),
array([ 0.00730192,  0.00792266]),
array([-0.77028648, -0.68547447]),
array([-1.6088857])]
""")


def test_seed_002_labelled_dLdw_blocks_two_samples(tmp_path):
    gs = read_text(tmp_path, SEED_002 + "\nGradient of loss from scratch\n\n" + SEED_002)
    assert gs.n_samples == 2
    assert gs.names == ["w1", "b1", "w2", "b2", "w3", "b3"]
    assert gs.shape("w3") == (1, 5) and gs.shape("w2") == (5, 10) and gs.shape("b3") == (1,)
    assert gs.samples[1]["w2"][0, 6] == -0.0425868  # a wrapped row stays one row
    assert gs.samples[0]["b1"][-1] == -0.0121266
    assert gs.layout is None and gs.engine is None and gs.spec is None
    assert any("dLdw3" in note and "w3" in note for note in gs.notes)
    assert any("layout" in note for note in gs.notes)


def test_seed_003_printed_torch_list_of_flat_gradients(tmp_path):
    gs = read_text(tmp_path, SEED_003_TORCH)
    assert gs.n_samples == 1 and gs.dtype == "float32"
    assert [gs.shape(n) for n in gs.names] == [(20,), (10,), (10,), (10,), (10,), (1,)]
    assert gs.samples[0]["b3"][0] == -1.6089
    assert any("in order as w1, b1" in note for note in gs.notes)


def test_seed_003_printed_numpy_list_with_trailing_spaces(tmp_path):
    gs = read_text(tmp_path, SEED_003_NUMPY)
    assert [gs.shape(n) for n in gs.names] == [(3, 2), (3,), (2, 3), (2,), (2,), (1,)]
    assert gs.dtype == "float64"  # numpy's repr leaves out float64 only
    assert gs.samples[0]["w1"][2, 0] == 0.00725804


def numpy_labelled(samples, weight: Callable[[int], str], bias: Callable[[int], str],
                   interleaved: bool, section: bool = False) -> Callable[[], None]:
    """Prints each sample as labelled numpy arrays, the way the seeds' authors did."""
    def run() -> None:
        for s in samples:
            layers = range(1, len(s) // 2 + 1)
            if interleaved:
                for layer in layers:
                    print(weight(layer)), print(s[f"w{layer}"])
                    print(bias(layer)), print(s[f"b{layer}"])
                continue
            for kind, label in (("w", weight), ("b", bias)):
                if section:
                    print(f"autograd_{kind}")
                for layer in layers:
                    print(label(layer))
                    print(s[f"{kind}{layer}"])
    return run


@pytest.mark.parametrize("interleaved", [False, True])
def test_numpy_printed_weights_then_biases_crlf_e_notation_wrapped(tmp_path, interleaved):
    samples = numpy_gradients(3, spread=True)
    with np.printoptions(floatmode="unique", linewidth=40):
        text = printed(numpy_labelled(samples, "weight_{}".format, "bias_{}".format,
                                      interleaved, section=True))
    assert "e-" in text and max(map(len, text.splitlines())) <= 40
    assert ("autograd_w" in text) != interleaved
    gs = read_text(tmp_path, text.replace("\n", "\r\n"))
    assert_values(gs, samples)  # exact: numpy printed every digit
    assert any("weight_1" in note for note in gs.notes)


LABELS = {
    "dLdw3": ("dLdw{}", "dLdb{}"),
    "w1": ("w{}", "b{}"),
    "W1": ("W{}", "B{}"),
    "W_1 =": ("W_{} =", "b_{} ="),
    "grad_w1": ("grad_w{}", "grad_b{}"),
    "dL/dw1:": ("dL/dw{}:", "dL/db{}:"),
    "weights1": ("weights{}", "biases{}"),
    "w1.grad": ("w{}.grad", "b{}.grad"),
    "fc1.weight": ("fc{}.weight", "fc{}.bias"),
    "layer1 weight": ("layer{} weight", "layer{} bias"),
    "Layer 1 - weights": ("Layer {} - weights", "Layer {} - biases"),
    "gradient of weight of layer 1": ("gradient of weight of layer {}",
                                      "gradient of bias of layer {}"),
    "net.hidden1.weight.grad": ("net.hidden{}.weight.grad", "net.hidden{}.bias.grad"),
}


@pytest.mark.parametrize("style", sorted(LABELS))
def test_label_styles_read_as_w1_b1(tmp_path, style):
    weight, bias = LABELS[style]
    samples = numpy_gradients(2)
    with np.printoptions(floatmode="unique"):
        gs = read_text(tmp_path, printed(numpy_labelled(
            samples, weight.format, bias.format, interleaved=True)))
    assert_values(gs, samples)


@pytest.mark.parametrize("first", [0, 1])
def test_module_and_zero_based_names_are_numbered_from_one(tmp_path, first):
    """dense.0, dense.2 (an nn.Sequential with activations between) and w_0, w_1 alike."""
    samples = numpy_gradients(2)
    with np.printoptions(floatmode="unique"):
        dense = printed(numpy_labelled(samples, lambda i: f"dense.{2 * (i - 1)}.weight",
                                       lambda i: f"dense.{2 * (i - 1)}.bias", True))
        zero = printed(numpy_labelled(samples, lambda i: f"w_{i - 1 + first}",
                                      lambda i: f"b_{i - 1 + first}", True))
    assert_values(read_text(tmp_path, dense), samples)
    gs = read_text(tmp_path, zero)
    assert_values(gs, samples)
    assert any("numbered from 0" in note for note in gs.notes) == (first == 0)


def test_printed_torch_lists_one_per_sample(tmp_path):
    grads = torch_gradients(3)
    gs = read_text(tmp_path, printed(*[list(g) for g in grads]))
    assert gs.dtype == "float32"
    assert_values(gs, as_dicts(grads), rtol=1e-3, atol=1e-4)  # torch prints 4 decimals


def test_printed_autograd_tuples_with_grad_fn_and_dtype(tmp_path):
    grads = torch_gradients(2, torch.float64, graph=True)
    torch.set_printoptions(precision=12)
    try:
        text = printed(*grads)
    finally:
        torch.set_printoptions(profile="default")
    assert "grad_fn=<" in text and "dtype=torch.float64" in text
    gs = read_text(tmp_path, text)
    assert gs.dtype == "float64"
    # float64, MulBackward0 and the like are names, so no stray numbers join the values.
    assert_values(gs, as_dicts(grads), rtol=1e-11, atol=1e-12)


def test_requires_grad_tensors_and_parameter_reprs(tmp_path):
    grads = torch_gradients(1)
    text = printed(*[torch.nn.Parameter(g.clone()) for g in grads[0]])
    assert "Parameter containing" in text and "requires_grad=True" in text
    assert_values(read_text(tmp_path, text), as_dicts(grads), rtol=1e-3, atol=1e-4)


def test_printed_list_of_numpy_arrays_keeps_float32(tmp_path):
    grads = torch_gradients(2)
    text = printed(*[[g.numpy() for g in s] for s in grads])
    assert "dtype=float32" in text
    gs = read_text(tmp_path, text)
    assert gs.dtype == "float32"
    assert_values(gs, as_dicts(grads), rtol=1e-6)  # numpy prints 8 digits


def test_printed_dicts_and_state_dict_style_names(tmp_path):
    grads = torch_gradients(2)
    names = ("fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias")
    text = printed(*[{n: g for n, g in zip(names, s, strict=True)} for s in grads],
                   *[OrderedDict(zip(names, s, strict=True)) for s in grads])
    gs = read_text(tmp_path, text)
    assert_values(gs, as_dicts(grads) * 2, rtol=1e-3, atol=1e-4)
    assert any("fc1, fc2 taken as layers 1..2" in note for note in gs.notes)


def test_python_lists_from_tolist(tmp_path):
    samples = numpy_gradients(2)
    gs = read_text(tmp_path, printed(*[[a.tolist() for a in s.values()] for s in samples]))
    assert_values(gs, samples)


def test_unlabelled_arrays_one_after_another_are_cut_where_shapes_repeat(tmp_path):
    samples = numpy_gradients(4)
    with np.printoptions(floatmode="unique"):
        gs = read_text(tmp_path, printed(*[a for s in samples for a in s.values()]))
    assert_values(gs, samples)
    assert any("16 unnamed arrays read as 4 samples of 4" in note for note in gs.notes)


def test_unlabelled_weights_then_biases_are_told_apart_by_dimension(tmp_path):
    samples = numpy_gradients(2)
    lists = [[s["w1"], s["w2"], s["b1"], s["b2"]] for s in samples]
    gs = read_text(tmp_path, printed(*[repr(x) for x in lists]))
    assert_values(gs, samples, rtol=1e-6, atol=1e-9)  # numpy prints 8 digits
    assert any("2-D arrays read as weights" in note for note in gs.notes)


def test_x_y_and_loss_are_kept_beside_their_sample(tmp_path):
    samples = numpy_gradients(3)
    rng = np.random.default_rng(0)
    xs, ys, losses = rng.uniform(size=(3, 2)), rng.uniform(size=(3, 1)), rng.uniform(size=3)

    def run() -> None:
        for k, s in enumerate(samples):
            print(f"sample {k + 1}")
            print("x =", xs[k])
            print("y =", ys[k])
            print("loss:", losses[k])
            print(list(s.values()))

    with np.printoptions(floatmode="unique"):
        gs = read_text(tmp_path, printed(run))
    assert_values(gs, samples)
    np.testing.assert_array_equal(gs.x, xs)
    np.testing.assert_array_equal(gs.y, ys)
    np.testing.assert_array_equal(gs.losses, losses)


def test_utf16_text_as_powershell_redirects_it(tmp_path):
    samples = numpy_gradients(1)
    with np.printoptions(floatmode="unique"):
        text = printed(numpy_labelled(samples, "w{}".format, "b{}".format, True))
    path = tmp_path / "grads.txt"
    path.write_bytes(text.replace("\n", "\r\n").encode("utf-16"))
    assert_values(read_gradients(path), samples)


def test_log_prefixes_in_brackets_are_prose(tmp_path):
    samples = numpy_gradients(2)
    with np.printoptions(floatmode="unique"):
        text = printed(numpy_labelled(samples, "[INFO] grad of w{}:".format,
                                      "[INFO] grad of b{}:".format, True), "[] done")
    assert_values(read_text(tmp_path, text), samples)


def test_terminal_colour_codes_are_ignored(tmp_path):
    grads = torch_gradients(1)
    labels = ["\x1b[1;32mw1\x1b[0m", "b1", "\x1b[1;32mw2\x1b[0m", "b2"]
    text = printed(*[x for label, g in zip(labels, grads[0], strict=True) for x in (label, g)])
    assert_values(read_text(tmp_path, text), as_dicts(grads), rtol=1e-3, atol=1e-4)


def test_model_json_beside_the_file_gives_layout_and_network(tmp_path):
    model = {"sizes": list(SIZES), "activations": ["sigmoid", "identity"],
             "loss": "squared_error", "layout": "out_in"}
    (tmp_path / "model.json").write_text(json.dumps(model))
    gs = read_text(tmp_path, printed(*[list(g) for g in torch_gradients(1)]))
    assert gs.layout == "out_in" and gs.spec.sizes == SIZES
    assert any("layout out_in and network taken from" in note for note in gs.notes)


def test_model_spec_cuts_unlabelled_runs_of_equal_shapes(tmp_path):
    """Without a network, w (2, 2), b (2,), w (2, 2), b (2,) could be one sample of a 2-layer
    net or two samples of a 1-layer one; the known network decides."""
    from engine.net.spec import NetworkSpec

    rng = np.random.default_rng(0)
    arrays = [rng.normal(size=(2, 2)) if i % 2 == 0 else rng.normal(size=2) for i in range(8)]
    with np.printoptions(floatmode="unique"):
        text = printed(*arrays)
    assert read_text(tmp_path, text).n_samples == 4
    spec = NetworkSpec((2, 2, 2), ("sigmoid", "identity"))
    assert read_text(tmp_path, text, model_spec=spec).n_samples == 2


# Names, one rule at a time.
@pytest.mark.parametrize(("label", "kind", "layer", "style"), [
    ("weight_1", "w", "1", "numbered"), ("bias_1", "b", "1", "numbered"),
    ("dLdw3", "w", "3", "numbered"), ("dLdb3", "b", "3", "numbered"),
    ("W1", "w", "1", "numbered"), ("grad_w12", "w", "12", "numbered"),
    ("b[2] =", "b", "2", "numbered"), ("autograd_w\nweight_2", "w", "2", "numbered"),
    ("layer 2\nweight", "w", "2", "numbered"), ("w1\nParameter containing:", "w", "1", "numbered"),
    ("layer1 weight", "w", "1", "numbered"), ("bias of layer 3", "b", "3", "numbered"),
    ("fc1.weight", "w", "fc1", "module"), ("dense.0.weight", "w", "dense.0", "module"),
    ("'model.layers.2.bias':", "b", "model.layers.2", "module"),
    ("0.weight", "w", "0", "module"), ("weight", "w", "", "module"),
    ("grad_weight_1", "w", "1", "numbered"),
])
def test_parse_label(label, kind, layer, style):
    assert parse_label(label) == ParamKey(kind, layer, style)


@pytest.mark.parametrize(("label", "expected"), [
    ("x =", "x"), ("input:", "x"), ("target", "y"), ("The loss value is", "loss"),
    ("prediction", None), ("epoch 3", None), ("batch 1", None), ("new1", None),
    ("Parameter containing:", ""), (", ", ""), ("w1 follows\nprediction", None),
])
def test_parse_label_extras_and_non_names(label, expected):
    assert parse_label(label) == expected


def test_names_with_digits_are_not_numbers():
    text = "weight_1 float64 MulBackward0 w2x 3rd\n[1.5, 2.5]\n"
    entries = parse_text(text, "f")
    assert len(entries) == 1
    assert entries[0].label == "weight_1 float64 MulBackward0 w2x 3rd"
    np.testing.assert_array_equal(entries[0].node.values, [1.5, 2.5])


def test_canonical_names_order_modules_by_their_numbers():
    keys = [ParamKey(k, m, "module") for m in ("fc10", "fc2", "fc1") for k in "wb"]
    mapping, _ = canonical_names(keys, "f")
    assert [mapping[ParamKey("w", m, "module")] for m in ("fc1", "fc2", "fc10")] == \
        ["w1", "w2", "w3"]
    keys = [ParamKey(k, m, "module") for m in ("hidden", "out") for k in "wb"]
    mapping, _ = canonical_names(keys, "f")
    assert mapping[ParamKey("b", "out", "module")] == "b2"


# Bad input: one line naming the file and what is wrong, whatever the file holds.
def _big_numpy() -> str:
    return "w1\n" + printed(np.arange(2000.0).reshape(40, 50))


def _big_torch() -> str:
    return "w1 = " + printed(torch.arange(2000.0).reshape(40, 50))


def _nan_file() -> str:
    samples = numpy_gradients(2)
    samples[1]["w1"][0, 1] = np.nan
    return printed(numpy_labelled(samples, "w{}".format, "b{}".format, True))


def _inf_file() -> str:
    samples = numpy_gradients(2)
    samples[0]["b2"][0] = -np.inf
    return printed(*[list(s.values()) for s in samples])


def _reshaped_file() -> str:
    samples = numpy_gradients(2)
    samples[1]["w1"] = samples[1]["w1"].reshape(2, 3)
    return printed(numpy_labelled(samples, "w{}".format, "b{}".format, True))


def _truncated() -> str:
    text = printed(*[list(g) for g in torch_gradients(2)])
    return text[: len(text) * 2 // 3]


BAD = {
    "empty": ("", r"is empty"),
    "blank": (" \n\r\n\t", r"is empty"),
    "binary junk": (bytes(range(256)) * 4, r"is binary data, but not a \.npy, \.npz or "
                                           r"torch\.save file"),
    "prose only": ("I computed the gradients and they agree.\n", r"holds no gradients"),
    "truncated": (_truncated, r"line 4: the '\[' opened here is never closed; the file looks "
                              r"cut short"),
    "ragged": ("w1 = [[1.0, 2.0], [3.0]]\nb1 = [1.0, 2.0]\n",
               r"line 1: the array that starts here is ragged: its rows differ in length "
               r"\(2 and 1 values\)"),
    "ragged mix": ("w1 = [[1.0, 2.0], 3.0]\n", r"ragged: it mixes numbers and lists"),
    "word in array": ("w1 = [[1.0, abc]]\n", r"line 1: 'abc' is not a number \(in the '\[' "
                                             r"that starts on line 1\)"),
    "number-like junk": ("w1 = [[1.0, 2.5x]]\n", r"'2\.5x' is not a number"),
    "numpy summary": (_big_numpy, r"line \d+: values are left out \('\.\.\.'\): .* "
                                  r"np\.set_printoptions\(threshold=sys\.maxsize\)"),
    "torch summary": (_big_torch, r"values are left out .*profile='full'"),
    "absurd nesting": ("[" * 1_000_000, r"line 1: brackets nested more than 32 deep"),
    "mismatched bracket": ("w1 = [[1.0, 2.0)]\n", r"'\)' closes the '\[' opened on line 1"),
    "NaN": (_nan_file, r"sample 2: w1 holds NaN at \[0, 1\]"),
    "Inf": (_inf_file, r"sample 1: b2 holds an infinite value at \[0\]"),
    "shapes differ": (_reshaped_file, r"sample 2: w1 has shape \(2, 3\) but in sample 1 it "
                                      r"has shape \(3, 2\)"),
    "bias missing": ("w1 = [[1.0]]\nb1 = [1.0]\nw2 = [[1.0]]\n",
                     r"has w1, b1, w2 but no b2; a network of 2 layers needs w1, b1, w2, b2"),
    "unnamed among named": ("w1 = [[1.0]]\n[2.0]\n", r"an array with no name follows named "
                                                     r"ones \(w1\)"),
    "two naming styles": ("w1 = [[1.0]]\nb1 = [1.0]\nfc2.weight = [[1.0]]\nfc2.bias = [1.0]\n",
                          r"mixes numbered names \(layer 1\) with module names \(fc2\)"),
    "single flat matrix": (lambda: printed(np.ones((5, 13))),
                           r"holds a single array of shape \(5, 13\), not named gradients"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_text_is_refused_with_one_line(tmp_path, case):
    content, message = BAD[case]
    content = content() if callable(content) else content
    path = tmp_path / "their_autograd.dat"
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    with pytest.raises(GradientFileError, match=message) as caught:
        read_gradients(path)
    text = str(caught.value)
    assert text.startswith(f"{path}: ") and "\n" not in text


def test_a_file_over_the_size_limit_is_not_read(tmp_path, monkeypatch):
    monkeypatch.setattr(readers, "MAX_FILE_BYTES", 2**20)
    path = tmp_path / "huge.txt"
    path.write_bytes(b"w1 = [" + b"1.0, " * 300_000 + b"]")
    with pytest.raises(GradientFileError, match=r"huge\.txt: is 1\.4 MB; gradient files over "
                                                 r"1 MB are not read"):
        read_gradients(path)


def test_missing_file_and_folder(tmp_path):
    with pytest.raises(GradientFileError, match=r"none\.dat: cannot be read \(No such file"):
        read_gradients(tmp_path / "none.dat")
    with pytest.raises(GradientFileError, match=r"is a folder, not a file"):
        read_gradients(tmp_path)

"""The notebook API (backprop_explorer): check a function of this process or a file, export and
compare, with the command line's numbers; a report prints the CLI's table and shows a coloured
one in Jupyter."""

from pathlib import Path

import numpy as np
import pytest

import backprop_explorer as bpx
from engine.errors import UserInputError

ROOT = Path(__file__).resolve().parent.parent


def sigmoid(z):
    return 1 / (1 + np.exp(-z))


def gradients(params, x, y, factor=2.0):
    layers = len(params) // 2
    a = [x]
    for layer in range(1, layers + 1):
        z = params[f"w{layer}"] @ a[-1] + params[f"b{layer}"]
        a.append(z if layer == layers else sigmoid(z))
    delta = factor * (a[-1] - y)
    grads = {}
    for layer in range(layers, 0, -1):
        grads[f"dW{layer}"] = np.outer(delta, a[layer - 1])
        grads[f"db{layer}"] = delta
        if layer > 1:
            delta = (params[f"w{layer}"].T @ delta) * a[layer - 1] * (1 - a[layer - 1])
    return grads


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_a_notebooks_function_agrees_and_the_report_reads_as_the_cli(dtype):
    report = bpx.check(gradients, samples=30, dtype=dtype)
    assert report.agree and report.first_disagreement is None and report.samples == 30
    text = str(report)
    assert "Verdict: your code and torch agree" in text and "A: torch autograd" in text
    page = report._repr_html_()
    assert page.count("<tr style='background:#e8f5e9'>") == 6 and "<b>w2</b>" in page


def test_a_mistake_is_located_and_named_and_shown_red():
    def halved(params, x, y):
        return gradients(params, x, y, factor=1.0)

    report = bpx.check(halved, samples=30)
    assert not report.agree and report.first_disagreement == "b3"
    assert report.reproduced_by == "dropped_factor_2"
    assert "#ffebee" in report._repr_html_() and "halved" in str(report)


def test_an_exception_in_a_notebooks_function_reaches_the_notebook():
    def broken(params, x, y):
        raise ZeroDivisionError("mine")

    with pytest.raises(ZeroDivisionError, match="mine"):
        bpx.check(broken, samples=3)
    with pytest.raises(UserInputError, match="returned list"):
        bpx.check(lambda params, x, y: [1], samples=3)


def test_a_file_is_checked_in_a_process_of_its_own():
    report = bpx.check(ROOT / "resources" / "my_backprop.py", samples=10, seed=4)
    assert report.agree and report.output == ""


def test_export_then_compare(tmp_path):
    written = bpx.export(tmp_path, samples=12, mistake="forgotten_activation_derivative")
    assert sorted(p.rsplit("/", 1)[1] for p in written) == [
        "data.csv", "model.json", "my_autograd.dat", "torch_autograd.dat"]
    report = bpx.compare(tmp_path / "torch_autograd.dat", tmp_path / "my_autograd.dat")
    assert not report.agree and report.reproduced_by == "forgotten_activation_derivative"
    assert report.to_json()["first_disagreement"] == report.first_disagreement


def batch_gradients(params, x, y, factor=2.0):
    """The whole batch at once: x (N, n0), y (N, nL), a sample a row."""
    print("batch of", x.shape)
    layers = len(params) // 2
    a = [x]
    for layer in range(1, layers + 1):
        z = a[-1] @ params[f"w{layer}"].T + params[f"b{layer}"]
        a.append(z if layer == layers else sigmoid(z))
    delta = factor * (a[-1] - y)
    grads = {}
    for layer in range(layers, 0, -1):
        grads[f"w{layer}"] = np.einsum("no,ni->noi", delta, a[layer - 1])
        grads[f"b{layer}"] = delta
        if layer > 1:
            delta = (delta @ params[f"w{layer}"]) * a[layer - 1] * (1 - a[layer - 1])
    return grads


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_a_notebooks_batch_function_is_called_once_and_agrees(dtype, capsys):
    report = bpx.check(batch_gradients, samples=30, dtype=dtype)
    assert report.agree and report.calls == "batch" and report.samples == 30
    assert capsys.readouterr().out == "batch of (30, 2)\n"
    assert report.to_json()["calls"] == "batch"
    halved = bpx.check(lambda p, x, y: batch_gradients(p, x, y, factor=1.0), samples=30,
                       dtype=dtype)
    assert halved.calls == "batch" and halved.reproduced_by == "dropped_factor_2"


def mean(params, x, y):
    """The batch's mean gradient, as a training step wants it; it takes one sample too."""
    grads = batch_gradients(params, np.atleast_2d(x), np.atleast_2d(y))
    return {name: g.mean(axis=0) for name, g in grads.items()}


def test_a_notebooks_mean_over_the_batch_is_called_per_sample_or_says_why_it_fails():
    report = bpx.check(mean, samples=10)
    assert report.agree and report.calls == "per sample"
    assert any("a sum or a mean over the samples" in note for note in report.notes)

    def mean_of_a_batch_only(params, x, y):
        if x.ndim == 1:
            raise ValueError("I take the batch")
        return mean(params, x, y)

    with pytest.raises(ValueError, match="I take the batch") as caught:
        bpx.check(mean_of_a_batch_only, samples=10)
    assert "a sum or a mean" in "".join(caught.value.__notes__)


def test_a_function_for_one_sample_never_sees_the_batch_calls_exception(capsys):
    def loud(params, x, y):
        print("sample of", x.shape)
        return gradients(params, x, y)

    report = bpx.check(loud, samples=5)
    assert report.agree and report.calls == "per sample"
    assert capsys.readouterr().out == "sample of (2,)\n" * 5



def test_one_sample_is_called_as_one_sample():
    one = bpx.check(mean, samples=1)
    assert one.agree and one.calls == "per sample"
    assert not any("batch" in note for note in one.notes)
    with pytest.raises(ValueError, match="einstein sum"):    # x (2,): it takes only batches
        bpx.check(batch_gradients, samples=1)


def stages_of(params, x, y, derivative=True):
    """One sample's stages, as students name them."""
    layers = len(params) // 2
    a, out = [x], {}
    for layer in range(1, layers + 1):
        z = params[f"w{layer}"] @ a[-1] + params[f"b{layer}"]
        a.append(z if layer == layers else sigmoid(z))
        out[f"z{layer}"], out[f"h{layer}"] = z, a[-1]
    out["loss"] = float(np.sum((a[-1] - y) ** 2))
    delta = 2 * (a[-1] - y)
    for layer in range(layers, 0, -1):
        out[f"delta{layer}"] = delta
        out[f"dW{layer}"] = np.outer(delta, a[layer - 1])
        if layer > 1:
            up = params[f"w{layer}"].T @ delta
            delta = up * a[layer - 1] * (1 - a[layer - 1]) if derivative else up
    return out


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_stages_of_the_notebook_are_compared_and_the_first_that_departs_named(dtype):
    report = bpx.check(gradients, stages=stages_of, samples=20, dtype=dtype)
    assert report.agree and report.first_stage is None and report.stage_calls == "per sample"
    assert {"z1", "a1", "y_hat", "loss", "dL/dz2", "dL/dw1"} <= set(report.stages.rows)
    assert "first stage that departs from torch: none" in str(report)
    wrong = bpx.check(gradients, samples=20, dtype=dtype,
                      stages=lambda p, x, y: stages_of(p, x, y, derivative=False))
    assert wrong.agree and wrong.first_stage == "dL/dz2"    # the gradients are right
    assert wrong.to_json()["first_stage"] == "dL/dz2" and "dL/dz2" in wrong._repr_html_()


def test_stages_go_with_a_function_and_a_files_own_are_compared():
    with pytest.raises(UserInputError, match="stages= goes with a function"):
        bpx.check(ROOT / "resources" / "my_backprop.py", stages=stages_of, samples=3)
    report = bpx.check(ROOT / "resources" / "my_backprop_batch.py", samples=10)
    assert report.agree and report.calls == "batch" and report.first_stage is None


def batch_stages(params, x, y):
    """The batch's stages, a sample a row; the loss one number for the whole batch."""
    layers = len(params) // 2
    a, out = [x], {}
    for layer in range(1, layers + 1):
        z = a[-1] @ params[f"w{layer}"].T + params[f"b{layer}"]
        a.append(z if layer == layers else sigmoid(z))
        out[f"z{layer}"], out[f"a{layer}"] = z, a[-1]
    out["loss"] = float(np.sum((a[-1] - y) ** 2))
    out["dout"] = 2 * (a[-1] - y)
    return out


def test_a_notebooks_stages_for_the_whole_batch_are_read_sample_by_sample():
    report = bpx.check(batch_gradients, stages=batch_stages, samples=12, dtype="float64")
    assert report.calls == report.stage_calls == "batch" and report.first_stage is None
    assert set(report.stages.rows) == {"z1", "a1", "z2", "a2", "z3", "y_hat", "dL/dy_hat"}
    assert any("'loss', one number for the whole batch, is left out" in note
               for note in report.notes)

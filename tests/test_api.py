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

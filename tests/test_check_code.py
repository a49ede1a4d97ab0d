"""`check`: a student's own gradients() run beside torch. Files written the way students write
them agree in float32 and float64; each catalogued mistake written by hand is caught, located
and named; broken or hostile code is one message (exit 2), never a hang or a traceback of
ours."""

import json
import os
import select
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from engine.files.datasets import default_set
from engine.files.readers import read_gradients
from engine.net.params import init_params
from engine.net.spec import DEFAULT_PRESET, preset
from engine.usercode import UserCode, UserCodeError, check_code

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = 40

# the forward pass every student file below shares, written as students write it
FORWARD = """
import numpy as np

def sigmoid(z):
    return 1 / (1 + np.exp(-z))

def forward(params, x):
    L = len(params) // 2
    zs, acts = [], [x]
    for l in range(1, L + 1):
        z = params["w%d" % l] @ acts[-1] + params["b%d" % l]
        zs.append(z)
        acts.append(z if l == L else sigmoid(z))
    return zs, acts
"""

LOOPS = """
def gradients(params, x, y):
    # one element at a time, as the notes' sums are written
    L = len(params) // 2
    zs, acts = forward(params, x)
    delta = [2 * (acts[-1][i] - y[i]) for i in range(len(y))]
    grads = {}
    for l in range(L, 0, -1):
        w = params["w%d" % l]
        prev = acts[l - 1]
        gw = np.zeros(w.shape)
        for i in range(w.shape[0]):
            for j in range(w.shape[1]):
                gw[i, j] = delta[i] * prev[j]
        grads["w%d" % l] = gw
        grads["b%d" % l] = np.array(delta)
        if l > 1:
            new = []
            for j in range(w.shape[1]):
                s = 0.0
                for i in range(w.shape[0]):
                    s += w[i, j] * delta[i]
                new.append(s * prev[j] * (1 - prev[j]))
            delta = new
    return grads
"""

VECTORISED = (ROOT / "resources" / "my_backprop.py").read_text()

IN_OUT = """
import numpy as np

def gradients(params, x, y):
    # weights as (in, out): z = a·W + b, rows are samples
    L = len(params) // 2
    a = [x.reshape(1, -1)]
    for l in range(1, L + 1):
        z = a[-1] @ params["w%d" % l] + params["b%d" % l]
        a.append(z if l == L else 1 / (1 + np.exp(-z)))
    d = 2 * (a[-1] - y.reshape(1, -1))
    out = {}
    for l in range(L, 0, -1):
        out["dW%d" % l] = a[l - 1].T @ d
        out["db%d" % l] = d            # (1, n)
        if l > 1:
            d = (d @ params["w%d" % l].T) * a[l - 1] * (1 - a[l - 1])
    return out
"""

LISTS = """
def gradients(params, x, y):
    L = len(params) // 2
    zs, acts = forward(params, x)
    delta = 2 * (acts[-1] - y)
    grads = {}
    for l in range(L, 0, -1):
        grads["weight_%d" % l] = np.outer(delta, acts[l - 1]).tolist()
        grads["bias_%d" % l] = [[float(v) for v in delta]]
        if l > 1:
            delta = (params["w%d" % l].T @ delta) * acts[l - 1] * (1 - acts[l - 1])
    return grads
"""

GLOBALS = """
LOSS_FACTOR = 2.0
calls = 0
cache = {}

def gradients(params, x, y):
    global calls
    calls += 1
    cache["last"] = x          # state kept between calls, as scripts do
    L = len(params) // 2
    zs, acts = forward(params, x)
    delta = LOSS_FACTOR * (acts[-1] - y)
    grads = {}
    for l in range(L, 0, -1):
        grads["fc%d.weight" % l] = np.outer(delta, acts[l - 1])
        grads["fc%d.bias" % l] = delta
        if l > 1:
            delta = (params["w%d" % l].T @ delta) * acts[l - 1] * (1 - acts[l - 1])
    return grads
"""


def student(tmp_path: Path, body: str, forward: bool = True, name: str = "mine.py") -> Path:
    path = tmp_path / name
    path.write_text((FORWARD if forward else "") + textwrap.dedent(body))
    return path


def check(path: Path, dtype: str = "float32", layout: str = "out_in", **options):
    spec = preset(DEFAULT_PRESET).with_options(dtype=dtype, layout=layout)
    return check_code(UserCode.parse(str(path)), spec, init_params(spec, 3),
                      default_set(spec, SAMPLES, 3), **options)


def test_the_child_imports_engine_from_the_folder_that_holds_it(tmp_path, monkeypatch):
    """The user's code runs in its own folder: its child finds engine/ on PYTHONPATH, where
    it is not installed too."""
    import engine.usercode

    envs = []
    popen = subprocess.Popen

    def recorded(*args, **kwargs):
        envs.append(kwargs["env"])
        return popen(*args, **kwargs)

    monkeypatch.setattr(engine.usercode.subprocess, "Popen", recorded)
    assert check(student(tmp_path, LOOPS)).comparison.report.agree
    first = Path(envs[0]["PYTHONPATH"].split(os.pathsep)[0])
    assert (first / "engine" / "usercode_child.py").is_file()


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("body, forward, layout", [
    (LOOPS, True, "out_in"), (VECTORISED, False, "out_in"), (IN_OUT, False, "in_out"),
    (LISTS, True, "out_in"), (GLOBALS, True, "out_in")],
    ids=["loops", "vectorised", "in_out", "lists", "globals"])
def test_a_correct_student_file_agrees(tmp_path, body, forward, layout, dtype):
    checked = check(student(tmp_path, body, forward), dtype, layout)
    report = checked.comparison.report
    assert report.agree, report.diagnosis
    assert report.samples == SAMPLES and set(report.params) == {"w1", "b1", "w2", "b2",
                                                                 "w3", "b3"}


def mistaken(body: str, old: str, new: str) -> str:
    assert old in body
    return body.replace(old, new)


BACK = "delta = (params[\"w%d\" % l].T @ delta) * acts[l - 1] * (1 - acts[l - 1])"
VECTOR = """
def gradients(params, x, y):
    L = len(params) // 2
    zs, acts = forward(params, x)
    delta = 2 * (acts[-1] - y)
    grads = {}
    for l in range(L, 0, -1):
        grads["w%d" % l] = np.outer(delta, acts[l - 1])
        grads["b%d" % l] = delta
        if l > 1:
            """ + BACK + """
    return grads
"""
ACCUMULATED = """
total = {}

def gradients(params, x, y):
    L = len(params) // 2
    zs, acts = forward(params, x)
    delta = 2 * (acts[-1] - y)
    for l in range(L, 0, -1):
        for name, g in (("w%d" % l, np.outer(delta, acts[l - 1])), ("b%d" % l, delta)):
            total[name] = total.get(name, 0) + g     # never reset between samples
        if l > 1:
            """ + BACK + """
    return {name: g.copy() for name, g in total.items()}
"""


@pytest.mark.parametrize("mistake, body, first", [
    ("forgotten_activation_derivative",
     mistaken(VECTOR, BACK, "delta = params[\"w%d\" % l].T @ delta"), "b2"),
    ("sigmoid_derivative_of_activation",
     mistaken(VECTOR, BACK, "delta = (params[\"w%d\" % l].T @ delta) * sigmoid(acts[l - 1])"
              " * (1 - sigmoid(acts[l - 1]))"), "b2"),
    ("dropped_factor_2", mistaken(VECTOR, "delta = 2 * (acts[-1] - y)",
                                  "delta = acts[-1] - y"), "b3"),
    ("untransposed_weight",     # where it can be made: w2 is square (10x10), w3 is not
     mistaken(VECTOR, BACK, "w = params[\"w%d\" % l]\n            delta = ((w if l == 2 else w.T)"
              " @ delta) * acts[l - 1] * (1 - acts[l - 1])"), "b1"),
    ("accumulated_gradients", ACCUMULATED, "b3"),
])
def test_each_catalogued_mistake_written_by_hand_is_caught_located_and_named(
        tmp_path, mistake, body, first):
    checked = check(student(tmp_path, body))
    report = checked.comparison.report
    assert not report.agree
    assert report.first_disagreement == first
    assert report.reproduced_by is not None and mistake in report.reproduced_by, (
        report.reproduced_by, report.diagnosis)


# broken or hostile code
def refused(tmp_path, body: str, forward: bool = False, **options) -> UserCodeError:
    with pytest.raises(UserCodeError) as caught:
        check(student(tmp_path, body, forward), **options)
    return caught.value


def test_an_exception_shows_its_own_frames_with_file_and_line(tmp_path):
    error = refused(tmp_path, """
        import numpy as np
        def helper(v):
            return v[5]
        def gradients(params, x, y):
            print("working on", x.shape)
            return {"w1": helper(x)}
        """)
    text = str(error)
    assert "failed on sample 1" in text
    assert 'File "mine.py", line 4, in helper' in text and "return v[5]" in text
    assert text.rstrip().endswith("IndexError: index 5 is out of bounds for axis 0 with size 2")
    assert "usercode" not in text and "engine" not in text    # none of our frames
    assert "working on (2,)" in error.output


def test_an_endless_loop_is_stopped_at_the_time_limit(tmp_path):
    error = refused(tmp_path, "def gradients(params, x, y):\n    while True:\n        pass\n",
                    timeout=0.5)
    assert "did not return within 0.5 s" in str(error)


def test_an_endless_loop_in_compiled_code_is_stopped_too(tmp_path):
    """SIGALRM cannot interrupt C: the parent ends the process."""
    error = refused(tmp_path, """
        import time
        def gradients(params, x, y):
            time.sleep(3600)
        """, timeout=0.5)
    assert "did not return within 0.5 s" in str(error)


def test_os_exit_is_a_message(tmp_path):
    error = refused(tmp_path, "import os\ndef gradients(params, x, y):\n    os._exit(3)\n")
    assert "exit status 3" in str(error) and "sample 1 of" in str(error)


def test_a_10_gb_allocation_is_a_message_about_memory(tmp_path):
    error = refused(tmp_path, """
        import numpy as np
        def gradients(params, x, y):
            return {"w1": np.ones(10 * 2**30 // 8)}
        """)
    assert "MemoryError" in str(error) and "--memory" in str(error)


@pytest.mark.parametrize("body, expected", [
    ("return [1, 2]", "returned list, not a dict"),
    ("return {'w1': 'abc'}", "not of numbers"),
    ("return {k: np.zeros((3, 3)) for k in params}", "shape"),
    ("return {k: v for k, v in params.items() if k != 'b2'}", "b2"),
    ("return {k: np.full(v.shape, np.nan) for k, v in params.items()}", "NaN"),
])
def test_what_is_not_a_gradient_of_every_parameter_says_what_is_wrong(tmp_path, body,
                                                                        expected):
    error = refused(tmp_path, f"import numpy as np\ndef gradients(params, x, y):\n"
                              f"    {body}\n")
    assert expected in str(error), str(error)


def test_printing_megabytes_is_kept_bounded_and_the_check_goes_on(tmp_path):
    body = VECTOR.replace("    return grads", "    print('x' * 3_000_000)\n    return grads")
    checked = check(student(tmp_path, body))
    assert checked.comparison.report.agree
    assert len(checked.run.output) < 30_000 and "bytes printed in all" in checked.run.output


def test_a_missing_function_names_those_the_file_has(tmp_path):
    path = student(tmp_path, "def my_grads(params, x, y):\n    return {}\n", forward=False)
    with pytest.raises(UserCodeError, match=r"defines no function 'gradients'.*my_grads"):
        check(path)
    spec = preset(DEFAULT_PRESET)
    other = check_code(UserCode.parse(f"{student(tmp_path, VECTOR, name='b.py')}:gradients"),
                       spec, init_params(spec, 3), default_set(spec, 5, 3))
    assert other.comparison.report.agree


def test_params_changed_in_place_do_not_reach_the_next_sample(tmp_path):
    body = VECTOR.replace("    return grads", "    for v in params.values():\n"
                                               "        v *= 0\n    return grads")
    assert check(student(tmp_path, body)).comparison.report.agree


# the command line
def app(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, str(ROOT / "app.py"), *map(str, args)],
                          capture_output=True, text=True, env=env, timeout=120)


def test_the_command_line_exits_0_1_2_and_gives_json(tmp_path):
    good = app("check", ROOT / "resources" / "my_backprop.py", "--samples", "20")
    assert good.returncode == 0, good.stderr
    assert "Verdict: your code and torch agree" in good.stdout
    bad = student(tmp_path, mistaken(VECTOR, "delta = 2 * (acts[-1] - y)",
                                     "delta = acts[-1] - y"))
    result = app("check", bad, "--samples", "20", "--json")
    assert result.returncode == 1, result.stderr
    report = json.loads(result.stdout)
    assert report["first_disagreement"] == "b3" and "dropped_factor_2" in report["reproduced_by"]
    broken = student(tmp_path, "def gradients(params, x, y):\n    return 1 / 0\n",
                     forward=False, name="broken.py")
    result = app("check", broken, "--samples", "5")
    assert result.returncode == 2
    assert 'File "broken.py", line 2, in gradients' in result.stderr
    assert "ZeroDivisionError" in result.stderr and "Traceback" not in result.stderr
    missing = app("check", tmp_path / "nowhere.py")
    assert missing.returncode == 2 and "no such file" in missing.stderr


def test_write_dat_writes_the_assignments_files_from_the_code(tmp_path):
    result = app("check", ROOT / "resources" / "my_backprop.py", "--samples", "8",
                 "--write-dat", tmp_path / "out")
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        "data.csv", "model.json", "my_autograd.dat", "torch_autograd.dat"]
    mine = read_gradients(tmp_path / "out" / "my_autograd.dat")
    assert mine.engine == "your code (my_backprop.py:gradients)" and mine.n_samples == 8
    again = app("compare", tmp_path / "out" / "torch_autograd.dat",
                tmp_path / "out" / "my_autograd.dat")
    assert again.returncode == 0, again.stdout


def test_watch_checks_again_at_every_save(tmp_path):
    path = student(tmp_path, VECTOR)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    process = subprocess.Popen([sys.executable, str(ROOT / "app.py"), "check", str(path),
                                "--watch", "--samples", "10"], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, env=env)
    lines: list[str] = []

    def next_verdict() -> str:
        end = time.monotonic() + 120
        while time.monotonic() < end:
            ready, _, _ = select.select([process.stdout], [], [], end - time.monotonic())
            if ready:
                line = process.stdout.readline()
                assert line, process.stderr.read()
                lines.append(line)
                if "mine.py:gradients" in line:
                    return line
        raise AssertionError(f"no verdict came: {lines}")

    try:
        assert "agrees with torch (10 samples" in next_verdict()
        path.write_text(FORWARD + mistaken(VECTOR, "delta = 2 * (acts[-1] - y)",
                                           "delta = acts[-1] - y"))
        assert "disagrees with torch, first at b3 (dropped_factor_2)" in next_verdict()
        path.write_text("def gradients(params, x, y):\n    return 1 / 0\n")
        line = next_verdict()
        assert "cannot run: ZeroDivisionError: division by zero" in line
        assert 'File "mine.py", line 2, in gradients' in line
    finally:
        process.send_signal(signal.SIGINT)
        process.communicate(timeout=30)
    assert lines[0].startswith("watching ")


# stages(params, x, y): every intermediate value, stage by stage
STAGED = """
def _pass(params, x, y):
    L = len(params) // 2
    zs, acts = forward(params, x)
    out = {"loss": float(np.sum((acts[-1] - y) ** 2))}
    for l in range(1, L + 1):
        out["z%d" % l] = zs[l - 1].reshape(1, -1)        # (1, n): a row, as X·W gives
        out["h%d" % l] = acts[l]
    delta = 2 * (acts[-1] - y)
    out["dy_hat"] = delta
    grads = {}
    for l in range(L, 0, -1):
        out["delta%d" % l] = delta
        grads["w%d" % l] = np.outer(delta, acts[l - 1])
        grads["b%d" % l] = delta
        # the output layer's (1, 10) as a column: read transposed
        out["dW%d" % l] = grads["w%d" % l].T if l == L else grads["w%d" % l]
        if l > 1:
            up = params["w%d" % l].T @ delta
            out["da%d" % (l - 1)] = up
            delta = up * acts[l - 1] * (1 - acts[l - 1])
    out["my_note"] = 1.0
    return grads, out

def gradients(params, x, y):
    return _pass(params, x, y)[0]

def stages(params, x, y):
    return _pass(params, x, y)[1]
"""


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_stages_are_compared_one_by_one_in_the_order_of_the_pass(tmp_path, dtype):
    checked = check(student(tmp_path, STAGED), dtype)
    found = checked.stages
    assert found is not None and found.first_stage is None
    assert list(found.rows) == ["z1", "a1", "z2", "a2", "z3", "y_hat", "loss", "dL/dy_hat",
                                "dL/dz3", "dL/dw3", "dL/da2", "dL/dz2", "dL/dw2", "dL/da1",
                                "dL/dz1", "dL/dw1"]
    assert all(row.agree for row in found.rows.values())
    assert any("dW3 (dL/dw3) read transposed" in note for note in found.notes)
    assert any("'my_note'" in note for note in found.notes)


def test_the_first_stage_that_departs_is_named(tmp_path):
    body = STAGED.replace("            delta = up * acts[l - 1] * (1 - acts[l - 1])",
                          "            delta = up * acts[l - 1]")
    result = app("check", student(tmp_path, body), "--samples", "10", "--json")
    assert result.returncode == 1, result.stderr
    report = json.loads(result.stdout)
    assert report["first_stage"] == "dL/dz2" and report["first_disagreement"] == "b2"
    assert report["stages"]["dL/da2"]["agree"] and not report["stages"]["dL/dz2"]["agree"]
    text = app("check", student(tmp_path, body), "--samples", "10").stdout
    assert "first stage that departs from torch: dL/dz2" in text


def test_a_stage_of_a_wrong_shape_or_a_failing_stages_is_one_message(tmp_path):
    wrong = STAGED.replace('out["h%d" % l] = acts[l]', 'out["h%d" % l] = acts[l][:1]')
    error = refused(tmp_path, wrong, forward=True)
    assert "stages() returned 'h1' (a1) of shape (1,), where (10,) was expected" in str(error)
    broken = STAGED.replace("    return _pass(params, x, y)[1]", "    return 1 / 0")
    error = refused(tmp_path, broken, forward=True)
    assert "mine.py:stages failed on sample 1" in str(error)
    assert "ZeroDivisionError" in str(error)


@pytest.mark.parametrize("name, key", [
    ("z2", "z2"), ("a1", "a1"), ("h1", "a1"), ("y3", "y_hat"), ("yhat", "y_hat"),
    ("L", "loss"), ("delta2", "dL/dz2"), ("dz1", "dL/dz1"), ("dL/dz3", "dL/dz3"),
    ("dW2", "dL/dw2"), ("grad_w1", "dL/dw1"), ("db3", "dL/db3"), ("dy2", "dL/da2"),
    ("dL/da1", "dL/da1"), ("dy3", "dL/dy_hat"), ("dout", "dL/dy_hat"), ("z_2", "z2"),
    ("delta[2]", "dL/dz2"), ("w1", None), ("x", None), ("z4", None), ("notes", None)])
def test_stage_names_as_students_write_them(name, key):
    from engine.check.stage_names import stage_key
    assert stage_key(name, 3) == key


def test_a_negative_tolerance_is_refused_as_compare_refuses_it(tmp_path):
    result = app("check", ROOT / "resources" / "my_backprop.py", "--rtol", "-1")
    assert result.returncode == 2 and "--rtol must be 0 or more, not -1.0" in result.stderr


# a function written for the whole batch: x (N, n0), y (N, nL), one call
BATCH = """
import numpy as np

def sigmoid(z):
    return 1 / (1 + np.exp(-z))

def gradients(params, X, Y):
    # every sample at once, a sample a row
    print("batch of", X.shape)
    L = len(params) // 2
    A = [X]
    for l in range(1, L + 1):
        Z = A[-1] @ params["w%d" % l].T + params["b%d" % l]
        A.append(Z if l == L else sigmoid(Z))
    D = 2 * (A[-1] - Y)
    grads = {}
    for l in range(L, 0, -1):
        grads["dW%d" % l] = D[:, :, None] * A[l - 1][:, None, :]   # (N, out, in)
        grads["db%d" % l] = D[:, None, :]                           # (N, 1, out)
        if l > 1:
            D = (D @ params["w%d" % l]) * A[l - 1] * (1 - A[l - 1])
    return grads
"""
BATCH_BACK = "D = (D @ params[\"w%d\" % l]) * A[l - 1] * (1 - A[l - 1])"
IN_OUT_BATCH = """
import numpy as np

def gradients(params, X, Y):
    # weights as (in, out): Z = A·W + b
    L = len(params) // 2
    A = [X]
    for l in range(1, L + 1):
        Z = A[-1] @ params["w%d" % l] + params["b%d" % l]
        A.append(Z if l == L else 1 / (1 + np.exp(-Z)))
    D = 2 * (A[-1] - Y)
    out = {}
    for l in range(L, 0, -1):
        out["dW%d" % l] = np.einsum("ni,no->nio", A[l - 1], D)   # (N, in, out)
        out["db%d" % l] = D
        if l > 1:
            D = (D @ params["w%d" % l].T) * A[l - 1] * (1 - A[l - 1])
    return out
"""
# the same pass, averaged over the batch as a training step wants it; np.atleast_2d lets it take
# one sample too
MEAN = mistaken(mistaken(mistaken(
    BATCH, "    L = len(params) // 2", "    X, Y = np.atleast_2d(X), np.atleast_2d(Y)\n"
                                       "    L = len(params) // 2"),
    "D[:, :, None] * A[l - 1][:, None, :]   # (N, out, in)", "D.T @ A[l - 1] / len(X)"),
    "D[:, None, :]                           # (N, 1, out)", "D.mean(axis=0)")


def calls(checked) -> str:
    return checked.run.calls


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("body, layout", [
    (BATCH, "out_in"), ((ROOT / "resources" / "my_backprop_batch.py").read_text(), "out_in"),
    (IN_OUT_BATCH, "in_out")], ids=["dW_db_names", "resource", "in_out"])
def test_a_function_for_the_whole_batch_is_called_once_and_agrees(tmp_path, body, layout,
                                                                  dtype):
    checked = check(student(tmp_path, body, forward=False), dtype, layout)
    report = checked.comparison.report
    assert report.agree, report.diagnosis
    assert calls(checked) == "batch" and report.samples == SAMPLES
    assert any("took the whole batch" in note for note in report.notes)
    assert checked.run.output.count("batch of") == (body == BATCH)   # printed once


@pytest.mark.parametrize("mistake, old, new, first", [
    ("forgotten_activation_derivative", BATCH_BACK, "D = D @ params[\"w%d\" % l]", "b2"),
    ("dropped_factor_2", "D = 2 * (A[-1] - Y)", "D = A[-1] - Y", "b3")])
def test_a_mistake_in_a_batch_function_is_located_and_named(tmp_path, mistake, old, new, first):
    checked = check(student(tmp_path, mistaken(BATCH, old, new), forward=False))
    report = checked.comparison.report
    assert calls(checked) == "batch" and not report.agree
    assert report.first_disagreement == first and mistake in (report.reproduced_by or "")


@pytest.mark.parametrize("samples", [40, 10], ids=["40", "10_as_wide_as_a_layer"])
def test_a_mean_over_the_batch_is_not_read_as_the_samples(tmp_path, samples):
    """With 10 samples a (10, 2) mean of w1 has a leading axis of 10: still one sample's
    shape, never read as 10 samples of (2,)."""
    spec = preset(DEFAULT_PRESET)
    checked = check_code(UserCode.parse(str(student(tmp_path, MEAN, forward=False))), spec,
                         init_params(spec, 3), default_set(spec, samples, 3))
    report = checked.comparison.report
    assert calls(checked) == "per sample" and report.agree and report.samples == samples
    assert any("sum or a mean over the samples" in note for note in report.notes)
    assert "batch of (2,)" in checked.run.output and f"({samples}, 2)" not in \
        checked.run.output


def test_a_mean_that_cannot_take_one_sample_says_why_it_was_called_so(tmp_path):
    body = mistaken(MEAN, "    X, Y = np.atleast_2d(X), np.atleast_2d(Y)\n", "")
    error = refused(tmp_path, body)
    first, *_, last = str(error).strip().split("\n")
    assert "called one sample at a time" in first and "sum or a mean" in first
    assert "failed on sample 1" in str(error) and last.startswith("ValueError")


def test_a_function_for_one_sample_is_checked_as_before_the_batch_call_unseen(tmp_path):
    """The call with the whole batch raises, counts a call and prints; none of it shows: the
    file is imported afresh before the samples' calls."""
    body = GLOBALS.replace("    calls += 1\n", "    calls += 1\n    print('call', calls)\n")
    checked = check(student(tmp_path, body))
    assert checked.comparison.report.agree and calls(checked) == "per sample"
    assert checked.run.output.split("\n")[0] == "call 1"
    assert checked.run.output.strip().endswith(f"call {SAMPLES}")
    assert any("called one sample at a time" in note and "it raised ValueError" in note
               for note in checked.comparison.report.notes)


def test_a_batch_call_that_ends_the_process_is_left_for_calls_per_sample(tmp_path):
    body = VECTOR.replace("    L = len(params) // 2", "    if x.ndim == 2:\n        os._exit(3)\n"
                                                      "    L = len(params) // 2", 1)
    checked = check(student(tmp_path, "import os\n" + body))
    assert checked.comparison.report.agree and calls(checked) == "per sample"
    assert any("it ended the process running it, with exit status 3" in note
               for note in checked.notes)


def test_one_sample_is_called_as_one_sample(tmp_path):
    spec = preset(DEFAULT_PRESET)
    checked = check_code(UserCode.parse(str(student(tmp_path, MEAN, forward=False))), spec,
                         init_params(spec, 3), default_set(spec, 1, 3))
    assert checked.comparison.report.agree and calls(checked) == "per sample"
    assert checked.notes == [] and checked.run.output == "batch of (2,)\n"


STAGED_BATCH = """
import numpy as np

def sigmoid(z):
    return 1 / (1 + np.exp(-z))

def _pass(params, X, Y):
    L = len(params) // 2
    A, out = [X], {}
    for l in range(1, L + 1):
        Z = A[-1] @ params["w%d" % l].T + params["b%d" % l]
        A.append(Z if l == L else sigmoid(Z))
        out["z%d" % l], out["a%d" % l] = Z, A[-1]
    out["loss"] = float(np.mean(np.sum((A[-1] - Y) ** 2, axis=1)))   # the batch's
    D = 2 * (A[-1] - Y)
    grads = {}
    for l in range(L, 0, -1):
        out["delta%d" % l] = D
        grads["w%d" % l] = np.einsum("no,ni->noi", D, A[l - 1])
        grads["b%d" % l] = D
        out["dW%d" % l] = grads["w%d" % l]
        if l > 1:
            D = (D @ params["w%d" % l]) * A[l - 1] * (1 - A[l - 1])
    return grads, out

def gradients(params, X, Y):
    return _pass(params, X, Y)[0]

def stages(params, X, Y):
    return _pass(params, X, Y)[1]
"""


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_stages_for_the_whole_batch_are_compared_sample_by_sample(tmp_path, dtype):
    checked = check(student(tmp_path, STAGED_BATCH, forward=False), dtype)
    assert checked.run.calls == checked.run.stage_calls == "batch"
    found = checked.stages
    assert found.first_stage is None and "loss" not in found.rows
    assert {"z1", "a2", "y_hat", "dL/dz2", "dL/dw1"} <= set(found.rows)
    assert any("'loss', one number for the whole batch, is left out" in note
               for note in checked.notes)


def test_a_batch_stages_mistake_names_its_first_stage_and_json_says_how_it_was_called(
        tmp_path):
    body = STAGED_BATCH.replace(BATCH_BACK, "D = (D @ params[\"w%d\" % l]) * A[l - 1]")
    result = app("check", student(tmp_path, body, forward=False), "--samples", "10",
                 "--json")
    assert result.returncode == 1, result.stderr
    report = json.loads(result.stdout)
    assert report["first_stage"] == "dL/dz2" and report["first_disagreement"] == "b2"
    assert report["calls"] == report["stage_calls"] == "batch"
    plain = app("check", ROOT / "resources" / "my_backprop.py", "--samples", "5", "--json")
    assert json.loads(plain.stdout)["calls"] == "per sample"
    assert json.loads(plain.stdout)["stage_calls"] is None


def read(returned: dict, n: int, shapes: list) -> list | None:
    """engine.usercode_batch's reading of arrays of these shapes, for n samples."""
    import numpy as np

    from engine.usercode_batch import read_gradient_batch
    x, y = np.zeros((n, 2)), np.zeros((n, 1))
    arrays = {name: np.zeros(shape) for name, shape in returned.items()}
    return read_gradient_batch(arrays, x, y, shapes, "gradients").samples


SQUARE = [(10, 10), (10,), (10, 10), (10,)]    # a 10-10-10 network


@pytest.mark.parametrize("returned, n, shapes, taken", [
    ({"w1": (4, 10, 10), "b1": (4, 10), "w2": (4, 10, 10), "b2": (4, 1, 10)}, 4, SQUARE, True),
    ({"w1": (10, 10), "b1": (10,), "w2": (10, 10), "b2": (10,)}, 10, SQUARE, False),   # a mean
    ({"w1": (10, 10), "b1": (10, 10), "w2": (10, 10), "b2": (10, 10)}, 10, SQUARE, False),
    ({"w1": (10, 10, 10), "b1": (10,), "w2": (10, 10, 10), "b2": (10,)}, 10, SQUARE, False),
    ({"w1": (3, 10, 2), "b1": (3, 1, 10), "w2": (3, 1, 10), "b2": (3, 1)}, 3,
     [(10, 2), (10,), (1, 10), (1,)], True),          # (3, 1, 10): b1, w2 is (3, 1, 10) too
    ({"w1": (3, 10, 2), "b1": (3, 10), "w2": (3, 1, 10)}, 3,
     [(10, 2), (10,), (1, 10), (1,)], False),         # b2 missing
])
def test_only_arrays_of_each_sample_with_a_leading_axis_are_read_as_a_batch(returned, n,
                                                                            shapes, taken):
    assert (read(returned, n, shapes) is not None) == taken


def test_a_batch_call_past_the_time_limit_is_left_for_calls_per_sample(tmp_path):
    body = VECTOR.replace("    L = len(params) // 2", "    while x.ndim == 2:\n        pass\n"
                                                      "    L = len(params) // 2", 1)
    checked = check(student(tmp_path, body), timeout=0.5)
    assert checked.comparison.report.agree and calls(checked) == "per sample"
    assert any("it did not return within 0.5 s" in note for note in checked.notes)


def test_the_code_ends_with_the_process_that_checks_it_even_by_kill_9(tmp_path):
    """A window or command killed while the user's code is stuck in compiled code leaves no
    process behind: the child dies with its parent."""
    inside = tmp_path / "inside"    # the code says it is in the call, stuck, through a FIFO
    os.mkfifo(inside)
    path = student(tmp_path, f"import time\ndef gradients(params, x, y):\n"
                             f"    open({str(inside)!r}, 'w').write('in')\n"
                             f"    time.sleep(3600)\n", forward=False)
    told = os.open(inside, os.O_RDONLY | os.O_NONBLOCK)
    script = textwrap.dedent(f"""
        import sys
        from engine.files.datasets import default_set
        from engine.net.params import init_params
        from engine.net.spec import DEFAULT_PRESET, preset
        from engine.usercode import UserCode, check_code
        spec = preset(DEFAULT_PRESET)
        check_code(UserCode.parse({str(path)!r}), spec, init_params(spec, 0),
                   default_set(spec, 1, 0), timeout=3000,
                   started=lambda pid: print(pid, flush=True))
        """)
    checker = subprocess.Popen([sys.executable, "-c", script], cwd=ROOT, text=True,
                               stdout=subprocess.PIPE)
    try:
        ended = os.pidfd_open(int(checker.stdout.readline()))
        try:
            assert select.select([told], [], [], 60)[0], "the code never reached its call"
            os.kill(checker.pid, signal.SIGKILL)
            checker.wait(timeout=30)
            # readable once the process has exited (a zombie counts: it holds nothing)
            assert select.select([ended], [], [], 30)[0], (
                "the user's code outlived the process that checked it")
        finally:
            os.close(ended)
    finally:
        checker.kill()
        checker.wait()
        checker.stdout.close()
        os.close(told)

"""The command line end to end, in a subprocess: exit codes, files, tables and --json."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from engine.files.datasets import default_set
from engine.files.model_file import read_model
from engine.files.readers import read_gradients
from engine.net.params import init_params
from engine.net.spec import DEFAULT_PRESET, preset
from engine.train.lockstep import TrainConfig
from engine.train.run import train

ROOT = Path(__file__).resolve().parent.parent


def app(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, str(ROOT / "app.py"), *map(str, args)], cwd=cwd,
                          capture_output=True, text=True, env=env, timeout=120)


@pytest.fixture(scope="module")
def exported(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("export")
    result = app("export", out, "--samples", "30")
    assert result.returncode == 0, result.stderr
    return out


def test_export_writes_the_four_files(exported):
    names = sorted(p.name for p in exported.iterdir())
    assert names == ["data.csv", "model.json", "my_autograd.dat", "torch_autograd.dat"]
    torch_set = read_gradients(exported / "torch_autograd.dat")
    assert torch_set.n_samples == 30 and torch_set.dtype == "float32"
    assert torch_set.layout == "out_in" and torch_set.spec == preset(DEFAULT_PRESET)
    model = read_model(exported / "model.json")
    np.testing.assert_array_equal(model.run()[1]["w2"], init_params(model.spec, 0)["w2"])
    assert (exported / "data.csv").read_text().startswith("x1,x2,y1\n")


def test_compare_agreeing_files_exits_0_with_a_table(exported):
    result = app("compare", exported / "torch_autograd.dat", exported / "my_autograd.dat")
    assert result.returncode == 0, result.stderr
    assert "Verdict: the files agree" in result.stdout
    assert result.stdout.count("agree") >= 7


def test_compare_json_schema_and_a_disagreement_exits_1(exported, tmp_path):
    text = (exported / "my_autograd.dat").read_text().splitlines()
    start = text.index("sample 3")
    w2 = next(i for i in range(start, len(text)) if text[i].startswith("w2 "))
    values = text[w2 + 1].split()
    values[4] = repr(float(values[4]) * 2 + 0.01)
    text[w2 + 1] = "  " + " ".join(values)
    bad = tmp_path / "my_autograd.dat"
    bad.write_text("\n".join(text) + "\n")
    result = app("compare", exported / "torch_autograd.dat", bad, "--json")
    assert result.returncode == 1, result.stderr
    data = json.loads(result.stdout)
    assert data["agree"] is False and data["samples"] == 30
    assert data["first_disagreement"] == "w2"
    assert data["params"]["w2"]["worst"] == [3, 0, 4]
    assert data["params"]["w2"]["shape"] == [10, 10]
    assert data["params"]["b3"]["max_abs_diff"] < 1e-6


def test_unreadable_input_exits_2_with_one_line(exported, tmp_path):
    junk = tmp_path / "junk.dat"
    junk.write_bytes(os.urandom(300))
    result = app("compare", exported / "torch_autograd.dat", junk)
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and str(junk) in result.stderr
    assert "Traceback" not in result.stderr
    missing = app("compare", tmp_path / "nope.dat", junk)
    assert missing.returncode == 2 and "nope.dat" in missing.stderr


def test_files_that_cannot_be_aligned_exit_2(exported, tmp_path):
    short = app("export", tmp_path, "--samples", "7")
    assert short.returncode == 0
    result = app("compare", exported / "torch_autograd.dat", tmp_path / "my_autograd.dat")
    assert result.returncode == 2
    assert "has 7 samples but" in result.stderr and "Traceback" not in result.stderr


def test_someone_elses_printed_file_compares_with_ours(exported, tmp_path):
    """The way the seeds' own code prints: a label, then the numpy array, sample after sample."""
    ours = read_gradients(exported / "my_autograd.dat")
    lines = []
    for sample in ours.samples:
        for layer in (1, 2, 3):
            lines += [f"dLdw{layer}", str(sample[f"w{layer}"]), f"dLdb{layer}",
                      str(sample[f"b{layer}"])]
    mine = tmp_path / "printed.txt"
    mine.write_text("\n".join(lines) + "\n")
    result = app("compare", exported / "torch_autograd.dat", mine, "--json")
    assert result.returncode == 0, result.stdout + result.stderr
    assert json.loads(result.stdout)["samples"] == 30


def test_in_out_export_compares_with_out_in_by_transposing(exported, tmp_path):
    assert app("export", tmp_path, "--samples", "30", "--layout", "in_out").returncode == 0
    model = json.loads((tmp_path / "model.json").read_text())
    assert model["layout"] == "in_out" and np.shape(model["params"]["w1"]) == (2, 10)
    result = app("compare", exported / "torch_autograd.dat", tmp_path / "my_autograd.dat",
                 "--json")
    assert result.returncode == 0
    assert any("transposed" in note for note in json.loads(result.stdout)["notes"])


def test_export_with_a_learning_rate_records_gradients_along_the_way(exported, tmp_path):
    assert app("export", tmp_path, "--samples", "30", "--lr", "0.5").returncode == 0
    fixed = read_gradients(exported / "torch_autograd.dat")
    moving = read_gradients(tmp_path / "torch_autograd.dat")
    np.testing.assert_array_equal(fixed.samples[0]["w1"], moving.samples[0]["w1"])
    assert not np.allclose(fixed.samples[29]["w1"], moving.samples[29]["w1"])
    result = app("compare", tmp_path / "torch_autograd.dat", tmp_path / "my_autograd.dat")
    assert result.returncode == 0, result.stdout


def test_export_options_and_bad_input(tmp_path):
    csv = tmp_path / "in.csv"
    csv.write_text("x1,x2,y\n0.1,0.2,0.3\n0.4,0.5,0.6\n")
    result = app("export", tmp_path / "out", "--data", csv, "--dtype", "float64")
    assert result.returncode == 0, result.stderr
    assert read_gradients(tmp_path / "out" / "my_autograd.dat").dtype == "float64"
    csv.write_text("0.1,0.2\n")
    bad = app("export", tmp_path / "out2", "--data", csv)
    assert bad.returncode == 2 and "line 1: 2 columns" in bad.stderr
    assert not (tmp_path / "out2").exists()
    model = tmp_path / "m.json"
    model.write_text('{"sizes": [2, 1], "activations": ["relu"], "loss": "bce"}')
    bad = app("export", tmp_path / "out3", "--model", model)
    assert bad.returncode == 2 and "needs a sigmoid output layer" in bad.stderr


def test_train_json_matches_the_engine_trainer(tmp_path):
    saved = tmp_path / "final.json"
    result = app("train", "--samples", "20", "--epochs", "3", "--lr", "0.3", "--shuffle",
                 "--seed", "4", "--json", "--save-model", saved)
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert set(data) == {"epochs", "steps", "loss_scratch", "loss_torch", "max_grad_diff",
                         "param_drift"}
    assert (data["epochs"], data["steps"]) == (3, 60)
    spec = preset(DEFAULT_PRESET)
    records = list(train(spec, init_params(spec, 4), default_set(spec, 20, 4),
                         TrainConfig(lr=0.3, epochs=3, shuffle=True, seed=4)))
    first_epoch = np.mean([r.loss_scratch for r in records if r.epoch == 1])
    assert data["loss_scratch"][0] == pytest.approx(first_epoch, rel=1e-12)
    assert data["param_drift"][-1] == pytest.approx(records[-1].drift, rel=1e-12)
    assert data["loss_scratch"][2] < data["loss_scratch"][0]
    assert read_model(saved).spec == spec


def test_train_table_and_divergence(tmp_path):
    table = app("train", "--samples", "10", "--epochs", "2")
    assert table.returncode == 0
    assert "loss scratch" in table.stdout and len(table.stdout.splitlines()) == 4
    diverged = app("train", "--samples", "10", "--lr", "1e6", "--save-model", tmp_path / "x.json")
    assert diverged.returncode == 1
    assert "diverged at step" in diverged.stderr and "try a smaller one" in diverged.stderr
    assert not (tmp_path / "x.json").exists()
    bad = app("train", "--lr", "-1")
    assert bad.returncode == 2 and "learning rate must be a positive number" in bad.stderr


def write(path: Path, content: bytes | str) -> Path:
    if isinstance(content, str):
        content = content.encode()
    path.write_bytes(content)
    return path


BAD_GRADIENT_FILES = {
    "empty": b"",
    "binary junk": bytes(range(256)) * 3,
    "truncated ours": None,  # made from a real export below
    "ragged": "w1\n[[1, 2], [3]]\nb1\n[1, 2]\n",
    "non-numeric": "w1\n[[1, two], [3, 4]]\nb1\n[1, 2]\n",
    "absurdly nested": "[" * 200_000 + "]" * 200_000,
    "NaN": "w1\n[[1, nan], [3, 4]]\nb1\n[1, 2]\n",
    "Inf": "w1\n[[1, inf], [3, 4]]\nb1\n[1, 2]\n",
    "summarised": "w1\n[[1, 2, ..., 9, 10]]\nb1\n[1]\n",
    "plain pickle": b"\x80\x04\x95\x05\x00\x00\x00\x00\x00\x00\x00K\x01.",
}


@pytest.mark.parametrize("kind", list(BAD_GRADIENT_FILES))
def test_every_bad_gradient_file_is_one_line_and_exit_2(kind, exported, tmp_path, capsys):
    from app import main

    content = BAD_GRADIENT_FILES[kind]
    if content is None:
        content = (exported / "my_autograd.dat").read_bytes()[:5000]
    bad = write(tmp_path / "bad.dat", content)
    assert main(["compare", str(exported / "torch_autograd.dat"), str(bad)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and str(bad) in err and "Traceback" not in err


def test_compare_with_model_and_data_checks_the_samples(exported, tmp_path, capsys):
    from app import main

    a, b = str(exported / "torch_autograd.dat"), str(exported / "my_autograd.dat")
    model, data = str(exported / "model.json"), str(exported / "data.csv")
    assert main(["compare", a, b, "--json", "--model", model, "--data", data]) == 0
    notes = json.loads(capsys.readouterr().out)["notes"]
    assert f"{a}: its samples are those of the data (data.csv, 30 samples)" in notes
    other = tmp_path / "other.csv"
    other.write_text("\n".join(["x1,x2,y1"] + ["0.5,0.5,0.25"] * 30) + "\n")
    assert main(["compare", a, b, "--json", "--model", model, "--data", str(other)]) == 0
    notes = json.loads(capsys.readouterr().out)["notes"]
    assert any("30 of its 30 samples have other inputs than the data (other.csv, 30 samples), "
               "the first at sample 1" in n for n in notes)
    assert main(["compare", a, b, "--data", data]) == 2
    assert "--data needs --model" in capsys.readouterr().err


# the mistake finder: every catalogued mistake made on purpose is caught, located and named

FIRST_WRONG = {"sigmoid_derivative_of_activation": "b2", "forgotten_activation_derivative": "b2",
               "dropped_factor_2": "b3", "untransposed_weight": "b1", "flipped_update_sign": "b3",
               "accumulated_gradients": "b3", "bias_gradient_wrong_axis": "b2"}


def export_injected(out: Path, name: str, capsys) -> Path:
    """Export 30 samples with `name` injected; my_autograd.dat loses the note that names the
    mistake, so compare can only name it by making it again."""
    from app import main
    from engine.check.mistakes import MISTAKES

    lr = ["--lr", "0.1"] if MISTAKES[name.partition("@")[0]].needs_updates else []
    assert main(["export", str(out), "--samples", "30", "--inject", name, *lr]) == 0
    assert "the scratch engine made a mistake on purpose" in capsys.readouterr().out
    mine = out / "my_autograd.dat"
    lines = mine.read_text().splitlines(keepends=True)
    assert any(line.startswith(f"# note: injected mistake: {name}") for line in lines)
    mine.write_text("".join(line for line in lines if "injected mistake" not in line))
    return mine


def compare_json(capsys, *args: str | Path) -> tuple[int, dict]:
    from app import main

    code = main(["compare", *map(str, args), "--json"])
    return code, json.loads(capsys.readouterr().out)


@pytest.mark.parametrize("name", list(FIRST_WRONG))
def test_an_injected_mistake_is_caught_located_and_named(name, tmp_path, capsys):
    mine = export_injected(tmp_path, name, capsys)
    code, data = compare_json(capsys, tmp_path / "torch_autograd.dat", mine)
    assert code == 1 and data["agree"] is False
    assert data["first_disagreement"] == FIRST_WRONG[name]
    assert data["reproduced_by"] == name
    assert any(f"the mistake {name} (" in s for s in data["diagnosis"])
    assert any(s.startswith("a right run of model.json and data.csv beside the files")
               and s.endswith("makes A and not B, so B holds the mistake")
               for s in data["diagnosis"])


def test_a_correct_file_is_not_flagged(exported, capsys):
    code, data = compare_json(capsys, exported / "torch_autograd.dat",
                              exported / "my_autograd.dat")
    assert code == 0 and data["reproduced_by"] is None and len(data["diagnosis"]) == 1


def test_a_mistake_in_one_layer_is_named_with_its_layer(tmp_path, capsys):
    mine = export_injected(tmp_path, "forgotten_activation_derivative@1", capsys)
    code, data = compare_json(capsys, tmp_path / "torch_autograd.dat", mine)
    assert (code, data["first_disagreement"]) == (1, "b1")
    assert data["reproduced_by"] == "forgotten_activation_derivative@1"


def test_without_a_model_the_pattern_is_told_and_with_one_the_mistake_named(tmp_path, capsys):
    made = export_injected(tmp_path / "made", "dropped_factor_2", capsys)
    alone = tmp_path / "alone"
    alone.mkdir()
    for name in ("torch_autograd.dat", "my_autograd.dat"):
        (alone / name).write_text((made.parent / name).read_text())
    a, b = alone / "torch_autograd.dat", alone / "my_autograd.dat"
    code, data = compare_json(capsys, a, b)
    assert code == 1 and data["reproduced_by"] is None
    assert any(s.startswith("B = ½·A in every parameter") for s in data["diagnosis"])
    code, data = compare_json(capsys, a, b, "--model", made.parent / "model.json",
                              "--data", made.parent / "data.csv")
    assert code == 1 and data["reproduced_by"] == "dropped_factor_2"


def test_an_injection_that_cannot_be_made_is_one_line_and_exit_2(tmp_path, capsys):
    from app import main

    assert main(["export", str(tmp_path / "a"), "--inject", "typo"]) == 2
    assert "unknown mistake 'typo'; valid: sigmoid_derivative_of_activation" in (
        capsys.readouterr().err)
    assert main(["export", str(tmp_path / "b"), "--preset", "2-2-1-tanh-bce",
                 "--inject", "dropped_factor_2"]) == 2
    assert "the bce loss has no factor 2 to drop" in capsys.readouterr().err
    assert main(["export", str(tmp_path / "c"), "--inject", "flipped_update_sign"]) == 2
    assert "changes only the SGD update" in capsys.readouterr().err
    assert main(["export", str(tmp_path / "d"), "--inject", "flipped_update_sign",
                 "--lr", "0.5"]) == 2
    assert "diverged at sample" in capsys.readouterr().err
    assert main(["train", "--inject", "untransposed_weight@3", "--samples", "5"]) == 2
    assert "can be made in layer 2" in capsys.readouterr().err
    assert not any((tmp_path / d).exists() for d in "abcd")


def test_train_with_an_injected_mistake_parts_from_torch(capsys):
    from app import main

    args = ["train", "--samples", "10", "--epochs", "3", "--lr", "0.05"]
    assert main([*args, "--json", "--inject", "flipped_update_sign"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["mistake"] == "flipped_update_sign"
    assert data["loss_scratch"][2] > data["loss_scratch"][0]
    assert data["loss_torch"][2] < data["loss_torch"][0] and data["param_drift"][2] > 0.01
    assert main([*args, "--inject", "dropped_factor_2"]) == 0
    assert "makes a mistake on purpose (torch does not): dropped_factor_2" in (
        capsys.readouterr().out)


def test_export_inject_and_compare_end_to_end(tmp_path):
    assert app("export", tmp_path, "--samples", "20", "--inject",
               "accumulated_gradients").returncode == 0
    result = app("compare", tmp_path / "torch_autograd.dat", tmp_path / "my_autograd.dat")
    assert result.returncode == 1, result.stderr
    assert "B's sample k holds the sum of A's samples 1..k" in result.stdout
    assert "B is made again by the scratch engine with the mistake accumulated_gradients" in (
        result.stdout)

"""Fuzzing every reader a user's file reaches: generated and mutated gradient, model and CSV
files are either read or refused with a UserInputError naming the file; nothing else escapes,
nothing hangs (hypothesis's deadline is off in CI, so a hang would show as a slow suite)."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.errors import UserInputError
from engine.export import gradient_sets
from engine.files.datasets import default_set, load_csv, to_csv_text
from engine.files.gradfile import format_gradients
from engine.files.model_file import model_to_dict, read_model
from engine.files.readers import read_gradients
from engine.net.params import init_params
from engine.net.spec import DEFAULT_PRESET, preset

SPEC = preset(DEFAULT_PRESET)
FUZZ = settings(max_examples=60, suppress_health_check=[HealthCheck.function_scoped_fixture])


def _valid_files() -> dict[str, bytes]:
    torch_set, _ = gradient_sets(SPEC, init_params(SPEC), default_set(SPEC, 2))
    printed = "\n".join(f"grad_{k}\n{np.array2string(v)}" for k, v in
                        torch_set.samples[0].items())
    listed = repr([torch.tensor(v) for v in torch_set.samples[0].values()])
    return {"ours.dat": format_gradients(torch_set).encode(),
            "printed.txt": printed.encode(),
            "tensors.txt": listed.encode()}


VALID = _valid_files()


FLIPS = st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 255)), max_size=6)
KEEP = st.floats(0, 1)


def damaged(folder: Path, name: str, data: bytes, flips: list[tuple[int, int]],
            keep: float) -> Path:
    """folder/name holding `data` with the bytes at the given positions flipped (xor by the
    given bits), cut to the fraction `keep` of its length."""
    out = bytearray(data)
    for position, bits in flips:
        out[position % len(out)] ^= bits or 1
    path = folder / name
    path.write_bytes(bytes(out[:int(len(out) * keep)]))
    return path


def check_read(path, reader) -> None:
    try:
        reader(path)
    except UserInputError as e:
        message = str(e)
        assert str(path) in message and "\n" not in message.strip(), message


@FUZZ
@given(name=st.sampled_from(sorted(VALID)), flips=FLIPS, keep=KEEP)
def test_mutated_gradient_files_are_read_or_refused(tmp_path, name, flips, keep):
    check_read(damaged(tmp_path, name, VALID[name], flips, keep), read_gradients)


@FUZZ
@given(data=st.binary(max_size=2000))
def test_random_bytes_are_refused(tmp_path, data):
    path = tmp_path / "random.dat"
    path.write_bytes(data)
    check_read(path, read_gradients)


@FUZZ
@given(text=st.text(alphabet="[](),.-+e0123456789 \nnaifwb_tensor", max_size=400))
def test_bracket_soup_is_read_or_refused(tmp_path, text):
    path = tmp_path / "soup.txt"
    path.write_text(text)
    check_read(path, read_gradients)


@pytest.mark.parametrize("text", [
    "[" * 100_000,
    "w1 " + "[" * 5000 + "1" + "]" * 5000,
    "w1\n[[1e999, 2], [3, 4]]\nb1\n[1, 2]",
    "w1\n[[1e308, -1e308], [3, 4]]\nb1\n[1, 2]\n",
    "\ufeffw1\n[[1, 2]]\nb1\n[1]",
])
def test_hand_picked_nasties(tmp_path, text):
    path = tmp_path / "nasty.txt"
    path.write_text(text, encoding="utf-8")
    check_read(path, read_gradients)


@pytest.mark.parametrize("encoding", ["utf-16", "latin-1", "utf-32"])
def test_other_encodings(tmp_path, encoding):
    path = tmp_path / "enc.txt"
    path.write_bytes("w1\n[[1.5, 2]]\nb1\n[1]\n".encode(encoding))
    check_read(path, read_gradients)


def _model_text() -> str:
    return json.dumps(model_to_dict(SPEC, init_params(SPEC)))


MODEL = _model_text().encode()


@FUZZ
@given(flips=FLIPS, keep=KEEP)
def test_mutated_model_files_are_read_or_refused(tmp_path, flips, keep):
    check_read(damaged(tmp_path, "model.json", MODEL, flips, keep), read_model)


@FUZZ
@given(value=st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=5),
                       st.lists(st.integers(), max_size=3)),
       key=st.sampled_from(["sizes", "activations", "loss", "dtype", "layout", "params"]))
def test_model_fields_of_any_type_are_refused_cleanly(tmp_path, value, key):
    content = json.loads(MODEL)
    content[key] = value
    path = tmp_path / "model.json"
    path.write_text(json.dumps(content))
    check_read(path, read_model)


CSV = to_csv_text(default_set(SPEC, 20)).encode()


@FUZZ
@given(flips=FLIPS, keep=KEEP)
def test_mutated_csv_files_are_read_or_refused(tmp_path, flips, keep):
    check_read(damaged(tmp_path, "data.csv", CSV, flips, keep), lambda p: load_csv(p, SPEC))

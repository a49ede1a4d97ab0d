"""Network specs and presets: what builds, and what a bad spec is told."""

import pytest

from engine.errors import SpecError, UserInputError
from engine.net.spec import DEFAULT_PRESET, PRESETS, NetworkSpec, preset


def test_default_preset_is_the_seeds_network():
    spec = preset(DEFAULT_PRESET)
    assert spec.sizes == (2, 10, 10, 1)
    assert spec.activations == ("sigmoid", "sigmoid", "identity")
    assert (spec.loss, spec.dtype, spec.layout) == ("squared_error", "float32", "out_in")
    assert spec.param_names == ("w1", "b1", "w2", "b2", "w3", "b3")


def test_presets_are_named_for_what_they_are():
    assert preset("2-10-5-1-sigmoid-squared").sizes == (2, 10, 5, 1)
    bce = preset("2-2-1-tanh-bce")
    assert (bce.sizes, bce.activations, bce.loss) == ((2, 2, 1), ("tanh", "sigmoid"), "bce")
    for name, spec in PRESETS.items():
        assert name.startswith("-".join(map(str, spec.sizes)))


@pytest.mark.parametrize(("layout", "w1", "w3"), [("out_in", (10, 2), (1, 10)),
                                                  ("in_out", (2, 10), (10, 1))])
def test_parameter_shapes_follow_the_layout(layout, w1, w3):
    spec = preset(DEFAULT_PRESET).with_options(layout=layout)
    assert spec.param_shape("w1") == w1
    assert spec.param_shape("w3") == w3
    assert spec.param_shape("b1") == (10,)


def test_deep_and_wide_networks_build():
    spec = NetworkSpec((10, *[21] * 10, 1), ("relu",) * 10 + ("identity",))
    assert spec.n_layers == 11 and spec.param_names[-1] == "b11"


def test_round_trip_through_a_dict():
    spec = preset("2-2-1-tanh-bce").with_options(dtype="float64", layout="in_out")
    assert NetworkSpec.from_dict(spec.to_dict()) == spec


def test_dtype_and_layout_are_optional_in_a_dict():
    spec = NetworkSpec.from_dict({"sizes": [2, 1], "activations": ["identity"],
                                  "loss": "mse"})
    assert (spec.dtype, spec.layout) == ("float32", "out_in")


BAD_SPECS = [
    ({"sizes": (2,), "activations": ()}, "needs at least an input and an output size"),
    ({"sizes": "2-10-1", "activations": ("relu",)}, "sizes must be a list of layer widths"),
    ({"sizes": (2, 0, 1), "activations": ("relu", "identity")},
     "size of layer 1 is 0; it must be a whole number from 1 to 4096"),
    ({"sizes": (2, 3.5, 1), "activations": ("relu", "identity")}, "size of layer 1 is 3.5"),
    ({"sizes": (True, 1), "activations": ("relu",)}, "input size is True"),
    ({"sizes": (2, 10**6), "activations": ("relu",)}, "from 1 to 4096"),
    ({"sizes": (2,) * 102, "activations": ("relu",) * 101}, "101 layers is more than the 100"),
    ({"sizes": (2, 3, 1), "activations": ("relu",)},
     r"make 2 layer\(s\), so they need 2 activation\(s\); got 1"),
    ({"sizes": (2, 1), "activations": "relu"}, "activations must be a list of names"),
    ({"sizes": (2, 1), "activations": ("swish",)}, "unknown activation 'swish'; valid: sigmoid"),
    ({"sizes": (2, 1), "activations": ("relu",), "loss": "hinge"},
     "unknown loss 'hinge'; valid: squared_error, half_squared_error, mse, bce"),
    ({"sizes": (2, 1), "activations": ("relu",), "dtype": "float16"},
     "unknown dtype 'float16'; valid: float32, float64"),
    ({"sizes": (2, 1), "activations": ("relu",), "layout": "row"},
     "unknown layout 'row'; valid: out_in, in_out"),
    ({"sizes": (2, 1), "activations": ("tanh",), "loss": "bce"},
     "loss 'bce' needs a sigmoid output layer, but the last activation is 'tanh'; "
     "valid losses for it: squared_error, half_squared_error, mse"),
]


@pytest.mark.parametrize(("fields", "message"), BAD_SPECS)
def test_bad_specs_say_what_is_wrong(fields, message):
    with pytest.raises(SpecError, match=message):
        NetworkSpec(**fields)


@pytest.mark.parametrize(("data", "message"), [
    ([2, 1], "a network must be an object"),
    ({"sizes": [2, 1], "activations": ["relu"]}, "the network has no 'loss'"),
    ({"activations": ["relu"], "loss": "mse"}, "the network has no 'sizes'"),
])
def test_bad_dicts_say_what_is_missing(data, message):
    with pytest.raises(SpecError, match=message):
        NetworkSpec.from_dict(data)


def test_unknown_preset_lists_the_valid_ones():
    with pytest.raises(UserInputError, match="unknown preset 'seeds'; valid: 2-10-10-1-sigmoid"):
        preset("seeds")


def test_describe_is_one_readable_line():
    assert preset(DEFAULT_PRESET).describe() == (
        "2-10-10-1 sigmoid/sigmoid/identity, squared_error, float32, out_in")

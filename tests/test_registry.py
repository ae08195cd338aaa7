"""The registry of built-in cells is the one description every path reads: walking it, every
constructor argument of every cell and convenience layer survives get_config -> from_config,
rnnkit.save -> rnnkit.load and pickling, with the same numbers afterwards. A new argument or a
new cell is covered here without editing this file."""

import pickle

import numpy as np
import pytest

import rnnkit
from rnnkit import _core
from rnnkit.layers.recurrent import registry
from rnnkit.layers.recurrent.rnn import RNN_ARGUMENTS

# A value other than the default for each argument the built-in cells and layers have. An
# argument missing here fails test_every_argument_has_a_test_value: add it.
OTHER_VALUES = {
    "units": 3,
    "activation": "relu",
    "recurrent_activation": "hard_sigmoid",
    "use_bias": False,
    "kernel_initializer": "ones",
    "recurrent_initializer": "identity",
    "bias_initializer": "ones",
    "unit_forget_bias": False,
    "reset_after": False,
    "dropout": 0.25,
    "recurrent_dropout": 0.5,
    "seed": 7,
    "precision": "bfloat16",
    "return_sequences": True,
    "return_state": True,
    "go_backwards": True,
    "stateful": True,
    "unroll": True,
    "time_major": True,
    "zero_output_for_mask": True,
}

CELLS = sorted(registry.cell_classes().items())
LAYERS = sorted(registry.layer_classes().items())
CASES = [
    (name, cls, argument)
    for name, cls in CELLS + LAYERS
    for argument in cls.ARGUMENTS
    if argument != "units"
] + [(name, cls, "dtype") for name, cls in CELLS + LAYERS]


def test_the_registry_holds_every_built_in_cell_and_its_layer():
    assert {"SimpleRNNCell", "LSTMCell", "GRUCell"} <= set(registry.cell_classes())
    for cell_class in registry.cell_classes().values():
        layer_class = registry.layer_of(cell_class)
        assert layer_class.CELL_CLASS is cell_class
        assert getattr(rnnkit, cell_class.__name__) is cell_class
        assert getattr(rnnkit.layers, layer_class.__name__) is layer_class
        assert registry.cell_named(cell_class.CORE_NAME) is cell_class


def test_the_registry_and_the_cpp_cell_table_list_the_same_cells():
    """Each C++ cell (`_core.CELLS`) has its Python class, and each class its C++ row."""
    core_names = [cell.CORE_NAME for cell in registry.cell_classes().values()]
    assert sorted(core_names) == sorted(row["name"] for row in _core.CELLS)


def test_every_argument_has_a_test_value():
    arguments = {a for _, cls in CELLS + LAYERS for a in cls.ARGUMENTS}
    assert arguments <= set(OTHER_VALUES), sorted(arguments - set(OTHER_VALUES))
    assert set(RNN_ARGUMENTS) <= set(OTHER_VALUES)


def test_signatures_show_the_described_arguments():
    import inspect

    for _, cls in CELLS + LAYERS:
        parameters = inspect.signature(cls).parameters
        assert list(parameters)[:-1] == list(cls.ARGUMENTS)
        assert all(parameters[n].default == d for n, d in cls.ARGUMENTS.items())


def _make(cls, argument):
    value = "float64" if argument == "dtype" else OTHER_VALUES[argument]
    return cls(4, **{argument: value}), value


def _config_value(obj, argument):
    config = obj.get_config()
    return config[argument]


def _run(obj, x):
    if isinstance(obj, rnnkit.layers.RNN):
        x = np.swapaxes(x, 0, 1) if obj.time_major else x
        y = obj(x)
        return [np.asarray(a) for a in (y if isinstance(y, (list, tuple)) else [y])]
    h = np.zeros((x.shape[0], 4), obj.dtype)
    states = [h] * (len(obj.state_size) if isinstance(obj.state_size, list) else 1)
    out, new_states = obj(x[:, 0], states)
    return [out, *new_states]


@pytest.mark.parametrize(("name", "cls", "argument"), CASES, ids=[f"{n}-{a}" for n, _, a in CASES])
def test_every_argument_survives_config_save_load_and_pickle(tmp_path, name, cls, argument):
    obj, value = _make(cls, argument)
    assert _config_value(obj, argument) == value
    x = np.random.default_rng(0).standard_normal((2, 5, 3)).astype(obj.dtype)
    expected = _run(obj, x)
    assert obj.built

    copies = {
        "from_config": cls.from_config(obj.get_config()),
        "pickle": pickle.loads(pickle.dumps(obj)),
    }
    path = tmp_path / "object.rnnkit"
    rnnkit.save(obj, path)
    copies["rnnkit.load"] = rnnkit.load(path)

    for how, copy in copies.items():
        assert type(copy) is cls, how
        assert _config_value(copy, argument) == value, how
        config = copy.get_config()
        for key, original in obj.get_config().items():
            if key != "name" or how != "from_config":
                assert config[key] == original, (how, key)
        if how == "from_config":
            if not copy.built:
                copy.build((2, 5, 3) if isinstance(copy, rnnkit.layers.RNN) else (2, 3))
            copy.set_weights(obj.get_weights())
        if isinstance(obj, rnnkit.layers.RNN) and obj.stateful:
            copy.reset_states()
            obj.reset_states()
        expected = _run(obj, x)
        for got, want in zip(_run(copy, x), expected):
            np.testing.assert_array_equal(got, want, err_msg=how)


def test_bfloat16_precision_survives_rnnkit_save_and_load(tmp_path):
    """The bug that made this registry: a bfloat16 layer came back as float32 from
    rnnkit.load, and its outputs moved by 3e-4."""
    layer = rnnkit.LSTM(16, precision="bfloat16", return_sequences=True)
    x = np.random.default_rng(1).standard_normal((3, 7, 5)).astype("float32")
    y = layer(x)
    rnnkit.save(layer, tmp_path / "lstm.rnnkit")
    loaded = rnnkit.load(tmp_path / "lstm.rnnkit")
    assert loaded.precision == "bfloat16"
    np.testing.assert_array_equal(loaded(x), y)

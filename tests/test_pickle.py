"""Pickling (and deepcopy) of rnnkit layers and models, and rnnkit's own save/load format.

Weights and the carried states of stateful layers travel; the compiled C++ state (kernels,
fast-path plans) and locks do not, and are rebuilt on the next call. After a round trip the
outputs are identical (bit for bit: same weights, same code), the weights stay read-only, and
`set_weights` still reaches the rebuilt kernels.
"""

import copy
import json
import pickle
import zipfile

import numpy as np
import pytest

import rnnkit
from conftest import assert_arrays_equal
from rnnkit.examples import MinimalRNNCell

BATCH, STEPS, FEATURES, VOCAB = 4, 6, 3, 9


def floats(rng, dtype="float32"):
    x = rng.standard_normal((BATCH, STEPS, FEATURES)).astype(dtype)
    x[1, 3:] = 0  # padding, for the models with Masking
    return x


def ids(rng):
    tokens = rng.integers(1, VOCAB, (BATCH, STEPS))
    tokens[1, 3:] = 0
    tokens[2, :2] = 0
    return tokens


LAYERS = {
    "simple_rnn": lambda: rnnkit.SimpleRNN(5, activation="relu", return_sequences=True),
    "lstm": lambda: rnnkit.LSTM(5, return_state=True),
    "gru_reset_before": lambda: rnnkit.GRU(5, reset_after=False, go_backwards=True),
    "rnn_stacked_cells": lambda: rnnkit.RNN(
        [rnnkit.LSTMCell(4), rnnkit.GRUCell(3), rnnkit.SimpleRNNCell(2)], return_state=True),
    "bidirectional": lambda: rnnkit.Bidirectional(
        rnnkit.LSTM(4, return_sequences=True), merge_mode="ave"),
    "custom_python_cell": lambda: rnnkit.RNN(MinimalRNNCell(4), return_sequences=True),
    "float64_lstm": lambda: rnnkit.LSTM(5, dtype="float64"),
    "unrolled_gru": lambda: rnnkit.GRU(5, unroll=True),
}


def models():
    return {
        "masking_stack": lambda: rnnkit.Sequential([
            rnnkit.InputLayer(shape=(STEPS, FEATURES)), rnnkit.Masking(),
            rnnkit.Bidirectional(rnnkit.GRU(4, return_sequences=True)),
            rnnkit.TimeDistributed(rnnkit.Dense(3, activation="relu")), rnnkit.Dropout(0.5),
            rnnkit.LSTM(3, return_sequences=True), rnnkit.Flatten(),
            rnnkit.Dense(2, activation="softmax"),
        ]),
        "embedding_stack": lambda: rnnkit.Sequential([
            rnnkit.Embedding(VOCAB, 4, mask_zero=True),
            rnnkit.RNN([rnnkit.LSTMCell(4), rnnkit.GRUCell(3)], return_sequences=True),
            rnnkit.SpatialDropout1D(0.2), rnnkit.SimpleRNN(3), rnnkit.RepeatVector(2),
            rnnkit.Reshape((6,)), rnnkit.Activation("tanh"), rnnkit.Dense(1),
        ]),
    }


def inputs_for(name, rng):
    if name == "embedding_stack":
        return ids(rng)
    return floats(rng, "float64" if name.startswith("float64") else "float32")


def randomize(obj, rng):
    obj.set_weights([rng.uniform(-0.5, 0.5, w.shape) for w in obj.get_weights()])


def built(name, rng):
    obj = LAYERS[name]() if name in LAYERS else models()[name]()
    x = inputs_for(name, rng)
    obj(x)  # builds; a second call makes the fast-path plan of recurrent layers
    randomize(obj, rng)
    obj(x)
    obj(x)
    return obj, x


ALL = [*LAYERS, "masking_stack", "embedding_stack"]


@pytest.mark.parametrize("name", ALL)
@pytest.mark.parametrize("protocol", [2, pickle.HIGHEST_PROTOCOL])
def test_pickle_round_trip_gives_identical_outputs(name, protocol, rng):
    obj, x = built(name, rng)
    expected = obj(x)
    clone = pickle.loads(pickle.dumps(obj, protocol=protocol))
    assert type(clone) is type(obj)
    assert_arrays_equal(clone(x), expected)
    assert_arrays_equal(clone.get_weights(), obj.get_weights())
    for weight in clone.weights:
        assert not weight.flags.writeable  # still read-only
    # The compiled kernels are rebuilt from the new weights after set_weights.
    new = [w * 0.5 for w in obj.get_weights()]
    clone.set_weights(new)
    obj.set_weights(new)
    assert_arrays_equal(clone(x), obj(x))


@pytest.mark.parametrize("name", ALL)
def test_deepcopy_is_independent(name, rng):
    obj, x = built(name, rng)
    expected = obj(x)
    clone = copy.deepcopy(obj)
    assert_arrays_equal(clone(x), expected)
    clone.set_weights([w + 1 for w in clone.get_weights()])
    assert_arrays_equal(obj(x), expected)  # the original is untouched


def test_unbuilt_layer_pickles(rng):
    layer = pickle.loads(pickle.dumps(rnnkit.LSTM(3)))
    assert not layer.built
    assert layer(floats(rng)).shape == (BATCH, 3)


def test_shared_weight_arrays_stay_shared(rng):
    layer, _ = built("lstm", rng)
    clone = pickle.loads(pickle.dumps(layer))
    assert clone.cell.kernel is clone.cell.weights[0]
    assert clone.cell.bias is clone.cell.weights[2]


@pytest.mark.parametrize("kind", ["lstm", "bidirectional", "stacked", "model"])
def test_stateful_states_travel(kind, rng):
    makers = {
        "lstm": lambda: rnnkit.LSTM(4, stateful=True),
        "bidirectional": lambda: rnnkit.Bidirectional(rnnkit.GRU(3, stateful=True)),
        "stacked": lambda: rnnkit.RNN([rnnkit.LSTMCell(3), rnnkit.GRUCell(2)], stateful=True),
        "model": lambda: rnnkit.Sequential([
            rnnkit.GRU(4, stateful=True, return_sequences=True),
            rnnkit.LSTM(3, stateful=True), rnnkit.Dense(2)]),
    }
    layer = makers[kind]()
    chunks = [floats(rng) for _ in range(3)]
    layer(chunks[0])
    layer(chunks[1])
    clone = pickle.loads(pickle.dumps(layer))
    # The clone continues from the carried states exactly as the original does.
    assert_arrays_equal(clone(chunks[2]), layer(chunks[2]))
    clone.reset_states()
    assert np.any(clone(chunks[0]) != layer(chunks[0]))  # reset: the clone starts over


# ---------------------------------------------------------------------------------------
# rnnkit.save / rnnkit.load
# ---------------------------------------------------------------------------------------
SAVABLE = [name for name in ALL if name != "custom_python_cell"]


@pytest.mark.parametrize("name", SAVABLE)
def test_save_and_load_round_trip(name, rng, tmp_path):
    obj, x = built(name, rng)
    path = tmp_path / f"{name}.rnnkit"
    rnnkit.save(obj, path)
    loaded = rnnkit.load(path)
    assert type(loaded) is type(obj)
    assert loaded.dtype == obj.dtype
    assert_arrays_equal(loaded.get_weights(), obj.get_weights())
    assert_arrays_equal(loaded(x), obj(x))


def test_saved_file_is_json_and_npz(rng, tmp_path):
    model, _ = built("masking_stack", rng)
    rnnkit.save(model, tmp_path / "m.rnnkit")
    with zipfile.ZipFile(tmp_path / "m.rnnkit") as archive:
        assert sorted(archive.namelist()) == ["rnnkit.json", "states.npz", "weights.npz"]
        header = json.loads(archive.read("rnnkit.json"))
    assert header["format"] == "rnnkit" and header["format_version"] == 1
    assert header["weights"] == len(model.get_weights())
    entry = header["object"]
    assert entry["class_name"] == "Sequential"
    classes = [layer["class_name"] for layer in entry["config"]["layers"]]
    assert classes == ["InputLayer", "Masking", "Bidirectional", "TimeDistributed", "Dropout",
                       "LSTM", "Flatten", "Dense"]
    bidirectional = entry["config"]["layers"][2]["config"]
    assert bidirectional["layer"]["config"]["units"] == 4
    assert bidirectional["backward_layer"]["config"]["go_backwards"] is True


@pytest.mark.parametrize("kind", ["lstm", "stacked", "model"])
def test_save_keeps_stateful_states(kind, rng, tmp_path):
    makers = {
        "lstm": lambda: rnnkit.LSTM(4, stateful=True),
        "stacked": lambda: rnnkit.RNN([rnnkit.LSTMCell(3), rnnkit.GRUCell(2)], stateful=True),
        "model": lambda: rnnkit.Sequential([
            rnnkit.Bidirectional(rnnkit.GRU(4, stateful=True, return_sequences=True)),
            rnnkit.LSTM(3, stateful=True), rnnkit.Dense(2)]),
    }
    layer = makers[kind]()
    chunks = [floats(rng) for _ in range(2)]
    layer(chunks[0])
    rnnkit.save(layer, tmp_path / "s.rnnkit")
    loaded = rnnkit.load(tmp_path / "s.rnnkit")
    assert_arrays_equal(loaded(chunks[1]), layer(chunks[1]))


@pytest.mark.parametrize("cell", ["SimpleRNNCell", "LSTMCell", "GRUCell"])
def test_save_and_load_a_cell(cell, rng, tmp_path):
    original = getattr(rnnkit, cell)(4)
    x = rng.standard_normal((BATCH, FEATURES)).astype("float32")
    states = [np.zeros((BATCH, 4), "float32")] * (2 if cell == "LSTMCell" else 1)
    original(x, states)
    randomize(original, rng)
    rnnkit.save(original, tmp_path / "c.rnnkit")
    loaded = rnnkit.load(tmp_path / "c.rnnkit")
    assert type(loaded) is type(original)
    assert_arrays_equal(loaded(x, states), original(x, states))


def test_save_refuses_custom_cells_and_points_to_pickle(rng, tmp_path):
    layer, _ = built("custom_python_cell", rng)
    with pytest.raises(ValueError, match="[Pp]ickle"):
        rnnkit.save(layer, tmp_path / "custom.rnnkit")


def test_load_refuses_other_files(tmp_path):
    (tmp_path / "plain.txt").write_text("hello")
    with pytest.raises(ValueError, match="not an rnnkit file"):
        rnnkit.load(tmp_path / "plain.txt")
    with zipfile.ZipFile(tmp_path / "other.zip", "w") as archive:
        archive.writestr("x.json", "{}")
    with pytest.raises(ValueError, match="not an rnnkit file"):
        rnnkit.load(tmp_path / "other.zip")


def test_torch_converted_model_pickles_and_saves(rng, tmp_path):
    import torch

    module = torch.nn.LSTM(FEATURES, 4, num_layers=2, bidirectional=True, batch_first=True)
    converted = rnnkit.from_torch(module)
    x = floats(rng)
    expected = converted(x)
    assert_arrays_equal(pickle.loads(pickle.dumps(converted))(x), expected)
    rnnkit.save(converted, tmp_path / "t.rnnkit")
    loaded = rnnkit.load(tmp_path / "t.rnnkit")
    assert isinstance(loaded, rnnkit.TorchRNN) and loaded.batch_first
    assert_arrays_equal(loaded(x), expected)

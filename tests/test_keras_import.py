"""Keras models into rnnkit: `load_keras`, `from_keras`, `Sequential.load_weights`.

Every case builds a real Keras 3 model (NumPy backend) around recurrent layers, as a
`keras.Sequential` and as a functional chain, gives it random weights (biases included), saves
it in every Keras format (the `.keras` archive, the legacy `.h5` of `model.save`, a Keras 3
`.weights.h5` and a legacy weights-only `.h5`, the last two with the `model.to_json()`
architecture), loads each file with rnnkit, and compares the loaded model's outputs with
the Keras model's on inputs with padded (masked) timesteps: fully masked rows, masked first
and last steps, holes in the middle. The loaders use h5py and json only: one test loads
every file in a subprocess where importing Keras fails.
"""

import json
import os
import subprocess
import sys
import textwrap

import h5py
import numpy as np
import pytest

import rnnkit
from conftest import assert_results_close, import_keras, seed_for

os.environ.setdefault("KERAS_BACKEND", "numpy")
keras = import_keras()
from keras.src.legacy.saving import legacy_h5_format  # noqa: E402

L = keras.layers
BATCH, STEPS, FEATURES, VOCAB = 6, 7, 3, 11


# ---------------------------------------------------------------------------------------
# inputs: padded sequences, as Masking and Embedding(mask_zero=True) see them
# ---------------------------------------------------------------------------------------
def padded_floats(rng, dtype="float32", steps=STEPS):
    """Float sequences with all-zero (masked) timesteps: row 0 fully masked, row 1 padded at
    the end, row 2 at the start, row 3 with holes; rows 4-5 unmasked."""
    x = rng.standard_normal((BATCH, steps, FEATURES)).astype(dtype)
    x[0] = 0
    x[1, 4:] = 0
    x[2, :2] = 0
    x[3, [1, 3, steps - 1]] = 0
    return x


def padded_ids(rng):
    """Token ids with 0 as padding, in the same pattern as `padded_floats`."""
    ids = rng.integers(1, VOCAB, (BATCH, STEPS))
    ids[0] = 0
    ids[1, 4:] = 0
    ids[2, :2] = 0
    ids[3, [1, 3, STEPS - 1]] = 0
    return ids.astype("int32")


# ---------------------------------------------------------------------------------------
# the model zoo: each case is (input kind, list of layer factories)
# ---------------------------------------------------------------------------------------
def _floats(shape=(STEPS, FEATURES), dtype="float32"):
    return {"kind": "floats", "shape": shape, "dtype": dtype}


IDS = {"kind": "ids", "shape": (STEPS,), "dtype": "int32"}

CASES = {
    "masking_lstm": (_floats(), lambda: [
        L.Masking(0.0), L.LSTM(4), L.Dense(2, activation="softmax")]),
    "masking_lstm_sequences_timedistributed": (_floats(), lambda: [
        L.Masking(), L.LSTM(4, return_sequences=True),
        L.TimeDistributed(L.Dense(3, activation="tanh"))]),
    "masking_gru_stacked_layers": (_floats(), lambda: [
        L.Masking(), L.GRU(4, return_sequences=True), L.GRU(3, reset_after=False),
        L.Dense(2)]),
    "masking_simple_rnn_relu_go_backwards": (_floats(), lambda: [
        L.Masking(), L.SimpleRNN(4, activation="relu", return_sequences=True), L.Dropout(0.4),
        L.SimpleRNN(3, go_backwards=True), L.Dense(1)]),
    "masking_bidirectional_concat": (_floats(), lambda: [
        L.Masking(), L.Bidirectional(L.LSTM(4, return_sequences=True)),
        L.Bidirectional(L.GRU(3)), L.Dense(2)]),
    "masking_bidirectional_sum": (_floats(), lambda: [
        L.Masking(), L.Bidirectional(L.GRU(4, return_sequences=True), merge_mode="sum"),
        L.TimeDistributed(L.Dense(2))]),
    "masking_bidirectional_mul_ave": (_floats(), lambda: [
        L.Masking(), L.Bidirectional(L.SimpleRNN(4, return_sequences=True), merge_mode="mul"),
        L.Bidirectional(L.LSTM(3), merge_mode="ave")]),
    "masking_bidirectional_own_backward_layer": (_floats(), lambda: [
        L.Masking(), L.Bidirectional(
            L.LSTM(4, return_sequences=True),
            backward_layer=L.GRU(4, return_sequences=True, go_backwards=True)),
        L.LSTM(2)]),
    "masking_rnn_stacked_cells": (_floats(), lambda: [
        L.Masking(), L.RNN([L.LSTMCell(4), L.GRUCell(3), L.SimpleRNNCell(2)],
                           return_sequences=True),
        L.Flatten(), L.Dense(2)]),
    "masking_rnn_cell_zero_output": (_floats(), lambda: [
        L.Masking(), L.RNN(L.GRUCell(4), return_sequences=True, zero_output_for_mask=True),
        L.GaussianNoise(0.3), L.RNN(L.LSTMCell(3))]),
    "masking_dense_spatial_dropout_lstm": (_floats(), lambda: [
        L.Masking(), L.Dense(5, activation="relu"), L.SpatialDropout1D(0.3),
        L.LSTM(3, return_sequences=True), L.Activation("softmax"), L.GaussianDropout(0.2),
        L.GRU(2)]),
    "masking_value_nonzero": (_floats(), lambda: [
        L.Masking(mask_value=0.5), L.LSTM(3), L.Dense(2)]),
    "reshape_lstm": (_floats(shape=(STEPS * FEATURES,)), lambda: [
        L.Reshape((STEPS, FEATURES)), L.LSTM(4, unroll=True), L.Dense(2)]),
    "repeat_vector_autoencoder": (_floats(), lambda: [
        L.Masking(), L.LSTM(4), L.RepeatVector(STEPS),
        L.LSTM(4, return_sequences=True), L.TimeDistributed(L.Dense(FEATURES))]),
    "nested_sequential": (_floats(), lambda: [
        keras.Sequential([L.Masking(), L.LSTM(4, return_sequences=True)]), L.GRU(3),
        L.Dense(2)]),
    "embedding_lstm": (IDS, lambda: [
        L.Embedding(VOCAB, 4, mask_zero=True), L.LSTM(5), L.Dense(2)]),
    "embedding_bidirectional_gru_timedistributed": (IDS, lambda: [
        L.Embedding(VOCAB, 4, mask_zero=True),
        L.Bidirectional(L.GRU(4, return_sequences=True)), L.TimeDistributed(L.Dense(3))]),
    "embedding_stacked_lstm_gru_simple_rnn": (IDS, lambda: [
        L.Embedding(VOCAB, 4, mask_zero=True), L.LSTM(4, return_sequences=True),
        L.GRU(4, return_sequences=True), L.SimpleRNN(3), L.Dense(1, activation="sigmoid")]),
    "embedding_rnn_stacked_cells": (IDS, lambda: [
        L.Embedding(VOCAB, 4, mask_zero=True),
        L.RNN([L.GRUCell(3), L.LSTMCell(3)], return_sequences=True), L.Dropout(0.5),
        L.Bidirectional(L.LSTM(2))]),
    "embedding_without_mask": (IDS, lambda: [L.Embedding(VOCAB, 4), L.GRU(3)]),
    "float64_masking_lstm": (_floats(dtype="float64"), lambda: [
        L.Masking(dtype="float64"), L.LSTM(4, return_sequences=True, dtype="float64"),
        L.Bidirectional(L.GRU(3, dtype="float64"), dtype="float64"),
        L.Dense(2, dtype="float64")]),
}
APIS = ("sequential", "functional")
FORMATS = ("keras", "h5", "weights_h5_with_config", "legacy_weights_h5_with_config", "live")


def build_keras_model(case, api, rng):
    spec, factory = CASES[case]
    layers = factory()
    inputs = keras.Input(spec["shape"], dtype=spec["dtype"])
    if api == "sequential":
        model = keras.Sequential([inputs, *layers])
    else:
        x = inputs
        for layer in layers:
            x = layer(x)
        model = keras.Model(inputs, x)
    model.set_weights(
        [rng.uniform(-0.6, 0.6, w.shape).astype(w.dtype) for w in model.get_weights()]
    )
    return model


def make_inputs(case, rng):
    spec = CASES[case][0]
    if spec["kind"] == "ids":
        return padded_ids(rng)
    if spec["shape"] == (STEPS * FEATURES,):
        return padded_floats(rng).reshape(BATCH, -1)
    x = padded_floats(rng, spec["dtype"])
    if case == "masking_value_nonzero":
        x[x == 0] = 0.5
    return x


def save_all_formats(model, directory):
    paths = {
        "keras": directory / "model.keras",
        "h5": directory / "model.h5",
        "weights_h5_with_config": directory / "model.weights.h5",
        "legacy_weights_h5_with_config": directory / "legacy_weights.h5",
        "config": directory / "model.json",
    }
    model.save(paths["keras"])
    model.save(paths["h5"])
    model.save_weights(paths["weights_h5_with_config"])
    with h5py.File(paths["legacy_weights_h5_with_config"], "w") as f:
        legacy_h5_format.save_weights_to_hdf5_group(f, model)
    paths["config"].write_text(model.to_json())
    return paths


@pytest.fixture(scope="module", params=[(c, a) for c in CASES for a in APIS],
                ids=lambda p: f"{p[0]}-{p[1]}")
def saved(request, tmp_path_factory):
    case, api = request.param
    rng = np.random.default_rng(seed_for(case, api))
    model = build_keras_model(case, api, rng)
    directory = tmp_path_factory.mktemp(f"{case}-{api}")
    paths = save_all_formats(model, directory)
    x = make_inputs(case, rng)
    expected = np.asarray(model(x))
    dtype = CASES[case][0]["dtype"] if CASES[case][0]["kind"] == "floats" else "float32"
    return {"case": case, "api": api, "model": model, "paths": paths, "x": x,
            "expected": expected, "dtype": dtype}


def load(saved, fmt):
    paths = saved["paths"]
    if fmt == "live":
        return rnnkit.from_keras(saved["model"])
    if fmt in ("keras", "h5"):
        return rnnkit.load_keras(paths[fmt])
    return rnnkit.load_keras(paths[fmt], config=paths["config"])


@pytest.mark.parametrize("fmt", FORMATS)
def test_loaded_model_matches_keras(saved, fmt):
    model = load(saved, fmt)
    sequential = isinstance(saved["model"], keras.Sequential)
    assert isinstance(model, rnnkit.Sequential if sequential else rnnkit.Model)
    keras_layers = [layer for layer in saved["model"].layers
                    if not (sequential and isinstance(layer, L.InputLayer))]
    assert [layer.name for layer in model.layers] == [layer.name for layer in keras_layers]
    assert [type(layer).__name__ for layer in model.layers] == [
        type(layer).__name__ for layer in keras_layers]
    # Same weights, in Keras's model.get_weights() order.
    keras_weights = saved["model"].get_weights()
    ours = model.get_weights()
    assert len(ours) == len(keras_weights)
    for got, want in zip(ours, keras_weights):
        np.testing.assert_array_equal(got, want)
    assert model.count_params() == saved["model"].count_params()
    label = f"{saved['case']} {fmt}"
    assert_results_close(model(saved["x"]), saved["expected"], saved["dtype"], label)
    assert_results_close(model.predict(saved["x"], batch_size=4), saved["expected"], saved["dtype"])


def test_load_weights_into_a_model_built_in_rnnkit(saved):
    """`Sequential.load_weights` reads a Keras weights file (Keras 3 and legacy layouts) into a
    model of the same architecture made by rnnkit itself (here: from the config)."""
    from rnnkit.io.keras import model_from_config

    config = json.loads(saved["paths"]["config"].read_text())
    for key in ("weights_h5_with_config", "legacy_weights_h5_with_config", "keras", "h5"):
        model = model_from_config(config)
        before = model(saved["x"])
        model.load_weights(saved["paths"][key])
        after = model(saved["x"])
        assert not np.allclose(before, after)  # the weights did change
        assert_results_close(after, saved["expected"], saved["dtype"], key)


# ---------------------------------------------------------------------------------------
# a model written in rnnkit reads Keras weights files
# ---------------------------------------------------------------------------------------
def test_handwritten_rnnkit_model_loads_keras_weights(tmp_path, rng):
    keras_model = keras.Sequential([
        keras.Input((STEPS,), dtype="int32"),
        L.Embedding(VOCAB, 4, mask_zero=True),
        L.Bidirectional(L.LSTM(3, return_sequences=True)),
        L.LSTM(3, return_sequences=True),
        L.LSTM(2),
        L.Dense(2),
    ])
    keras_model.set_weights(
        [rng.uniform(-0.6, 0.6, w.shape).astype("float32") for w in keras_model.get_weights()]
    )
    keras_model.save_weights(tmp_path / "w.weights.h5")
    with h5py.File(tmp_path / "legacy.h5", "w") as f:
        legacy_h5_format.save_weights_to_hdf5_group(f, keras_model)
    ids = padded_ids(rng)
    expected = np.asarray(keras_model(ids))
    for path in (tmp_path / "w.weights.h5", tmp_path / "legacy.h5"):
        model = rnnkit.Sequential([
            rnnkit.InputLayer(shape=(STEPS,), dtype="int32"),
            rnnkit.Embedding(VOCAB, 4, mask_zero=True),
            rnnkit.Bidirectional(rnnkit.LSTM(3, return_sequences=True)),
            rnnkit.LSTM(3, return_sequences=True),
            rnnkit.LSTM(2),
            rnnkit.Dense(2),
        ])
        model.load_weights(path)  # built from the InputLayer's shape
        assert_results_close(model(ids), expected, "float32", str(path))


def test_load_weights_refuses_another_architecture(tmp_path, rng):
    keras_model = keras.Sequential([keras.Input((STEPS, FEATURES)), L.LSTM(3), L.Dense(2)])
    keras_model.save_weights(tmp_path / "w.weights.h5")
    with h5py.File(tmp_path / "legacy.h5", "w") as f:
        legacy_h5_format.save_weights_to_hdf5_group(f, keras_model)
    wrong = rnnkit.Sequential([rnnkit.InputLayer(shape=(STEPS, FEATURES)), rnnkit.GRU(3),
                               rnnkit.Dense(2)])
    wrong.build((None, STEPS, FEATURES))
    before = wrong.get_weights()
    with pytest.raises(ValueError, match="gru"):
        wrong.load_weights(tmp_path / "w.weights.h5")
    with pytest.raises(ValueError, match="shapes"):
        wrong.load_weights(tmp_path / "legacy.h5")
    for got, want in zip(wrong.get_weights(), before):
        np.testing.assert_array_equal(got, want)  # nothing was written
    unbuilt = rnnkit.Sequential([rnnkit.LSTM(3), rnnkit.Dense(2)])
    with pytest.raises(ValueError, match="Build"):
        unbuilt.load_weights(tmp_path / "w.weights.h5")


# ---------------------------------------------------------------------------------------
# stateful models, dense activations, single layers and cells
# ---------------------------------------------------------------------------------------
def test_stateful_model_carries_states_like_keras(tmp_path, rng):
    keras_model = keras.Sequential([
        keras.Input((STEPS, FEATURES), batch_size=BATCH),
        L.LSTM(4, stateful=True, return_sequences=True),
        L.GRU(3, stateful=True),
        L.Dense(2),
    ])
    keras_model.set_weights(
        [rng.uniform(-0.6, 0.6, w.shape).astype("float32") for w in keras_model.get_weights()]
    )
    keras_model.save(tmp_path / "stateful.keras")
    model = rnnkit.load_keras(tmp_path / "stateful.keras")
    assert all(layer.stateful for layer in model.layers[:2])
    chunks = [rng.standard_normal((BATCH, STEPS, FEATURES)).astype("float32") for _ in range(3)]
    for i, chunk in enumerate(chunks):
        assert_results_close(model(chunk), np.asarray(keras_model(chunk)), "float32", f"call {i}")
    model.reset_states()
    for layer in keras_model.layers[:2]:
        layer.reset_state()
    expected = np.asarray(keras_model(chunks[0]))
    assert_results_close(model(chunks[0]), expected, "float32", "after reset")


DENSE_ACTIVATIONS = (
    "softmax", "log_softmax", "relu6", "leaky_relu", "mish", "log_sigmoid", "hard_tanh",
    "tanh_shrink", "celu", "gelu", "selu", "elu", "softplus", "silu", "hard_silu", "linear",
    "exponential", "hard_sigmoid", "softsign", "relu", "sigmoid", "tanh",
)


@pytest.mark.parametrize("activation", DENSE_ACTIVATIONS)
def test_dense_and_activation_layers_by_name(tmp_path, rng, activation):
    keras_model = keras.Sequential([
        keras.Input((STEPS, FEATURES)), L.TimeDistributed(L.Dense(5, activation=activation)),
        L.LSTM(4, return_sequences=True), L.Activation(activation), L.Flatten(),
        L.Dense(3, activation=activation),
    ])
    # Large enough to reach every activation's nonlinear parts (relu6's clip at 6, ...);
    # the last Dense is kept small so that "exponential" stays well inside float32.
    weights = [rng.uniform(-1.5, 1.5, w.shape).astype("float32")
               for w in keras_model.get_weights()]
    weights[-2:] = [w * np.float32(0.2) for w in weights[-2:]]
    keras_model.set_weights(weights)
    keras_model.save(tmp_path / "m.keras")
    x = (2 * rng.standard_normal((BATCH, STEPS, FEATURES))).astype("float32")
    model = rnnkit.load_keras(tmp_path / "m.keras")
    assert_results_close(model(x), np.asarray(keras_model(x)), "float32", activation)


@pytest.mark.parametrize("make", [
    lambda: L.LSTM(4, return_sequences=True, go_backwards=True),
    lambda: L.GRU(4, reset_after=False, return_state=True),
    lambda: L.Bidirectional(L.SimpleRNN(3, return_sequences=True), merge_mode=None),
    lambda: L.RNN([L.LSTMCell(3), L.GRUCell(2)], return_state=True),
    lambda: L.TimeDistributed(L.Dense(3, activation="relu")),
    lambda: L.Dense(3, use_bias=False),
], ids=["lstm", "gru_return_state", "bidirectional_none", "stacked_cells", "time_distributed",
        "dense_no_bias"])
def test_from_keras_converts_a_single_layer(rng, make):
    keras_layer = make()
    x = rng.standard_normal((BATCH, STEPS, FEATURES)).astype("float32")
    keras_layer(x)
    keras_layer.set_weights(
        [rng.uniform(-0.6, 0.6, w.shape).astype("float32") for w in keras_layer.get_weights()]
    )
    ours = rnnkit.from_keras(keras_layer)
    assert type(ours).__name__ == type(keras_layer).__name__
    expected = keras_layer(x)
    got = ours(x)
    expected = list(expected) if isinstance(expected, (list, tuple)) else [expected]
    got = list(got) if isinstance(got, (list, tuple)) else [got]
    flat = []
    for item in got:
        flat.extend(item if isinstance(item, (list, tuple)) else [item])
    expected_flat = []
    for item in expected:
        expected_flat.extend(item if isinstance(item, (list, tuple)) else [item])
    assert len(flat) == len(expected_flat)
    for a, b in zip(flat, expected_flat):
        assert_results_close(a, np.asarray(b), "float32")


@pytest.mark.parametrize("cell", ["SimpleRNNCell", "LSTMCell", "GRUCell"])
def test_from_keras_converts_a_cell(rng, cell):
    keras_cell = getattr(L, cell)(4)
    x = rng.standard_normal((BATCH, FEATURES)).astype("float32")
    states = [rng.standard_normal((BATCH, 4)).astype("float32")
              for _ in range(2 if cell == "LSTMCell" else 1)]
    keras_cell(x, states)
    keras_cell.set_weights(
        [rng.uniform(-0.6, 0.6, w.shape).astype("float32") for w in keras_cell.get_weights()]
    )
    ours = rnnkit.from_keras(keras_cell)
    assert type(ours).__name__ == cell
    got_output, got_states = ours(x, states)
    want_output, want_states = keras_cell(x, states)
    assert_results_close(got_output, np.asarray(want_output), "float32")
    for a, b in zip(got_states, want_states):
        assert_results_close(a, np.asarray(b), "float32")


def test_mixed_precision_policy_needs_an_explicit_dtype(tmp_path, rng):
    keras_model = keras.Sequential([
        keras.Input((STEPS, FEATURES)), L.LSTM(3, dtype="mixed_float16"),
        L.Dense(2, dtype="float32"),
    ])
    keras_model.save(tmp_path / "mixed.keras")
    with pytest.raises(ValueError, match="mixed_float16.*dtype='float32'"):
        rnnkit.load_keras(tmp_path / "mixed.keras")
    model = rnnkit.load_keras(tmp_path / "mixed.keras", dtype="float32")
    assert [layer.dtype for layer in model.layers] == ["float32", "float32"]
    x = rng.standard_normal((BATCH, STEPS, FEATURES)).astype("float32")
    # Keras computes the LSTM in float16: the float32 result agrees to float16 precision.
    np.testing.assert_allclose(model(x), np.asarray(keras_model(x), "float32"), atol=5e-3)


def test_summary_lists_layers_shapes_and_parameters(tmp_path):
    keras_model = keras.Sequential([
        keras.Input((STEPS,), dtype="int32"), L.Embedding(VOCAB, 4, mask_zero=True),
        L.Bidirectional(L.LSTM(3, return_sequences=True)), L.GRU(2), L.Dense(1),
    ])
    keras_model.save(tmp_path / "m.keras")
    lines = []
    text = rnnkit.load_keras(tmp_path / "m.keras").summary(print_fn=lines.append)
    assert lines == [text]
    for layer in keras_model.layers:
        assert layer.name in text
        assert f"{layer.count_params():,}" in text
    assert "(None, 7, 6)" in text  # the Bidirectional concat output
    assert f"Total params: {keras_model.count_params():,}" in text


# ---------------------------------------------------------------------------------------
# refused: with a clear error naming what and listing what is supported
# ---------------------------------------------------------------------------------------
def test_unsupported_layer_is_named(tmp_path):
    keras_model = keras.Sequential([
        keras.Input((STEPS, FEATURES)), L.Conv1DTranspose(4, 3), L.LSTM(3),
    ])
    keras_model.save(tmp_path / "conv.keras")
    keras_model.save(tmp_path / "conv.h5")
    for path in ("conv.keras", "conv.h5"):
        with pytest.raises(ValueError,
                           match=r"'Conv1DTranspose'.*Supported layers:.*LSTM.*Masking"):
            rnnkit.load_keras(tmp_path / path)


def test_branching_functional_model_loads(tmp_path, rng):
    inputs = keras.Input((STEPS, FEATURES))
    branch_a = L.LSTM(3)(inputs)
    branch_b = L.GRU(3)(inputs)
    model = keras.Model(inputs, L.Add()([branch_a, branch_b]))
    model.save(tmp_path / "branches.keras")
    x = padded_floats(rng)
    loaded = rnnkit.load_keras(tmp_path / "branches.keras")
    assert isinstance(loaded, rnnkit.Model)
    assert_results_close(loaded(x), np.asarray(model(x)), "float32", "branches")


def test_explicit_mask_made_by_operations_loads(tmp_path, rng):
    ids = keras.Input((STEPS,), dtype="int32")
    embedded = L.Embedding(VOCAB, 4)(ids)  # no mask_zero: the mask is given explicitly
    out = L.LSTM(3)(embedded, mask=keras.ops.not_equal(ids, 0))
    model = keras.Model(ids, out)
    model.save(tmp_path / "explicit_mask.keras")
    x = padded_ids(rng)
    loaded = rnnkit.load_keras(tmp_path / "explicit_mask.keras")
    assert_results_close(loaded(x), np.asarray(model(x)), "float32", "explicit mask")


def test_custom_activation_is_refused(tmp_path):
    @keras.saving.register_keras_serializable(package="rnnkit_tests")
    def cube(x):
        return x * x * x

    keras_model = keras.Sequential([
        keras.Input((STEPS, FEATURES)), L.LSTM(3), L.Dense(2, activation=cube)])
    keras_model.save(tmp_path / "custom.keras")
    with pytest.raises(ValueError, match="custom activation"):
        rnnkit.load_keras(tmp_path / "custom.keras")


def test_weights_only_file_needs_the_architecture(tmp_path):
    keras_model = keras.Sequential([keras.Input((STEPS, FEATURES)), L.LSTM(3)])
    keras_model.save_weights(tmp_path / "w.weights.h5")
    with pytest.raises(ValueError, match="weights only"):
        rnnkit.load_keras(tmp_path / "w.weights.h5")
    with pytest.raises(ValueError, match="neither a .keras archive nor an HDF5 file"):
        (tmp_path / "junk.keras").write_text("not a model")
        rnnkit.load_keras(tmp_path / "junk.keras")


# ---------------------------------------------------------------------------------------
# the loaders do not need Keras
# ---------------------------------------------------------------------------------------
def test_loading_needs_no_keras(tmp_path, rng):
    """Load every file format in a fresh interpreter where `import keras` fails."""
    keras_model = build_keras_model("embedding_bidirectional_gru_timedistributed",
                                    "functional", rng)
    paths = save_all_formats(keras_model, tmp_path)
    ids = padded_ids(rng)
    np.save(tmp_path / "ids.npy", ids)
    np.save(tmp_path / "expected.npy", np.asarray(keras_model(ids)))
    script = textwrap.dedent(f"""
        import sys
        import numpy as np
        for blocked in ("keras", "tensorflow", "jax", "torch"):
            sys.modules[blocked] = None  # any import of these now raises ImportError
        import rnnkit
        ids = np.load({str(tmp_path / "ids.npy")!r})
        expected = np.load({str(tmp_path / "expected.npy")!r})
        config = {str(paths["config"])!r}
        models = [
            rnnkit.load_keras({str(paths["keras"])!r}),
            rnnkit.load_keras({str(paths["h5"])!r}),
            rnnkit.load_keras({str(paths["weights_h5_with_config"])!r}, config=config),
            rnnkit.load_keras({str(paths["legacy_weights_h5_with_config"])!r}, config=config),
        ]
        for model in models:
            np.testing.assert_allclose(model(ids), expected, rtol=1e-5, atol=1e-5)
        print("loaded", len(models))
    """)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "loaded 4"


# ---------------------------------------------------------------------------------------
# tf.keras 2 files (no TensorFlow here: the tf.keras 2 config layout is written out by hand,
# the weights come from the equivalent Keras 3 model in the legacy HDF5 layout both share)
# ---------------------------------------------------------------------------------------
def _tf2_rnn(class_name, name, units, **extra):
    config = {
        "name": name, "trainable": True, "dtype": "float32", "return_sequences": False,
        "return_state": False, "go_backwards": False, "stateful": False, "unroll": False,
        "time_major": False, "units": units, "activation": "tanh",
        "recurrent_activation": "sigmoid", "use_bias": True,
        "kernel_initializer": {"class_name": "GlorotUniform", "config": {"seed": None}},
        "recurrent_initializer": {"class_name": "Orthogonal",
                                  "config": {"gain": 1.0, "seed": None}},
        "bias_initializer": {"class_name": "Zeros", "config": {}},
        "kernel_regularizer": None, "recurrent_regularizer": None, "bias_regularizer": None,
        "activity_regularizer": None, "kernel_constraint": None,
        "recurrent_constraint": None, "bias_constraint": None, "dropout": 0.0,
        "recurrent_dropout": 0.0, "implementation": 2,
    }
    config.update(extra)
    return {"class_name": class_name, "config": config}


def _tf2_functional_config():
    def node(name):
        return [[[name, 0, 0, {}]]]

    layers = [
        {"class_name": "InputLayer", "name": "input_1", "inbound_nodes": [],
         "config": {"batch_input_shape": [None, STEPS], "dtype": "int32", "sparse": False,
                    "ragged": False, "name": "input_1"}},
        {"class_name": "Embedding", "name": "embedding", "inbound_nodes": node("input_1"),
         "config": {"name": "embedding", "trainable": True, "batch_input_shape": [None, STEPS],
                    "dtype": "float32", "input_dim": VOCAB, "output_dim": 4,
                    "embeddings_initializer": {"class_name": "RandomUniform", "config": {
                        "minval": -0.05, "maxval": 0.05, "seed": None}},
                    "embeddings_regularizer": None, "activity_regularizer": None,
                    "embeddings_constraint": None, "mask_zero": True, "input_length": STEPS}},
        {"class_name": "Bidirectional", "name": "bidirectional",
         "inbound_nodes": node("embedding"),
         "config": {"name": "bidirectional", "trainable": True, "dtype": "float32",
                    "merge_mode": "concat",
                    "layer": _tf2_rnn("LSTM", "lstm", 3, return_sequences=True,
                                      unit_forget_bias=True)}},
        {"class_name": "GRU", "name": "gru", "inbound_nodes": node("bidirectional"),
         **_tf2_rnn("GRU", "gru", 3, reset_after=True)},
        {"class_name": "Dense", "name": "dense", "inbound_nodes": node("gru"),
         "config": {"name": "dense", "trainable": True, "dtype": "float32", "units": 2,
                    "activation": "softmax", "use_bias": True, "kernel_regularizer": None,
                    "bias_regularizer": None, "activity_regularizer": None,
                    "kernel_constraint": None, "bias_constraint": None}},
    ]
    return {"class_name": "Functional", "config": {
        "name": "model", "layers": layers, "input_layers": [["input_1", 0, 0]],
        "output_layers": [["dense", 0, 0]]}, "keras_version": "2.15.0",
        "backend": "tensorflow"}


def _tf2_sequential_config():
    masking = {"class_name": "Masking", "config": {
        "name": "masking", "trainable": True, "batch_input_shape": [None, STEPS, FEATURES],
        "dtype": "float32", "mask_value": 0.0}}
    return {"class_name": "Sequential", "config": {"name": "sequential", "layers": [
        masking,
        _tf2_rnn("SimpleRNN", "simple_rnn", 4, return_sequences=True),
        _tf2_rnn("LSTM", "lstm", 3, unit_forget_bias=True, go_backwards=True),
    ]}, "keras_version": "2.15.0", "backend": "tensorflow"}


@pytest.mark.parametrize("kind", ["functional", "sequential"])
def test_tf_keras_2_h5_layout(kind, tmp_path, rng):
    if kind == "functional":
        config = _tf2_functional_config()
        inputs = keras.Input((STEPS,), dtype="int32", name="input_1")
        x = L.Embedding(VOCAB, 4, mask_zero=True, name="embedding")(inputs)
        x = L.Bidirectional(L.LSTM(3, return_sequences=True), name="bidirectional")(x)
        x = L.GRU(3, name="gru")(x)
        keras_model = keras.Model(inputs, L.Dense(2, activation="softmax", name="dense")(x))
        data = padded_ids(rng)
    else:
        config = _tf2_sequential_config()
        keras_model = keras.Sequential([
            keras.Input((STEPS, FEATURES)), L.Masking(name="masking"),
            L.SimpleRNN(4, return_sequences=True, name="simple_rnn"),
            L.LSTM(3, go_backwards=True, name="lstm")])
        data = padded_floats(rng)
    keras_model.set_weights(
        [rng.uniform(-0.6, 0.6, w.shape).astype("float32") for w in keras_model.get_weights()]
    )
    path = tmp_path / "tf2_model.h5"
    with h5py.File(path, "w") as f:
        f.attrs["model_config"] = json.dumps(config)
        f.attrs["keras_version"] = "2.15.0"
        f.attrs["backend"] = "tensorflow"
        legacy_h5_format.save_weights_to_hdf5_group(f.create_group("model_weights"),
                                                    keras_model)
    model = rnnkit.load_keras(path)
    assert_results_close(model(data), np.asarray(keras_model(data)), "float32", kind)


# ---------------------------------------------------------------------------------------
# Keras 2 meanings: hard_sigmoid is clip(0.2 x + 0.5, 0, 1) in files Keras 2 wrote
# ---------------------------------------------------------------------------------------
def _keras2_hard_sigmoid(x):
    return keras.ops.clip(0.2 * x + 0.5, 0.0, 1.0)


@pytest.mark.parametrize("version", ["2.2.4", "2.15.0", None])
@pytest.mark.parametrize("where", ["h5_attribute", "config_json"])
def test_keras_2_hard_sigmoid_keeps_its_keras_2_meaning(version, where, tmp_path, rng):
    """Standalone Keras 2.2's LSTM/GRU default recurrent_activation was hard_sigmoid: a model
    trained there gives its Keras 2 numbers (Keras 3's hard_sigmoid is 0.6-0.75 away)."""
    config = _tf2_sequential_config()
    config["config"]["layers"][2] = _tf2_rnn(
        "LSTM", "lstm", 3, unit_forget_bias=True, recurrent_activation="hard_sigmoid")
    config["config"]["layers"].append({"class_name": "Dense", "config": {
        "name": "dense", "trainable": True, "dtype": "float32", "units": 2,
        "activation": "hard_sigmoid", "use_bias": True}})
    del config["keras_version"]
    if version is not None and where == "config_json":
        config["keras_version"] = version
    keras_model = keras.Sequential([
        keras.Input((STEPS, FEATURES)), L.Masking(name="masking"),
        L.SimpleRNN(4, return_sequences=True, name="simple_rnn"),
        L.LSTM(3, recurrent_activation=_keras2_hard_sigmoid, name="lstm"),
        L.Dense(2, activation=_keras2_hard_sigmoid, name="dense")])
    keras_model.set_weights(
        [rng.uniform(-1.5, 1.5, w.shape).astype("float32") for w in keras_model.get_weights()])
    path = tmp_path / "keras2.h5"
    with h5py.File(path, "w") as f:
        f.attrs["model_config"] = json.dumps(config)
        if version is not None and where == "h5_attribute":
            f.attrs["keras_version"] = version
        legacy_h5_format.save_weights_to_hdf5_group(f.create_group("model_weights"),
                                                    keras_model)
    data = padded_floats(rng) * 3
    model = rnnkit.load_keras(path)  # without a version, the tf.keras 2 layout says Keras 2
    assert model.get_layer("lstm").cell.recurrent_activation is rnnkit.activations.get(
        "keras2_hard_sigmoid")
    assert_results_close(model(data), np.asarray(keras_model(data)), "float32", "keras 2")


def test_keras_3_files_keep_keras_3_hard_sigmoid(tmp_path, rng):
    keras_model = keras.Sequential([
        keras.Input((STEPS, FEATURES)), L.LSTM(3, recurrent_activation="hard_sigmoid")])
    keras_model.save(tmp_path / "k3.keras")
    model = rnnkit.load_keras(tmp_path / "k3.keras")
    data = padded_floats(rng) * 3
    assert model.layers[0].cell.recurrent_activation is rnnkit.activations.get("hard_sigmoid")
    assert_results_close(model(data), np.asarray(keras_model(data)), "float32", "keras 3")


def test_keras_2_gru_without_reset_after_is_reset_before(tmp_path):
    from rnnkit.io.keras_legacy import with_keras2_meanings

    old = {"class_name": "GRU", "config": {"name": "gru", "units": 3}}
    assert with_keras2_meanings(old)["config"]["reset_after"] is False
    new = {"class_name": "GRU", "config": {"name": "gru", "units": 3, "reset_after": True}}
    assert with_keras2_meanings(new)["config"]["reset_after"] is True


def test_tf_keras_2_masks_a_recurrent_layer_given_initial_state(tmp_path, rng):
    """tf.keras 2 hands a call the mask of its first input even beside initial_state (Keras 3
    does not): a tf.keras 2 file keeps tf.keras 2's numbers."""
    def node(*refs, **kwargs):
        return [[[*ref, kwargs] for ref in refs]]

    config = {"class_name": "Functional", "keras_version": "2.15.0", "config": {
        "name": "model", "input_layers": [["x", 0, 0], ["s", 0, 0]],
        "output_layers": [["lstm", 0, 0]], "layers": [
            {"class_name": "InputLayer", "name": "x", "inbound_nodes": [], "config": {
                "batch_input_shape": [None, STEPS, FEATURES], "dtype": "float32", "name": "x"}},
            {"class_name": "InputLayer", "name": "s", "inbound_nodes": [], "config": {
                "batch_input_shape": [None, 3], "dtype": "float32", "name": "s"}},
            {"class_name": "Masking", "name": "masking", "inbound_nodes": node(["x", 0, 0]),
             "config": {"name": "masking", "dtype": "float32", "mask_value": 0.0}},
            {"class_name": "LSTM", "name": "lstm", **_tf2_rnn("LSTM", "lstm", 3),
             "inbound_nodes": node(["masking", 0, 0],
                                   initial_state=[["s", 0, 0], ["s", 0, 0]])},
        ]}}
    x = keras.Input((STEPS, FEATURES), name="x")
    s = keras.Input((3,), name="s")
    mask = keras.ops.any(keras.ops.not_equal(x, 0.0), axis=-1)
    lstm = L.LSTM(3, name="lstm", unroll=True)  # conftest.keras_reference_unroll says why
    keras_model = keras.Model([x, s], lstm(L.Masking(name="masking")(x), initial_state=[s, s],
                                           mask=mask))
    keras_model.set_weights([rng.uniform(-0.6, 0.6, w.shape).astype("float32")
                             for w in keras_model.get_weights()])
    path = tmp_path / "tf2_states.h5"
    with h5py.File(path, "w") as f:
        f.attrs["model_config"] = json.dumps(config)
        legacy_h5_format.save_weights_to_hdf5_group(f.create_group("model_weights"),
                                                    keras_model)
    data = [padded_floats(rng), rng.standard_normal((BATCH, 3)).astype("float32")]
    model = rnnkit.load_keras(path)
    assert_results_close(model(data), np.asarray(keras_model(data)), "float32", "tf2 states")


def test_unsupported_argument_is_named():
    config = {"class_name": "Sequential", "config": {"name": "s", "layers": [
        {"class_name": "InputLayer", "config": {"batch_shape": [None, STEPS, FEATURES],
                                                "name": "in"}},
        {"class_name": "Conv1D", "config": {"name": "conv", "filters": 2, "kernel_size": 3,
                                            "made_up_argument": 1}},
    ]}}
    with pytest.raises(ValueError, match=r"'conv' \(Conv1D\).*made_up_argument"):
        rnnkit.io.keras.model_from_config(config)
    config["config"]["layers"][1]["config"] = {"name": "conv", "filters": 2, "kernel_size": 3,
                                               "lora_rank": 4}
    with pytest.raises(ValueError, match="lora_rank"):
        rnnkit.io.keras.model_from_config(config)

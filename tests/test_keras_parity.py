"""Live comparison of rnnkit against Keras 3 (NumPy backend).

Every case builds a Keras layer and the matching rnnkit layer, gives both the same random
weights (``rk.set_weights(keras_layer.get_weights())``), calls both on the same seeded
inputs, and compares every returned array (output and each state) with the dtype's
tolerance from ``conftest.TOLERANCES``. rnnkit runs each case through every execution path
(``conftest.PATHS``: C++ scan, C++ unrolled, C++ scan in chunks of 1 and 3 steps, and the
NumPy reference loop; the activation sweeps and Bidirectional cases use a subset, since
those paths are the same code for them). Keras results are computed once per case and
cached: the Keras NumPy backend is slow per step and does not depend on the rnnkit path.

With a mask, the Keras reference runs its `unroll` branch that implements the case
correctly (``conftest.keras_reference_unroll`` documents the NumPy backend's two quirks).
"""

import itertools
import os

import numpy as np
import pytest

import rnnkit
from conftest import (
    ACTIVATIONS,
    CELL_SPECS,
    DTYPES,
    PATHS,
    assert_results_close,
    build_layer,
    builtin_layers,
    execution_path,
    flatten,
    import_keras,
    keras_call,
    keras_reference_spec,
    keras_reset_states,
    keras_set_states,
    keras_states,
    layer_spec_as_rnn,
    make_keras_layer,
    make_layer_pair,
    make_rnnkit_layer,
    random_initial_state,
    random_inputs,
    random_mask,
    seed_for,
    structure,
    unflatten,
    with_kwargs,
    with_unroll,
)

os.environ.setdefault("KERAS_BACKEND", "numpy")
keras = import_keras()

CELLS = tuple(CELL_SPECS)
SHAPE = (5, 7, 3)  # batch 5 (the mask's four special rows + one), 7 steps (3 + 3 + 1 chunks)
MASKS = ("none", "mask", "mask_zero_output")  # mask_zero_output: zero_output_for_mask=True


def flag(name, value):
    return name if value else f"no_{name}"


def mask_kwargs(mask_kind):
    return {"zero_output_for_mask": True} if mask_kind == "mask_zero_output" else {}


class Reference:
    """A cached Keras computation: inputs, weights and every array Keras returned."""

    _cache = {}

    def __init__(self, x, mask, weights, result, initial_state=None):
        self.x = x
        self.mask = mask
        self.weights = weights
        self.result = result
        self.initial_state = initial_state

    @classmethod
    def get(cls, key, spec, dtype, shape=SHAPE, masked=False, initial_state=False, scale=0.5):
        """Keras's result for ``spec`` on seeded inputs (cached under ``key``)."""
        if key not in cls._cache:
            rng = np.random.default_rng(seed_for(*key))
            x = random_inputs(rng, shape, dtype)
            mask = random_mask(rng, shape[0], shape[1]) if masked else None
            layer = make_keras_layer(keras_reference_spec(spec, masked), shape, dtype, rng, scale)
            state = random_initial_state(layer, shape[0], rng, dtype) if initial_state else None
            result = keras_call(layer, x, initial_state=state, mask=mask)
            cls._cache[key] = cls(x, mask, layer.get_weights(), result, state)
        return cls._cache[key]


def run_rnnkit(spec, dtype, reference, path, initial_state=None, **call_kwargs):
    """Build the rnnkit layer for ``spec`` with the reference's weights and call it on the
    reference's inputs through execution ``path``."""
    unroll, context = execution_path(path)
    layer = make_rnnkit_layer(
        with_unroll(spec, unroll), reference.x.shape, dtype, reference.weights
    )
    if initial_state is None:
        initial_state = reference.initial_state
    with context:
        return layer(reference.x, initial_state=initial_state, mask=reference.mask, **call_kwargs)


def test_the_grid_has_every_builtin_layer_and_kernel_variant():
    """CELL_SPECS (written out, since make_golden.py reads it without rnnkit) holds every
    built-in layer of rnnkit's registry that Keras 3 has, with each kernel variant: add a new
    one there. (A layer Keras 3 lacks, such as tf.keras 2's PeepholeLSTM, is checked against
    its own reference formula in its own test module.)"""
    grid = [(spec["layer"], spec["kwargs"]) for spec in CELL_SPECS.values()]
    for name, (layer, kwargs) in builtin_layers(variants=True).items():
        if not hasattr(keras.layers, layer):
            continue
        assert any(
            layer == grid_layer and kwargs.items() <= grid_kwargs.items()
            for grid_layer, grid_kwargs in grid
        ), f"{name} ({layer}, {kwargs}) is not in conftest.CELL_SPECS"


def test_keras_reference_computes_in_float64():
    # conftest.import_keras makes Keras's float64 layers compute in float64 (see there).
    rng = np.random.default_rng(0)
    a = rng.standard_normal((3, 3))
    assert keras.ops.matmul(a, a).dtype == np.float64
    x = rng.standard_normal((2, 4, 3))
    layer = make_keras_layer(CELL_SPECS["simple_rnn"], x.shape, "float64", rng)
    kernel, recurrent, bias = layer.get_weights()
    h = np.zeros((2, 4))
    for t in range(x.shape[1]):
        h = np.tanh(x[:, t] @ kernel + bias + h @ recurrent)
    np.testing.assert_allclose(layer(x), h, rtol=1e-14, atol=1e-15)


# ---------------------------------------------------------------------------------------
# the main grid
# ---------------------------------------------------------------------------------------

GRID = [
    pytest.param(
        cell, rs, rst, bwd, mask_kind, dtype,
        id=f"{cell}-{flag('seq', rs)}-{flag('state', rst)}-{flag('bwd', bwd)}-{mask_kind}-{dtype}",
    )
    for cell, rs, rst, bwd, mask_kind, dtype in itertools.product(
        CELLS, (False, True), (False, True), (False, True), MASKS, DTYPES
    )
]  # fmt: skip


def grid_spec(cell, return_sequences, return_state, go_backwards, mask_kind):
    return with_kwargs(
        CELL_SPECS[cell],
        return_sequences=return_sequences,
        return_state=return_state,
        go_backwards=go_backwards,
        **mask_kwargs(mask_kind),
    )


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize(
    "cell, return_sequences, return_state, go_backwards, mask_kind, dtype", GRID
)
def test_layer_matches_keras_grid(
    cell, return_sequences, return_state, go_backwards, mask_kind, dtype, path
):
    spec = grid_spec(cell, return_sequences, return_state, go_backwards, mask_kind)
    key = ("grid", cell, return_sequences, return_state, go_backwards, mask_kind, dtype)
    reference = Reference.get(key, spec, dtype, masked=mask_kind != "none")
    result = run_rnnkit(spec, dtype, reference, path)
    assert_results_close(result, reference.result, dtype, label=f"{key} via {path}")


@pytest.mark.parametrize("chunk", (1, 3))
@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("go_backwards", (False, True), ids=("fwd", "bwd"))
@pytest.mark.parametrize("mask_kind", MASKS)
@pytest.mark.parametrize("dtype", DTYPES)
def test_chunked_scan_matches_unrolled(cell, go_backwards, mask_kind, dtype, chunk):
    spec = grid_spec(cell, True, True, go_backwards, mask_kind)
    key = ("grid", cell, True, True, go_backwards, mask_kind, dtype)
    reference = Reference.get(key, spec, dtype, masked=mask_kind != "none")
    unrolled = run_rnnkit(spec, dtype, reference, "unrolled")
    chunked = run_rnnkit(spec, dtype, reference, f"chunk{chunk}")
    assert_results_close(chunked, unrolled, dtype, label=f"chunk_steps({chunk}) vs unroll")


# ---------------------------------------------------------------------------------------
# cell options
# ---------------------------------------------------------------------------------------

GATED_CELLS = ("lstm", "gru_reset_after", "gru_reset_before")


def activation_id(name):
    return str(name)


def activation_weight_scale(name):
    """Weights small enough that unbounded activations stay finite and unsaturated over the
    7 steps: "exponential" in an LSTM compounds (h = o * exp(c), c accumulating exp(.)) and
    overflows with uniform(-0.3, 0.3) weights, so it gets uniform(-0.1, 0.1)."""
    return 0.1 if name == "exponential" else 0.3


def assert_finite(result):
    for array in flatten(result):
        assert np.isfinite(array).all(), "the reference overflowed: shrink the weights"


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("activation", ACTIVATIONS, ids=activation_id)
@pytest.mark.parametrize("cell", CELLS)
def test_activation_matches_keras(cell, activation, dtype):
    spec = with_kwargs(
        CELL_SPECS[cell], activation=activation, return_sequences=True, return_state=True
    )
    key = ("activation", cell, activation, dtype)
    reference = Reference.get(
        key, spec, dtype, masked=True, scale=activation_weight_scale(activation)
    )
    assert_finite(reference.result)
    for path in ("scan", "python_loop"):
        result = run_rnnkit(spec, dtype, reference, path)
        assert_results_close(result, reference.result, dtype, label=f"{key} via {path}")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("recurrent_activation", ACTIVATIONS, ids=activation_id)
@pytest.mark.parametrize("cell", GATED_CELLS)
def test_recurrent_activation_matches_keras(cell, recurrent_activation, dtype):
    spec = with_kwargs(
        CELL_SPECS[cell],
        recurrent_activation=recurrent_activation,
        return_sequences=True,
        return_state=True,
    )
    key = ("recurrent_activation", cell, recurrent_activation, dtype)
    reference = Reference.get(
        key, spec, dtype, masked=True, scale=activation_weight_scale(recurrent_activation)
    )
    assert_finite(reference.result)
    for path in ("scan", "python_loop"):
        result = run_rnnkit(spec, dtype, reference, path)
        assert_results_close(result, reference.result, dtype, label=f"{key} via {path}")


# Activation inputs over the whole useful range: both saturations, the float32 exp overflow
# edge (ln(FLT_MAX) = 88.72), values around 0, and tiny magnitudes.
WIDE_RANGE = np.concatenate(
    [
        np.linspace(-100.0, 100.0, 2001),
        np.linspace(-4.0, 4.0, 801),
        np.linspace(88.0, 88.75, 76),
        np.linspace(-88.75, -88.0, 76),
        [0.0, -0.0, 1e-30, -1e-30, 1e-8, -1e-8],
    ]
)


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("activation", ACTIVATIONS, ids=activation_id)
def test_activation_values_match_keras_over_wide_range(activation, dtype, path):
    # One timestep of SimpleRNN(1) with kernel 1, recurrent kernel 0 and bias 0 outputs
    # activation(x) for every batch row: each activation evaluated over its whole range,
    # with thousands of rows so that the vectorized code runs on full SIMD packets.
    x = WIDE_RANGE.astype(dtype).reshape(-1, 1, 1)
    with np.errstate(over="ignore"):
        expected = np.asarray(keras.activations.get(activation)(x[:, 0, :]))
    spec = {"layer": "SimpleRNN", "units": 1, "kwargs": {"activation": activation}}
    unroll, context = execution_path(path)
    weights = [np.ones((1, 1), dtype), np.zeros((1, 1), dtype), np.zeros((1,), dtype)]
    layer = make_rnnkit_layer(with_unroll(spec, unroll), x.shape, dtype, weights)
    with context, np.errstate(over="ignore"):
        result = layer(x)
    assert_results_close(result, expected, dtype, label=f"{activation} via {path}")


@pytest.mark.parametrize(
    "make",
    (
        lambda lib: lib.SimpleRNN(2, activation="no_such_activation"),
        lambda lib: lib.LSTM(2, recurrent_activation="no_such_activation"),
        lambda lib: lib.RNN(lib.GRUCell(2, activation="no_such_activation")),
    ),
    ids=("SimpleRNN", "LSTM", "RNN(GRUCell)"),
)
def test_unknown_activation_raises_value_error_like_keras(make):
    x = np.zeros((1, 2, 3), "float32")
    with pytest.raises(ValueError):
        make(keras.layers)(x)
    # rnnkit's ValueError also names the choices.
    with pytest.raises(ValueError, match="no_such_activation") as excinfo:
        make(rnnkit)(x)
    assert "tanh" in str(excinfo.value)


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("mask_kind", ("none", "mask"))
@pytest.mark.parametrize("cell", CELLS)
def test_use_bias_false_matches_keras(cell, mask_kind, dtype, path):
    spec = with_kwargs(CELL_SPECS[cell], use_bias=False, return_sequences=True, return_state=True)
    key = ("no_bias", cell, mask_kind, dtype)
    reference = Reference.get(key, spec, dtype, masked=mask_kind == "mask")
    assert len(reference.weights) == 2
    result = run_rnnkit(spec, dtype, reference, path)
    assert_results_close(result, reference.result, dtype, label=f"{key} via {path}")


@pytest.mark.parametrize("wrap", ("layer", "cell"))
@pytest.mark.parametrize("bias_initializer", ("zeros", "ones"))
@pytest.mark.parametrize("unit_forget_bias", (True, False))
def test_lstm_unit_forget_bias_init_matches_keras(unit_forget_bias, bias_initializer, wrap, rng):
    spec = with_kwargs(
        CELL_SPECS["lstm"],
        unit_forget_bias=unit_forget_bias,
        bias_initializer=bias_initializer,
        return_state=True,
    )
    if wrap == "cell":
        spec = layer_spec_as_rnn(spec)
    keras_layer = build_layer(keras.layers, spec, "float32", is_keras=True)
    keras_layer.build(SHAPE)
    rk_layer = build_layer(rnnkit, spec, "float32")
    rk_layer.build(SHAPE)
    keras_bias = keras_layer.get_weights()[2]
    rk_bias = rk_layer.get_weights()[2]
    assert rk_bias.dtype == np.float32
    np.testing.assert_array_equal(rk_bias, keras_bias)
    # The initialized bias then drives the same numbers (kernels copied from Keras).
    kernel, recurrent = keras_layer.get_weights()[:2]
    rk_layer.set_weights([kernel, recurrent, rk_bias])
    x = random_inputs(rng, SHAPE, "float32")
    assert_results_close(rk_layer(x), keras_layer(x), "float32")


# ---------------------------------------------------------------------------------------
# initial_state, stateful
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("mask_kind", MASKS)
@pytest.mark.parametrize("go_backwards", (False, True), ids=("fwd", "bwd"))
@pytest.mark.parametrize("cell", CELLS)
def test_initial_state_matches_keras(cell, go_backwards, mask_kind, dtype, path):
    # random_mask masks row 0 entirely and both the first and last steps of row 3, so
    # whichever the direction, row 3's first processed step is masked.
    spec = with_kwargs(
        CELL_SPECS[cell],
        return_sequences=True,
        return_state=True,
        go_backwards=go_backwards,
        **mask_kwargs(mask_kind),
    )
    key = ("initial_state", cell, go_backwards, mask_kind, dtype)
    reference = Reference.get(key, spec, dtype, masked=mask_kind != "none", initial_state=True)
    result = run_rnnkit(spec, dtype, reference, path)
    assert_results_close(result, reference.result, dtype, label=f"{key} via {path}")
    if mask_kind != "none":
        # rnnkit's mask rules, stated directly: a masked first step outputs zeros (not
        # the initial state); a fully masked row outputs zeros and keeps its initial states.
        sequence, *states = result
        assert not sequence[3, 0].any()
        assert not sequence[0].any()
        for state, initial in zip(states, reference.initial_state):
            np.testing.assert_array_equal(state[0], initial[0])


@pytest.mark.parametrize("cell", CELLS)
def test_initial_state_single_array_matches_list(cell, rng):
    # Keras accepts a bare array for a single-state cell (gru_test.py test_pass_initial_state).
    spec = with_kwargs(CELL_SPECS[cell], return_state=True)
    keras_layer, rk_layer = make_layer_pair(spec, SHAPE, "float32", rng)
    x = random_inputs(rng, SHAPE, "float32")
    states = random_initial_state(keras_layer, SHAPE[0], rng, "float32")
    expected = keras_layer(x, initial_state=states)
    assert_results_close(rk_layer(x, initial_state=states), expected, "float32")
    if len(states) == 1:
        assert_results_close(rk_layer(x, initial_state=states[0]), expected, "float32")


STACK = {
    "layer": "RNN",
    "cells": [
        {"cell": "LSTMCell", "units": 4, "kwargs": {}},
        {"cell": "GRUCell", "units": 3, "kwargs": {}},
        {"cell": "SimpleRNNCell", "units": 2, "kwargs": {}},
    ],
    "wrap": "list",
    "kwargs": {},
}
STACK_GRU_BEFORE = {
    "layer": "RNN",
    "cells": [
        {"cell": "GRUCell", "units": 3, "kwargs": {"reset_after": False}},
        {"cell": "SimpleRNNCell", "units": 5, "kwargs": {"activation": "relu"}},
        {"cell": "LSTMCell", "units": 2, "kwargs": {"recurrent_activation": "hard_sigmoid"}},
    ],
    "wrap": "stacked",
    "kwargs": {},
}
STATEFUL_LAYERS = {**{cell: CELL_SPECS[cell] for cell in CELLS}, "stacked": STACK}


def fresh_call_inputs(rng, shape, dtype, masked):
    x = random_inputs(rng, shape, dtype)
    return x, (random_mask(rng, shape[0], shape[1]) if masked else None)


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("mask_kind", ("none", "mask"))
@pytest.mark.parametrize("go_backwards", (False, True), ids=("fwd", "bwd"))
@pytest.mark.parametrize("layer_name", tuple(STATEFUL_LAYERS))
def test_stateful_matches_keras(layer_name, go_backwards, mask_kind, dtype, path):
    """Three consecutive calls, reset_states(), one call, reset_states(states), one call,
    a call with an explicit initial_state, one more call; every result and
    ``layer.states`` after every step compared with Keras."""
    masked = mask_kind == "mask"
    spec = with_kwargs(
        STATEFUL_LAYERS[layer_name],
        stateful=True,
        return_sequences=True,
        return_state=True,
        go_backwards=go_backwards,
    )
    rng = np.random.default_rng(seed_for("stateful", layer_name, go_backwards, mask_kind, dtype))
    keras_layer = make_keras_layer(keras_reference_spec(spec, masked), SHAPE, dtype, rng)
    unroll, context = execution_path(path)
    rk_layer = make_rnnkit_layer(with_unroll(spec, unroll), SHAPE, dtype, keras_layer.get_weights())
    new_states = flatten(random_initial_state(keras_layer, SHAPE[0], rng, dtype))
    steps = ["call", "call", "call", "reset", "call", "reset_to", "call", "call_from", "call"]
    with context:
        for i, step in enumerate(steps):
            if step == "reset":
                keras_reset_states(keras_layer)
                rk_layer.reset_states()
            elif step == "reset_to":
                keras_set_states(keras_layer, new_states)
                rk_layer.reset_states(unflatten(structure(rk_layer.states), new_states))
            else:
                # "call_from": an explicit initial_state replaces the stored states.
                initial = None
                if step == "call_from":
                    initial = random_initial_state(keras_layer, SHAPE[0], rng, dtype)
                x, mask = fresh_call_inputs(rng, SHAPE, dtype, masked)
                expected = keras_call(keras_layer, x, initial_state=initial, mask=mask)
                result = rk_layer(x, initial_state=initial, mask=mask)
                assert_results_close(result, expected, dtype, label=f"step {i} result")
            assert_results_close(
                flatten(rk_layer.states),
                keras_states(keras_layer),
                dtype,
                label=f"step {i} ({step}) layer.states",
            )


def test_stateful_batch_size_change_raises_like_keras(rng):
    x = random_inputs(rng, (3, 4, 2), "float32")
    other = random_inputs(rng, (2, 4, 2), "float32")
    for lib in (keras.layers, rnnkit):
        layer = lib.LSTM(3, stateful=True)
        layer(x)
        with pytest.raises(ValueError, match="batch"):
            layer(other)


# ---------------------------------------------------------------------------------------
# stacked cells
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("initial_state", (False, True), ids=("zero_state", "initial_state"))
@pytest.mark.parametrize("mask_kind", MASKS)
@pytest.mark.parametrize("go_backwards", (False, True), ids=("fwd", "bwd"))
@pytest.mark.parametrize("return_state", (False, True), ids=("no_state", "state"))
@pytest.mark.parametrize("return_sequences", (False, True), ids=("last", "seq"))
def test_stacked_cells_match_keras(
    return_sequences, return_state, go_backwards, mask_kind, initial_state, dtype, path
):
    # Keras 3 nests the states per cell: (output, [h1, c1], [h2], [h3]), and takes the
    # initial state in that nested form.
    spec = with_kwargs(
        STACK,
        return_sequences=return_sequences,
        return_state=return_state,
        go_backwards=go_backwards,
        **mask_kwargs(mask_kind),
    )
    key = ("stacked", return_sequences, return_state, go_backwards, mask_kind, initial_state, dtype)
    reference = Reference.get(
        key, spec, dtype, masked=mask_kind != "none", initial_state=initial_state
    )
    result = run_rnnkit(spec, dtype, reference, path)
    assert_results_close(result, reference.result, dtype, label=f"{key} via {path}")


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("mask_kind", MASKS)
@pytest.mark.parametrize("dtype", DTYPES)
def test_stacked_cells_object_matches_keras(mask_kind, dtype, path):
    # RNN(StackedRNNCells([...])) with GRU reset_after=False, relu and hard_sigmoid cells.
    spec = with_kwargs(
        STACK_GRU_BEFORE, return_sequences=True, return_state=True, **mask_kwargs(mask_kind)
    )
    key = ("stacked_object", mask_kind, dtype)
    reference = Reference.get(key, spec, dtype, masked=mask_kind != "none", initial_state=True)
    result = run_rnnkit(spec, dtype, reference, path)
    assert_results_close(result, reference.result, dtype, label=f"{key} via {path}")


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("mask_kind", ("none", "mask"))
def test_stacked_cells_flat_initial_state_matches_nested(mask_kind, path):
    # rnnkit also takes the tf.keras 2 flat form [h1, c1, h2, h3]: same numbers as Keras
    # with the nested form.
    spec = with_kwargs(STACK, return_sequences=True, return_state=True)
    key = ("stacked", True, True, False, mask_kind, True, "float32")
    reference = Reference.get(key, spec, "float32", masked=mask_kind != "none", initial_state=True)
    flat = flatten(reference.initial_state)
    result = run_rnnkit(spec, "float32", reference, path, initial_state=flat)
    assert_results_close(
        flatten(result),
        flatten(reference.result),
        "float32",
        label="flat initial_state",
        check_structure=False,
    )


# ---------------------------------------------------------------------------------------
# Bidirectional
# ---------------------------------------------------------------------------------------

MERGE_MODES = ("concat", "sum", "mul", "ave", None)


def bidirectional_spec(inner, merge_mode, backward=None):
    return {
        "layer": "Bidirectional",
        "inner": inner,
        "backward": backward,
        "merge_mode": merge_mode,
    }


@pytest.mark.parametrize("path", ("scan", "unrolled", "python_loop"))
@pytest.mark.parametrize("mask_kind", ("none", "mask"))
@pytest.mark.parametrize("return_state", (False, True), ids=("no_state", "state"))
@pytest.mark.parametrize("return_sequences", (False, True), ids=("last", "seq"))
@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("merge_mode", MERGE_MODES, ids=str)
def test_bidirectional_matches_keras(
    merge_mode, cell, return_sequences, return_state, mask_kind, path
):
    # With a mask and return_sequences, Keras forces zero_output_for_mask on both layers.
    inner = with_kwargs(
        CELL_SPECS[cell], return_sequences=return_sequences, return_state=return_state
    )
    spec = bidirectional_spec(inner, merge_mode)
    key = ("bidirectional", merge_mode, cell, return_sequences, return_state, mask_kind)
    reference = Reference.get(key, spec, "float32", masked=mask_kind == "mask")
    result = run_rnnkit(spec, "float32", reference, path)
    assert_results_close(result, reference.result, "float32", label=f"{key} via {path}")


@pytest.mark.parametrize("path", ("scan", "unrolled", "python_loop"))
@pytest.mark.parametrize("mask_kind", ("none", "mask"))
@pytest.mark.parametrize("merge_mode", MERGE_MODES, ids=str)
@pytest.mark.parametrize("dtype", DTYPES)
def test_bidirectional_initial_state_matches_keras(dtype, merge_mode, mask_kind, path):
    inner = with_kwargs(CELL_SPECS["lstm"], return_sequences=True, return_state=True)
    spec = bidirectional_spec(inner, merge_mode)
    key = ("bidirectional_initial_state", dtype, merge_mode, mask_kind)
    reference = Reference.get(key, spec, dtype, masked=mask_kind == "mask", initial_state=True)
    result = run_rnnkit(spec, dtype, reference, path)
    assert_results_close(result, reference.result, dtype, label=f"{key} via {path}")


# (forward, backward) layer pairs for an explicit backward_layer: another size, another
# activation, and (for single-state cells) another cell type. Keras splits a Bidirectional
# initial_state in two halves, so both directions need the same number of states.
BACKWARD_PAIRS = {
    "gru_then_simple_rnn": ("gru_reset_after", "simple_rnn"),
    "simple_rnn_then_gru_before": ("simple_rnn", "gru_reset_before"),
    "lstm_then_lstm": ("lstm", "lstm"),
}


@pytest.mark.parametrize("path", ("scan", "unrolled", "python_loop"))
@pytest.mark.parametrize("mask_kind", ("none", "mask"))
@pytest.mark.parametrize("return_state", (False, True), ids=("no_state", "state"))
@pytest.mark.parametrize("return_sequences", (False, True), ids=("last", "seq"))
@pytest.mark.parametrize("merge_mode", ("concat", None), ids=str)
@pytest.mark.parametrize("pair", tuple(BACKWARD_PAIRS))
def test_bidirectional_backward_layer_matches_keras(
    pair, merge_mode, return_sequences, return_state, mask_kind, path
):
    forward_cell, backward_cell = BACKWARD_PAIRS[pair]
    forward = with_kwargs(
        CELL_SPECS[forward_cell], return_sequences=return_sequences, return_state=return_state
    )
    backward = with_kwargs(
        CELL_SPECS[backward_cell],
        return_sequences=return_sequences,
        return_state=return_state,
        go_backwards=True,
        activation="softsign",
    )
    backward["units"] = 3
    spec = bidirectional_spec(forward, merge_mode, backward)
    key = ("bidirectional_backward", pair, merge_mode, return_sequences, return_state, mask_kind)
    reference = Reference.get(key, spec, "float32", masked=mask_kind == "mask", initial_state=True)
    result = run_rnnkit(spec, "float32", reference, path)
    assert_results_close(result, reference.result, "float32", label=f"{key} via {path}")


@pytest.mark.parametrize("path", ("scan", "unrolled", "python_loop"))
@pytest.mark.parametrize("mask_kind", ("none", "mask"))
def test_bidirectional_stateful_matches_keras(mask_kind, path):
    # No return_state: Keras 3.15's Bidirectional.compute_mask fails for a stateful layer
    # with return_state (it multiplies a generator); the states are compared through
    # `.states` instead.
    masked = mask_kind == "mask"
    inner = with_kwargs(CELL_SPECS["lstm"], return_sequences=True, stateful=True)
    spec = bidirectional_spec(inner, "concat")
    rng = np.random.default_rng(seed_for("bidirectional_stateful", mask_kind))
    keras_layer = make_keras_layer(keras_reference_spec(spec, masked), SHAPE, "float32", rng)
    unroll, context = execution_path(path)
    rk_layer = make_rnnkit_layer(
        with_unroll(spec, unroll), SHAPE, "float32", keras_layer.get_weights()
    )
    with context:
        for i, step in enumerate(("call", "call", "call", "reset", "call")):
            if step == "reset":
                keras_layer.reset_state()
                rk_layer.reset_states()
            else:
                x, mask = fresh_call_inputs(rng, SHAPE, "float32", masked)
                expected = keras_call(keras_layer, x, mask=mask)
                assert_results_close(rk_layer(x, mask=mask), expected, "float32", label=step)
            assert_results_close(
                flatten(rk_layer.states),
                keras_states(keras_layer),
                "float32",
                label=f"step {i} ({step}) states",
            )


def test_bidirectional_go_backwards_layer_raises_like_keras():
    # Keras 3 builds the backward copy with go_backwards=True, so a wrapped layer that
    # already goes backwards leaves both directions equal: a ValueError.
    with pytest.raises(ValueError, match="go_backwards"):
        keras.layers.Bidirectional(keras.layers.LSTM(2, go_backwards=True))
    with pytest.raises(ValueError, match="go_backwards"):
        rnnkit.Bidirectional(rnnkit.LSTM(2, go_backwards=True))


# ---------------------------------------------------------------------------------------
# edge shapes, long sequences, RNN(cell), time_major
# ---------------------------------------------------------------------------------------

EDGE_SHAPES = {
    "batch1": ((1, 6, 3), 4),
    "timesteps1": ((5, 1, 3), 4),
    "input_dim1": ((5, 6, 1), 4),
    "units1": ((5, 6, 3), 1),
}


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("mask_kind", ("none", "mask"))
@pytest.mark.parametrize("go_backwards", (False, True), ids=("fwd", "bwd"))
@pytest.mark.parametrize("edge", tuple(EDGE_SHAPES))
@pytest.mark.parametrize("cell", CELLS)
def test_edge_shapes_match_keras(cell, edge, go_backwards, mask_kind, dtype, path):
    shape, units = EDGE_SHAPES[edge]
    spec = with_kwargs(
        CELL_SPECS[cell], return_sequences=True, return_state=True, go_backwards=go_backwards
    )
    spec["units"] = units
    key = ("edge", cell, edge, go_backwards, mask_kind, dtype)
    reference = Reference.get(
        key, spec, dtype, shape=shape, masked=mask_kind == "mask", initial_state=True
    )
    result = run_rnnkit(spec, dtype, reference, path)
    assert_results_close(result, reference.result, dtype, label=f"{key} via {path}")


# Sizes that are not multiples of any SIMD width, a batch past any small-batch fast path,
# and dimensions large enough for blocked matrix products.
LARGE_CASES = {"odd": ((67, 9, 17), 33), "wide": ((16, 5, 40), 64)}


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("mask_kind", MASKS)
@pytest.mark.parametrize("size", tuple(LARGE_CASES))
@pytest.mark.parametrize("cell", CELLS)
def test_large_shapes_match_keras(cell, size, mask_kind, dtype, path):
    # Weights scaled by 1/sqrt(fan-in) would be the usual choice; uniform(-0.2, 0.2) keeps
    # the pre-activations of these wider layers (up to 40 + 64 terms) unsaturated.
    shape, units = LARGE_CASES[size]
    spec = with_kwargs(
        CELL_SPECS[cell],
        return_sequences=True,
        return_state=True,
        go_backwards=True,
        **mask_kwargs(mask_kind),
    )
    spec["units"] = units
    key = ("large", cell, size, mask_kind, dtype)
    reference = Reference.get(
        key, spec, dtype, shape=shape, masked=mask_kind != "none", initial_state=True, scale=0.2
    )
    result = run_rnnkit(spec, dtype, reference, path)
    assert_results_close(result, reference.result, dtype, label=f"{key} via {path}")


LONG_SHAPE = (2, 500, 3)


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("cell", CELLS)
def test_long_sequence_matches_keras(cell, dtype, path):
    # T=500 with a random mask (70% of steps kept). float32 keeps the 1e-5 tolerance: the
    # cells are contractive for these weights (|weights| <= 0.5, bounded activations), so
    # rounding errors are damped step to step instead of growing with T (measured: the
    # worst float32 error is under 2% of the tolerance, about 20 units of roundoff).
    spec = with_kwargs(CELL_SPECS[cell], return_sequences=True, return_state=True)
    key = ("long", cell, dtype)
    reference = Reference.get(key, spec, dtype, shape=LONG_SHAPE, masked=True, initial_state=True)
    result = run_rnnkit(spec, dtype, reference, path)
    assert_results_close(result, reference.result, dtype, label=f"{key} via {path}")


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("mask_kind", MASKS)
@pytest.mark.parametrize("go_backwards", (False, True), ids=("fwd", "bwd"))
@pytest.mark.parametrize("return_state", (False, True), ids=("no_state", "state"))
@pytest.mark.parametrize("cell", CELLS)
def test_rnn_wrapping_cell_matches_keras(cell, return_state, go_backwards, mask_kind, path):
    # rnnkit.RNN(rnnkit.LSTMCell(...)) vs keras.layers.RNN(keras.layers.LSTMCell(...)),
    # with a non-default activation to see the cell arguments go through.
    layer_spec = with_kwargs(
        CELL_SPECS[cell],
        activation="softsign",
        return_sequences=True,
        return_state=return_state,
        go_backwards=go_backwards,
        **mask_kwargs(mask_kind),
    )
    spec = layer_spec_as_rnn(layer_spec, wrap="cell")
    assert spec["cells"][0]["kwargs"]["activation"] == "softsign"
    key = ("rnn_cell", cell, return_state, go_backwards, mask_kind)
    reference = Reference.get(key, spec, "float32", masked=mask_kind != "none")
    result = run_rnnkit(spec, "float32", reference, path)
    assert_results_close(result, reference.result, "float32", label=f"{key} via {path}")
    # ... and the convenience layer gives the same numbers as RNN(cell).
    layer_result = run_rnnkit(layer_spec, "float32", reference, path)
    assert_results_close(layer_result, reference.result, "float32", label="convenience layer")


def time_major(array):
    return np.swapaxes(array, 0, 1)


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("mask_kind", ("none", "mask"))
@pytest.mark.parametrize("go_backwards", (False, True), ids=("fwd", "bwd"))
@pytest.mark.parametrize("return_sequences", (False, True), ids=("last", "seq"))
@pytest.mark.parametrize("cell", CELLS)
def test_time_major_matches_keras_transposed(cell, return_sequences, go_backwards, mask_kind, path):
    # Keras 3 has no time_major; rnnkit's (tf.keras 2 semantics) must equal Keras on the
    # batch-major transpose: inputs (T, B, F), mask (T, B), sequences out (T, B, units).
    spec = with_kwargs(
        CELL_SPECS[cell],
        return_sequences=return_sequences,
        return_state=True,
        go_backwards=go_backwards,
    )
    key = ("time_major", cell, return_sequences, go_backwards, mask_kind)
    reference = Reference.get(key, spec, "float32", masked=mask_kind == "mask", initial_state=True)
    unroll, context = execution_path(path)
    rk_spec = with_kwargs(with_unroll(spec, unroll), time_major=True)
    x = time_major(reference.x)
    layer = make_rnnkit_layer(rk_spec, x.shape, "float32", reference.weights)
    mask = None if reference.mask is None else time_major(reference.mask)
    with context:
        result = layer(x, initial_state=reference.initial_state, mask=mask)
    expected = list(reference.result)
    if return_sequences:
        expected[0] = time_major(expected[0])
    assert_results_close(result, tuple(expected), "float32", label=f"{key} via {path}")


# ---------------------------------------------------------------------------------------
# inputs as users pass them: layouts, conversions, reuse, weight updates
# ---------------------------------------------------------------------------------------


def non_contiguous(array, layout):
    """The same values as ``array`` in another memory layout."""
    if layout == "fortran":
        return np.asfortranarray(array)
    if layout == "strided":
        padded = np.zeros(array.shape[:-1] + (2 * array.shape[-1],), array.dtype)
        padded[..., ::2] = array
        return padded[..., ::2]
    if layout == "reversed_view":
        return np.flip(np.flip(array, 0).copy(), 0)
    raise ValueError(layout)


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("layout", ("fortran", "strided", "reversed_view"))
@pytest.mark.parametrize("cell", CELLS)
def test_non_contiguous_arrays_match_keras(cell, layout, path):
    # Inputs, mask, initial states and weights that are views or Fortran-ordered arrays
    # hold the same values; the results must not depend on the layout.
    spec = with_kwargs(CELL_SPECS[cell], return_sequences=True, return_state=True)
    key = ("initial_state", cell, False, "mask", "float64")
    reference = Reference.get(key, spec, "float64", masked=True, initial_state=True)
    unroll, context = execution_path(path)
    weights = [non_contiguous(w, layout) if w.ndim == 2 else w for w in reference.weights]
    layer = make_rnnkit_layer(with_unroll(spec, unroll), reference.x.shape, "float64", weights)
    x = non_contiguous(reference.x, layout)
    mask = non_contiguous(reference.mask, layout)
    states = [non_contiguous(s, layout) for s in reference.initial_state]
    assert not x.flags.c_contiguous and not mask.flags.c_contiguous
    with context:
        result = layer(x, initial_state=states, mask=mask)
    assert_results_close(result, reference.result, "float64", label=f"{layout} via {path}")


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("cell", CELLS)
def test_input_conversions_match_keras(cell, path, rng):
    # Integer inputs, a 0/1 integer mask and float64 initial states for a float32 layer are
    # converted as Keras converts them; results are float32.
    spec = with_kwargs(CELL_SPECS[cell], return_sequences=True, return_state=True)
    keras_spec = keras_reference_spec(spec, masked=True)
    keras_layer, _ = make_layer_pair(spec, SHAPE, "float32", rng, keras_spec=keras_spec, scale=0.1)
    x = rng.integers(-3, 4, size=SHAPE).astype(np.int32)
    mask = random_mask(rng, SHAPE[0], SHAPE[1]).astype(np.int64)
    states = random_initial_state(keras_layer, SHAPE[0], rng, "float64")
    expected = keras_layer(x, initial_state=states, mask=mask.astype(bool))
    unroll, context = execution_path(path)
    layer = make_rnnkit_layer(
        with_unroll(spec, unroll), SHAPE, "float32", keras_layer.get_weights()
    )
    with context:
        result = layer(x, initial_state=states, mask=mask)
    assert_results_close(result, expected, "float32", label=f"conversions via {path}")


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("cell", CELLS)
def test_layer_reused_across_shapes_matches_keras(cell, path, rng):
    # One (non-stateful) layer called on batches and sequences of different sizes in turn.
    spec = with_kwargs(CELL_SPECS[cell], return_sequences=True, return_state=True)
    keras_spec = keras_reference_spec(spec, masked=True)
    keras_layer, _ = make_layer_pair(spec, SHAPE, "float32", rng, keras_spec=keras_spec)
    unroll, context = execution_path(path)
    layer = make_rnnkit_layer(
        with_unroll(spec, unroll), SHAPE, "float32", keras_layer.get_weights()
    )
    with context:
        for shape in (SHAPE, (2, 3, 3), (8, 11, 3), (1, 1, 3), SHAPE):
            x = random_inputs(rng, shape, "float32")
            mask = random_mask(rng, shape[0], shape[1])
            expected = keras_call(keras_layer, x, mask=mask)
            assert_results_close(layer(x, mask=mask), expected, "float32", label=str(shape))


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("layer_name", ("lstm", "gru_reset_after", "stacked"))
def test_set_weights_after_call_matches_keras(layer_name, path, rng):
    # New weights after a first call must be used by the next call (no stale kernels).
    spec = STACK if layer_name == "stacked" else CELL_SPECS[layer_name]
    spec = with_kwargs(spec, return_sequences=True, return_state=True)
    keras_layer, _ = make_layer_pair(spec, SHAPE, "float32", rng)
    unroll, context = execution_path(path)
    layer = make_rnnkit_layer(
        with_unroll(spec, unroll), SHAPE, "float32", keras_layer.get_weights()
    )
    x = random_inputs(rng, SHAPE, "float32")
    with context:
        for _ in range(3):
            assert_results_close(layer(x), keras_layer(x), "float32")
            new_weights = [
                rng.uniform(-0.5, 0.5, w.shape).astype("float32") for w in keras_layer.get_weights()
            ]
            keras_layer.set_weights(new_weights)
            layer.set_weights(new_weights)


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("mask_kind", ("mask", "mask_zero_output"))
@pytest.mark.parametrize("go_backwards", (False, True), ids=("fwd", "bwd"))
@pytest.mark.parametrize("layer_name", tuple(STATEFUL_LAYERS))
def test_fully_masked_batch_matches_keras(layer_name, go_backwards, mask_kind, path, rng):
    # Every step of every row masked: zero outputs, the initial states returned unchanged.
    spec = with_kwargs(
        STATEFUL_LAYERS[layer_name],
        return_sequences=True,
        return_state=True,
        go_backwards=go_backwards,
        **mask_kwargs(mask_kind),
    )
    keras_spec = keras_reference_spec(spec, masked=True)
    keras_layer, _ = make_layer_pair(spec, SHAPE, "float32", rng, keras_spec=keras_spec)
    x = random_inputs(rng, SHAPE, "float32")
    mask = np.zeros(SHAPE[:2], bool)
    states = random_initial_state(keras_layer, SHAPE[0], rng, "float32")
    expected = keras_call(keras_layer, x, initial_state=states, mask=mask)
    unroll, context = execution_path(path)
    layer = make_rnnkit_layer(
        with_unroll(spec, unroll), SHAPE, "float32", keras_layer.get_weights()
    )
    with context:
        result = layer(x, initial_state=states, mask=mask)
    assert_results_close(result, expected, "float32", label=path)
    assert not result[0].any()
    assert_results_close(flatten(result[1:]), flatten(states), "float32")

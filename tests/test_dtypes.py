"""Dtype and memory-layout policy (README, "What is there"): float32 by default, float64
end to end, inputs of any real dtype and any layout converted to the layer's dtype without
touching the caller's arrays, outputs that never alias anything else, and time-major inputs.
"""

import contextlib

import numpy as np
import pytest

import rnnkit
import rnnkit.testing
from conftest import (
    DTYPES,
    PATH_TOLERANCES,
    assert_arrays_equal,
    assert_results_close,
    builtin_layers,
    flatten,
    recurrent_layer,
    state_sizes,
)
from rnnkit.examples import MinimalRNNCell  # Keras's documented custom cell
from rnnkit.layers.recurrent import registry

B, T, F = 3, 6, 5  # batch, timesteps, features


def _dtype_kwargs(dtype):
    return {} if dtype is None else {"dtype": dtype}


def _builtin(kind):
    return lambda dtype, **kw: recurrent_layer(kind, 4, **_dtype_kwargs(dtype), **kw)


# kind -> (dtype or None, RNN keyword arguments) -> layer; None means "no dtype argument".
LAYERS = {
    **{kind: _builtin(kind) for kind in builtin_layers(variants=True)},
    "stacked": lambda dtype, **kw: rnnkit.RNN(
        [rnnkit.LSTMCell(4, **_dtype_kwargs(dtype)), rnnkit.GRUCell(3, **_dtype_kwargs(dtype))],
        **kw,
    ),
    "bidirectional": lambda dtype, **kw: rnnkit.Bidirectional(
        rnnkit.LSTM(4, **_dtype_kwargs(dtype), **kw)
    ),
    "custom": lambda dtype, **kw: rnnkit.RNN(MinimalRNNCell(4, **_dtype_kwargs(dtype)), **kw),
}
STATE_SIZES = {
    **{kind: state_sizes(kind, 4) for kind in builtin_layers(variants=True)},
    "stacked": [4, 4, 3], "bidirectional": [4, 4, 4, 4], "custom": [4],
}
# Every built-in cell with defaults, and the composites of every structure.
KINDS = [*builtin_layers(), "stacked", "bidirectional", "custom"]
# The layers _reference_step has the formulas of.
COMPILED_KINDS = ("simple_rnn", "lstm", "gru", "gru_reset_before", "stacked", "bidirectional")
FULL = {"return_sequences": True, "return_state": True}


def _layer(kind, dtype=None, seed=0, **kwargs):
    """A built layer of `kind` with random weights (every bias nonzero)."""
    layer = LAYERS[kind](dtype, **kwargs)
    shape = (T, B, F) if kwargs.get("time_major") else (B, T, F)
    layer.build(shape)
    rng = np.random.default_rng(seed)
    layer.set_weights([rng.uniform(-0.5, 0.5, w.shape) for w in layer.get_weights()])
    return layer


def _inputs(dtype="float32", seed=1, shape=(B, T, F)):
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


def _states(kind, dtype="float32", seed=2, batch=B):
    rng = np.random.default_rng(seed)
    return [rng.uniform(-0.8, 0.8, (batch, n)).astype(dtype) for n in STATE_SIZES[kind]]


def _mask(seed=3):
    mask = np.random.default_rng(seed).random((B, T)) < 0.7
    mask[0, 0] = mask[1, -1] = False
    mask[2] = False
    return mask


def _path(path):
    return rnnkit.testing.python_loop() if path == "python_loop" else contextlib.nullcontext()


def _assert_close(actual, expected, dtype, label=""):
    """Results against their float64 NumPy statement, a flat list of arrays."""
    assert_results_close(
        actual, expected, dtype, label, check_structure=False, tolerances=PATH_TOLERANCES
    )


# ---------------------------------------------------------------------------------------
# float32 by default, float64 end to end
# ---------------------------------------------------------------------------------------


def _all_arrays_of(layer, kind, dtype, input_dtype):
    """Every array a layer exposes: weights, get_weights(), outputs and returned states of a
    call, and the carried states of the same layer made stateful."""
    arrays = {"weights": layer.weights, "get_weights": layer.get_weights()}
    x = _inputs(input_dtype)
    arrays["call"] = flatten(layer(x, _states(kind, input_dtype)))
    stateful = LAYERS[kind](None if dtype is None else dtype, stateful=True, **FULL)
    stateful(x)
    arrays["stateful call"] = flatten(stateful(x))
    arrays["states"] = flatten(stateful.states)
    return arrays


@pytest.mark.parametrize("input_dtype", ["float32", "float64"])
@pytest.mark.parametrize("kind", LAYERS)
def test_default_dtype_is_float32_for_weights_outputs_and_states(kind, input_dtype):
    layer = _layer(kind, None, **FULL)
    assert layer.dtype == "float32"
    for label, arrays in _all_arrays_of(layer, kind, None, input_dtype).items():
        assert arrays, label
        assert [a.dtype for a in arrays] == [np.dtype("float32")] * len(arrays), label


CELLS = registry.cell_classes()


@pytest.mark.parametrize("dtype", [None, *DTYPES])
@pytest.mark.parametrize("cell", CELLS)
def test_cell_dtype_sets_weights_outputs_and_states(cell, dtype):
    instance = CELLS[cell](4, **_dtype_kwargs(dtype))
    instance.build((B, F))
    expected = np.dtype(dtype or "float32")
    assert instance.dtype == expected.name
    assert [w.dtype for w in instance.weights] == [expected] * len(instance.weights)
    output, states = instance(_inputs(expected)[:, 0], [np.zeros((B, 4), expected)] * 2)
    assert output.dtype == expected and all(s.dtype == expected for s in states)


@pytest.mark.parametrize("input_dtype", ["float64", "int64"])
@pytest.mark.parametrize("cell", CELLS)
def test_cell_call_converts_inputs_to_cell_dtype(cell, input_dtype):
    instance = CELLS[cell](4, seed=1)
    x = _typed_inputs(input_dtype)[:, 0]
    states = [np.zeros((B, 4), "float32")] * 2
    output, new_states = instance(x, states)
    expected_output, expected_states = instance(x.astype("float32"), states)
    assert_arrays_equal([output, *new_states], [expected_output, *expected_states], input_dtype)


@pytest.mark.parametrize("input_dtype", ["float32", "float64"])
@pytest.mark.parametrize("kind", LAYERS)
def test_float64_layer_is_float64_for_weights_outputs_and_states(kind, input_dtype):
    layer = _layer(kind, "float64", **FULL)
    assert layer.dtype == "float64"
    for label, arrays in _all_arrays_of(layer, kind, "float64", input_dtype).items():
        assert arrays, label
        assert [a.dtype for a in arrays] == [np.dtype("float64")] * len(arrays), label


@pytest.mark.parametrize("merge_mode", ["concat", "sum", "mul", "ave", None])
@pytest.mark.parametrize("dtype", DTYPES)
def test_bidirectional_merge_keeps_layer_dtype(dtype, merge_mode):
    layer = rnnkit.Bidirectional(rnnkit.GRU(4, dtype=dtype, **FULL), merge_mode=merge_mode)
    results = flatten(layer(_inputs("float64" if dtype == "float32" else "float32")))
    assert [r.dtype for r in results] == [np.dtype(dtype)] * len(results)


# ---------------------------------------------------------------------------------------
# float64 against a float64 NumPy reference
# ---------------------------------------------------------------------------------------


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def _reference_step(kind, weights, x_t, states):
    """One step of a Keras cell (tanh / sigmoid), written from the Keras formulas."""
    kernel, recurrent, bias = weights
    if kind == "simple_rnn":
        h = np.tanh(x_t @ kernel + bias + states[0] @ recurrent)
        return h, [h]
    if kind == "lstm":
        z = x_t @ kernel + bias + states[0] @ recurrent
        i, f, g, o = np.split(z, 4, axis=-1)
        c = _sigmoid(f) * states[1] + _sigmoid(i) * np.tanh(g)
        h = _sigmoid(o) * np.tanh(c)
        return h, [h, c]
    h_prev = states[0]
    u = recurrent.shape[0]
    if kind == "gru":  # reset_after: bias (2, 3u) = input bias, recurrent bias
        x_part = x_t @ kernel + bias[0]
        h_part = h_prev @ recurrent + bias[1]
        z = _sigmoid(x_part[:, :u] + h_part[:, :u])
        r = _sigmoid(x_part[:, u:2 * u] + h_part[:, u:2 * u])
        candidate = np.tanh(x_part[:, 2 * u:] + r * h_part[:, 2 * u:])
    else:  # reset_before
        x_part = x_t @ kernel + bias
        z = _sigmoid(x_part[:, :u] + h_prev @ recurrent[:, :u])
        r = _sigmoid(x_part[:, u:2 * u] + h_prev @ recurrent[:, u:2 * u])
        candidate = np.tanh(x_part[:, 2 * u:] + (r * h_prev) @ recurrent[:, 2 * u:])
    h = z * h_prev + (1.0 - z) * candidate
    return h, [h]


def _reference_run(kind, weights, x, states, go_backwards=False):
    """(sequence in processed order, final states) of one cell over (batch, time, features)."""
    outputs = []
    steps = range(x.shape[1])
    for t in reversed(steps) if go_backwards else steps:
        output, states = _reference_step(kind, weights, x[:, t], states)
        outputs.append(output)
    return np.stack(outputs, axis=1), states


def _reference(kind, weights, x, states, go_backwards=False):
    """[sequence, *states] of `kind` (a cell, a stack or a Bidirectional) in float64."""
    if kind == "stacked":
        sequence, (h1, c1) = _reference_run("lstm", weights[:3], x, states[:2], go_backwards)
        # The upper cell reads the lower cell's outputs in processed order.
        sequence, (h2,) = _reference_run("gru", weights[3:], sequence, states[2:])
        return [sequence, h1, c1, h2]
    if kind == "bidirectional":
        forward, forward_states = _reference_run("lstm", weights[:3], x, states[:2])
        backward, backward_states = _reference_run("lstm", weights[3:], x, states[2:], True)
        return [np.concatenate([forward, backward[:, ::-1]], axis=-1),
                *forward_states, *backward_states]
    sequence, final = _reference_run(kind, weights, x, states, go_backwards)
    return [sequence, *final]


@pytest.mark.parametrize("unroll", [False, True], ids=["scan", "unrolled"])
@pytest.mark.parametrize("path", ["compiled", "python_loop"])
@pytest.mark.parametrize(
    ("kind", "go_backwards"),
    [(kind, False) for kind in COMPILED_KINDS]
    + [(kind, True) for kind in COMPILED_KINDS if kind != "bidirectional"],
)
def test_float64_layer_matches_float64_numpy_reference(kind, go_backwards, path, unroll):
    layer = _layer(kind, "float64", go_backwards=go_backwards, unroll=unroll, **FULL)
    x, states = _inputs("float64"), _states(kind, "float64")
    with _path(path):
        result = layer(x, states)
    expected = _reference(kind, layer.get_weights(), x, states, go_backwards)
    _assert_close(result, expected, "float64", kind)


# ---------------------------------------------------------------------------------------
# input dtypes convert to the layer's dtype
# ---------------------------------------------------------------------------------------


def _typed_inputs(input_dtype):
    rng = np.random.default_rng(4)
    if input_dtype == "bool":
        return rng.random((B, T, F)) < 0.5
    if np.dtype(input_dtype).kind in "iu":
        return rng.integers(0 if input_dtype.startswith("u") else -3, 4, (B, T, F)).astype(
            input_dtype
        )
    return rng.standard_normal((B, T, F)).astype(input_dtype)


INPUT_DTYPES = ("int8", "int32", "int64", "uint8", "bool", "float16", "float32", "float64")


@pytest.mark.parametrize("path", ["compiled", "python_loop"])
@pytest.mark.parametrize("input_dtype", INPUT_DTYPES)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kind", ["lstm", "gru", "stacked", "bidirectional", "custom"])
def test_inputs_of_any_real_dtype_equal_the_converted_array(kind, dtype, input_dtype, path):
    layer = _layer(kind, dtype, **FULL)
    x = _typed_inputs(input_dtype)
    original = x.copy()
    with _path(path):
        result = layer(x)
        expected = layer(x.astype(dtype))
    assert_arrays_equal(result, expected, f"{input_dtype} inputs")
    assert x.dtype == np.dtype(input_dtype) and np.array_equal(x, original)


@pytest.mark.parametrize("state_dtype", ["int32", "float16", "float32", "float64"])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kind", ["lstm", "stacked", "bidirectional"])
def test_initial_state_of_any_real_dtype_equals_the_converted_array(kind, dtype, state_dtype):
    layer = _layer(kind, dtype, **FULL)
    states = [(4 * s).astype(state_dtype) for s in _states(kind)]
    result = layer(_inputs(), states)
    expected = layer(_inputs(), [s.astype(dtype) for s in states])
    assert_arrays_equal(result, expected, f"{state_dtype} initial_state")


@pytest.mark.parametrize("mask_dtype", ["int8", "int64", "uint8", "float32", "float64"])
@pytest.mark.parametrize("kind", ["simple_rnn", "stacked", "bidirectional", "custom"])
def test_mask_of_any_real_dtype_equals_the_boolean_mask(kind, mask_dtype):
    layer = _layer(kind, **FULL)
    mask = _mask()
    assert_arrays_equal(layer(_inputs(), mask=mask.astype(mask_dtype)), layer(_inputs(), mask=mask))


# ---------------------------------------------------------------------------------------
# memory layouts, read-only arrays, lists
# ---------------------------------------------------------------------------------------


def _strided(x, axis):
    """`x` as a view with a step of 2 along `axis` (a slice of a bigger array)."""
    shape = list(x.shape)
    shape[axis] *= 2
    big = np.full(shape, np.nan, x.dtype)
    index = [slice(None)] * x.ndim
    index[axis] = slice(None, None, 2)
    big[tuple(index)] = x
    return big[tuple(index)]


def _reversed(x, axes):
    """`x` as a view with negative strides along `axes`."""
    index = tuple(slice(None, None, -1) if a in axes else slice(None) for a in range(x.ndim))
    return np.ascontiguousarray(x[index])[index]


def _transposed(x):
    """`x` as a transposed view (strides in reverse order) of a C-contiguous array."""
    return np.ascontiguousarray(x.T).T


def _read_only(x):
    x = x.copy()
    x.flags.writeable = False
    return x


def _read_only_view(view):
    view.flags.writeable = False
    return view


def _unaligned(x):
    """`x` in a buffer at an odd byte offset (not aligned to its itemsize)."""
    buffer = bytearray(x.nbytes + 1)
    view = np.ndarray(x.shape, x.dtype, buffer=buffer, offset=1)
    view[...] = x
    return view


# name -> view of `x` with the same values (axes 0 and 1 are the first two axes, whatever
# they mean: (batch, time) for inputs and masks, (batch, units) for states).
LAYOUTS = {
    "strided_axis0": lambda x: _strided(x, 0),
    "strided_axis1": lambda x: _strided(x, 1),
    "strided_last_axis": lambda x: _strided(x, -1),
    "transposed_view": _transposed,
    "fortran_order": np.asfortranarray,
    "reversed_axis0": lambda x: _reversed(x, {0}),
    "reversed_axis1": lambda x: _reversed(x, {1}),
    "reversed_all_axes": lambda x: _reversed(x, set(range(x.ndim))),
    "read_only": _read_only,
    "read_only_strided": lambda x: _read_only_view(_strided(x, 1)),
    "unaligned": _unaligned,
}


def _check_layout(layout, x):
    view = LAYOUTS[layout](x)
    assert np.array_equal(view, x)
    if layout not in ("read_only", "unaligned"):
        assert not view.flags.c_contiguous or view.ndim < 2, layout
    return view


@pytest.mark.parametrize("path", ["compiled", "python_loop"])
@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kind", KINDS)
def test_inputs_of_any_layout_equal_their_contiguous_copy(kind, dtype, layout, path):
    layer = _layer(kind, dtype, **FULL)
    x = _check_layout(layout, _inputs(dtype))
    before, flags = x.copy(), (x.flags.writeable, x.flags.c_contiguous, x.strides)
    with _path(path):
        result = layer(x)
        expected = layer(np.ascontiguousarray(x))
    assert_arrays_equal(result, expected, layout)
    assert np.array_equal(x, before)
    assert (x.flags.writeable, x.flags.c_contiguous, x.strides) == flags


@pytest.mark.parametrize("path", ["compiled", "python_loop"])
@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("kind", ["lstm", "stacked", "bidirectional"])
def test_mask_and_initial_state_of_any_layout_equal_their_contiguous_copies(kind, layout, path):
    layer = _layer(kind, **FULL)
    x, mask, states = _inputs(), _mask(), _states(kind)
    mask_view = _check_layout(layout, mask)
    state_views = [_check_layout(layout, s) for s in states]
    with _path(path):
        result = layer(x, state_views, mask=mask_view)
        expected = layer(x, states, mask=mask)
    assert_arrays_equal(result, expected, layout)
    assert np.array_equal(mask_view, mask)
    assert all(np.array_equal(v, s) for v, s in zip(state_views, states))


@pytest.mark.parametrize("kind", ["lstm", "stacked", "bidirectional"])
def test_broadcast_inputs_equal_their_contiguous_copy(kind):
    layer = _layer(kind, **FULL)
    row = _inputs(shape=(1, T, F))
    view = np.broadcast_to(row, (B, T, F))  # zero batch stride, read-only
    assert_arrays_equal(layer(view), layer(np.repeat(row, B, axis=0)), "broadcast")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kind", ["simple_rnn", "lstm", "stacked", "bidirectional", "custom"])
def test_nested_lists_equal_the_array(kind, dtype):
    layer = _layer(kind, dtype, **FULL)
    x, mask, states = _inputs(dtype), _mask(), _states(kind, dtype)
    # Nested lists for the inputs and the mask (not for initial_state, where a list's
    # nesting says which state belongs to which cell).
    result = layer(x.tolist(), states, mask=mask.tolist())
    assert_arrays_equal(result, layer(x, states, mask=mask), "lists")


def test_inputs_are_never_modified_even_when_writable():
    layer = _layer("lstm", **FULL, stateful=True)
    x, states, mask = _inputs(), _states("lstm"), _mask()
    copies = [x.copy(), *(s.copy() for s in states), mask.copy()]
    for _ in range(2):
        layer(x, states, mask=mask)
    for got, want in zip([x, *states, mask], copies):
        assert np.array_equal(got, want)


# ---------------------------------------------------------------------------------------
# outputs never alias inputs, each other, or the layer's carried states
# ---------------------------------------------------------------------------------------

# The NumPy loop returns a cell's `output` as the last output and the same object as its
# new state (SimpleRNN/GRU/custom cells return `h, [h]`, LSTM `h, [h, c]`).


def _alias_cases():
    cases = []
    for kind in KINDS:
        for path in ("compiled", "python_loop"):
            if kind == "custom" and path == "compiled":
                continue
            for return_sequences in (False, True):
                name = "sequences" if return_sequences else "last"
                cases.append(pytest.param(kind, path, return_sequences,
                                          id=f"{kind}-{path}-{name}"))
    return cases


@pytest.mark.parametrize(("kind", "path", "return_sequences"), _alias_cases())
def test_returned_arrays_share_no_memory_with_inputs_or_each_other(kind, path, return_sequences):
    layer = _layer(kind, return_sequences=return_sequences, return_state=True)
    x, states = _inputs(), _states(kind)  # float32 C-contiguous: conversion is a no-op
    with _path(path):
        returned = flatten(layer(x, states))
    given = [x, *states]
    for i, array in enumerate(returned):
        assert not any(np.shares_memory(array, g) for g in given), f"returned[{i}] aliases input"
        for j in range(i):
            assert not np.shares_memory(array, returned[j]), f"returned[{i}] aliases [{j}]"


@pytest.mark.parametrize("path", ["compiled", "python_loop"])
@pytest.mark.parametrize("kind", [*builtin_layers(), "stacked", "bidirectional"])
def test_stateful_returned_arrays_do_not_alias_carried_states(kind, path):
    layer = _layer(kind, stateful=True, return_sequences=True, return_state=True)
    twin = _layer(kind, stateful=True, return_sequences=True, return_state=True)
    with _path(path):
        returned = flatten(layer(_inputs()))
        flatten(twin(_inputs()))
        for array in returned:
            array[...] = 100.0  # the caller owns what it gets back
        assert_arrays_equal(layer.states, twin.states, "carried states")
        assert_arrays_equal(layer(_inputs(seed=5)), twin(_inputs(seed=5)), "next call")


@pytest.mark.parametrize("kind", ["lstm", "stacked", "bidirectional"])
def test_states_property_returns_copies(kind):
    layer = _layer(kind, stateful=True)
    layer(_inputs())
    before = flatten(layer.states)
    for state in flatten(layer.states):
        state[...] = 100.0
    assert_arrays_equal(layer.states, before, "layer.states")


# ---------------------------------------------------------------------------------------
# time_major
# ---------------------------------------------------------------------------------------


TIME_MAJOR_OPTIONS = {
    "plain": {},
    "backwards": {"go_backwards": True},
    "zero_output_for_mask": {"zero_output_for_mask": True},
    "unroll": {"unroll": True},
}


def _time_major_cases():
    return [
        pytest.param(kind, options, id=f"{kind}-{name}")
        for kind in LAYERS
        for name, options in TIME_MAJOR_OPTIONS.items()
        # Bidirectional sets go_backwards and zero_output_for_mask of its layers itself.
        if not (kind == "bidirectional" and name in ("backwards", "zero_output_for_mask"))
    ]


@pytest.mark.parametrize("path", ["compiled", "python_loop"])
@pytest.mark.parametrize("masked", [False, True], ids=["unmasked", "masked"])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(("kind", "options"), _time_major_cases())
def test_time_major_equals_batch_major_on_transposed_inputs(kind, options, dtype, masked, path):
    batch_major = _layer(kind, dtype, **FULL, **options)
    time_major = _layer(kind, dtype, **FULL, **options, time_major=True)
    time_major.set_weights(batch_major.get_weights())
    x, states = _inputs(dtype), _states(kind, dtype)
    mask = _mask() if masked else None
    with _path(path):
        expected = batch_major(x, states, mask=mask)
        result = time_major(
            np.ascontiguousarray(x.transpose(1, 0, 2)), states,
            mask=None if mask is None else np.ascontiguousarray(mask.T),
        )
    sequence, *final = result
    assert sequence.shape[:2] == (T, B)
    _assert_close([sequence.transpose(1, 0, 2), *final], expected, dtype, "time_major")

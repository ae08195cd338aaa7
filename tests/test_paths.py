"""The C++ kernels against rnnkit's NumPy loop, and the C++ driver's variants against each other:
unroll=True vs unroll=False at every chunking, batch-major vs time-major, stacked layer-by-layer
vs per-step interleaving, every compiled SIMD level. Needs no Keras."""

import itertools

import numpy as np
import pytest

import rnnkit
from conftest import PATH_TOLERANCES, assert_results_close, builtin_layers, recurrent_cell
from rnnkit import _core, testing

CELLS = builtin_layers(variants=True)


def _mask(rng, batch, steps):
    """Random mask with a fully masked row, a masked first step and a masked last step."""
    mask = rng.random((batch, steps)) > 0.35
    mask[0] = False
    if batch > 1:
        mask[1, 0] = False
        mask[1, 1:] = True
    if batch > 2:
        mask[2, -1] = False
    return mask


def _randomize(layer, rng):
    """Weights with a scale that keeps every gate away from saturation."""
    layer.set_weights([rng.uniform(-0.5, 0.5, w.shape) for w in layer.get_weights()])


def _both_paths(layer, x, **call):
    compiled = layer(x, **call)
    with testing.python_loop():
        reference = layer(x, **call)
    return compiled, reference


GRID = list(
    itertools.product(
        CELLS,
        [False, True],  # return_sequences
        [False, True],  # go_backwards
        [False, True],  # masked
        [False, True],  # zero_output_for_mask
        [False, True],  # time_major
        [False, True],  # initial_state
    )
)


@pytest.mark.parametrize(
    "cell,return_sequences,go_backwards,masked,zero_output,time_major,with_state", GRID
)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_compiled_matches_numpy_loop_over_argument_grid(
    cell, return_sequences, go_backwards, masked, zero_output, time_major, with_state, dtype
):
    rng = np.random.default_rng(hash((cell, return_sequences, go_backwards, masked)) % 2**32)
    batch, steps, features, units = 3, 7, 4, 5
    layer = rnnkit.RNN(
        recurrent_cell(cell, units, dtype=dtype),
        return_sequences=return_sequences,
        return_state=True,
        go_backwards=go_backwards,
        zero_output_for_mask=zero_output,
        time_major=time_major,
    )
    shape = (steps, batch, features) if time_major else (batch, steps, features)
    x = rng.standard_normal(shape).astype(dtype)
    layer.build(x.shape)
    _randomize(layer, rng)
    call = {}
    if masked:
        mask = _mask(rng, batch, steps)
        call["mask"] = mask.T if time_major else mask
    if with_state:
        call["initial_state"] = [
            rng.standard_normal((batch, units)) for _ in layer.cell.get_initial_state(1)
        ]
    compiled, reference = _both_paths(layer, x, **call)
    assert_results_close(compiled, reference, dtype, tolerances=PATH_TOLERANCES)


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("masked", [False, True])
@pytest.mark.parametrize("go_backwards", [False, True])
@pytest.mark.parametrize("chunk", [1, 2, 3, 7, 64])
def test_unroll_false_equals_unroll_true_at_every_chunking(cell, masked, go_backwards, chunk):
    rng = np.random.default_rng(7)
    batch, steps, features, units = 4, 10, 3, 6
    x = rng.standard_normal((batch, steps, features)).astype("float32")
    mask = _mask(rng, batch, steps) if masked else None
    unrolled = rnnkit.RNN(recurrent_cell(cell, units), return_sequences=True, return_state=True,
                          go_backwards=go_backwards, unroll=True)
    looped = rnnkit.RNN(recurrent_cell(cell, units), return_sequences=True, return_state=True,
                        go_backwards=go_backwards, unroll=False)
    unrolled.build(x.shape)
    looped.build(x.shape)
    _randomize(unrolled, rng)
    looped.set_weights(unrolled.get_weights())
    expected = unrolled(x, mask=mask)
    with testing.chunk_steps(chunk):
        actual = looped(x, mask=mask)
    assert_results_close(list(actual), list(expected), "float32", tolerances=PATH_TOLERANCES)
    automatic = looped(x, mask=mask)  # the kernel's own memory-bounded chunking
    assert_results_close(list(automatic), list(expected), "float32", tolerances=PATH_TOLERANCES)


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("masked", [False, True])
def test_time_major_equals_batch_major_transposed(cell, masked):
    rng = np.random.default_rng(3)
    batch, steps, features, units = 3, 6, 4, 5
    x = rng.standard_normal((batch, steps, features)).astype("float32")
    mask = _mask(rng, batch, steps) if masked else None
    batch_major = rnnkit.RNN(recurrent_cell(cell, units), return_sequences=True, return_state=True)
    time_major = rnnkit.RNN(recurrent_cell(cell, units), return_sequences=True, return_state=True,
                            time_major=True)
    batch_major.build(x.shape)
    time_major.build(x.transpose(1, 0, 2).shape)
    _randomize(batch_major, rng)
    time_major.set_weights(batch_major.get_weights())
    y, *states = batch_major(x, mask=mask)
    y_t, *states_t = time_major(x.transpose(1, 0, 2), mask=None if mask is None else mask.T)
    np.testing.assert_allclose(y_t.transpose(1, 0, 2), y, rtol=1e-6, atol=1e-6)
    assert_results_close(states_t, states, "float32", tolerances=PATH_TOLERANCES)


@pytest.mark.parametrize("masked", [False, True])
@pytest.mark.parametrize("go_backwards", [False, True])
@pytest.mark.parametrize("time_major", [False, True])
@pytest.mark.parametrize("return_sequences", [False, True])
def test_stacked_layer_by_layer_equals_per_step_interleaving(
    masked, go_backwards, time_major, return_sequences
):
    """The C++ path runs a stack one cell at a time over the whole sequence; the NumPy loop
    interleaves the cells at every step, as Keras does. Masks included, they must agree."""
    rng = np.random.default_rng(11)
    batch, steps, features = 4, 8, 3
    layer = rnnkit.RNN(
        [rnnkit.LSTMCell(5), rnnkit.GRUCell(4), rnnkit.SimpleRNNCell(3),
         rnnkit.GRUCell(2, reset_after=False)],
        return_sequences=return_sequences, return_state=True, go_backwards=go_backwards,
        time_major=time_major,
    )
    shape = (steps, batch, features) if time_major else (batch, steps, features)
    x = rng.standard_normal(shape).astype("float32")
    layer.build(x.shape)
    _randomize(layer, rng)
    mask = None
    if masked:
        mask = _mask(rng, batch, steps)
        mask = mask.T if time_major else mask
    compiled, reference = _both_paths(layer, x, mask=mask)
    assert [len(s) for s in compiled[1:]] == [2, 1, 1, 1]  # nested per cell, as Keras 3
    assert_results_close(list(compiled), list(reference), "float32", tolerances=PATH_TOLERANCES)


@pytest.mark.parametrize("cell", CELLS)
def test_every_compiled_simd_level_gives_the_same_numbers(cell):
    rng = np.random.default_rng(5)
    x = rng.standard_normal((3, 9, 17)).astype("float32")
    mask = _mask(rng, 3, 9)
    layer = rnnkit.RNN(recurrent_cell(cell, 33), return_sequences=True, return_state=True)
    layer.build(x.shape)
    _randomize(layer, rng)
    active = _core.active_isa()
    results = {}
    try:
        for isa in _core.supported_isas():
            _core.set_isa(isa)
            results[isa] = layer(x, mask=mask)
            assert layer.cell.compiled_kernel().isa == isa
    finally:
        _core.set_isa(active)
    with testing.python_loop():
        reference = layer(x, mask=mask)
    assert set(results) == set(_core.supported_isas())
    for result in results.values():
        # Levels differ only by rounding (FMA contraction, blocking) at K = 17 + 33.
        assert_results_close(list(result), list(reference), "float32", tolerances=PATH_TOLERANCES)


def test_set_isa_rejects_unknown_level_naming_the_choices():
    with pytest.raises(ValueError, match="unknown SIMD level 'v9'; compiled in: .*v1"):
        _core.set_isa("v9")


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_unroll_false_working_memory_is_independent_of_steps(cell):
    layer = rnnkit.RNN(recurrent_cell(cell, 64))
    layer.build((8, 10, 32))
    kernel = layer.cell.compiled_kernel()
    looped = {steps: kernel.workspace_bytes(8, steps, 0, True) for steps in (10**3, 10**6, 10**9)}
    unrolled = {steps: kernel.workspace_bytes(8, steps, -1, True) for steps in (10**3, 10**6)}
    assert len(set(looped.values())) == 1
    assert looped[10**9] < 5 * 2**20
    assert unrolled[10**6] > 900 * unrolled[10**3]  # unroll=True holds every step's projection


def test_long_sequence_compiled_matches_numpy_loop():
    rng = np.random.default_rng(2)
    x = rng.standard_normal((2, 1000, 3)).astype("float32")
    layer = rnnkit.LSTM(8, return_sequences=True)
    compiled, reference = _both_paths(layer, x)
    assert_results_close(compiled, reference, "float32", tolerances=PATH_TOLERANCES)


@pytest.mark.parametrize(
    "batch,steps,features", [(1, 1, 1), (1, 50, 1), (5, 1, 3), (0, 4, 3), (64, 3, 2)]
)
@pytest.mark.parametrize("cell", CELLS)
def test_edge_shapes_compiled_matches_numpy_loop(cell, batch, steps, features):
    rng = np.random.default_rng(batch * 100 + steps)
    x = rng.standard_normal((batch, steps, features)).astype("float32")
    layer = rnnkit.RNN(recurrent_cell(cell, 4), return_sequences=True, return_state=True)
    layer.build(x.shape)
    _randomize(layer, rng)
    compiled = layer(x)
    assert compiled[0].shape == (batch, steps, 4)
    if batch == 0:
        return  # the NumPy loop has nothing to stack either; shapes are the contract here
    with testing.python_loop():
        reference = layer(x)
    assert_results_close(list(compiled), list(reference), "float32", tolerances=PATH_TOLERANCES)


def test_python_callable_activation_runs_through_numpy_loop():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 5, 3)).astype("float32")
    layer = rnnkit.SimpleRNN(4, activation=lambda v: np.tanh(v) * 0.5)
    assert layer(x).shape == (2, 4)
    assert layer.cell.compiled_kernel() is None
    named = rnnkit.SimpleRNN(4, activation="tanh")
    named(x)
    named.set_weights(layer.get_weights())
    h = np.zeros((2, 4), "float32")
    kernel, recurrent, bias = layer.get_weights()
    for t in range(5):
        h = np.tanh(x[:, t] @ kernel + bias + h @ recurrent) * 0.5
    np.testing.assert_allclose(layer(x), h, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("units", [100, 128])  # rows of 400 bytes start at every alignment
@pytest.mark.parametrize("time_major", [False, True])
@pytest.mark.parametrize("masked", [False, True])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_output_sequences_beyond_l2_compiled_match_numpy_loop(cell, units, time_major, masked,
                                                             dtype):
    """Outputs of 1 MiB and more are written with non-temporal stores (matrix.hpp,
    stream_rows), a cache line at a time from the first 64-byte boundary of each row."""
    rng = np.random.default_rng(units)
    batch, steps, features = 8, 400, 3
    assert batch * steps * units * 4 >= 2**20
    layer = rnnkit.RNN(recurrent_cell(cell, units, dtype=dtype), return_sequences=True,
                       return_state=True, go_backwards=masked, time_major=time_major)
    shape = (steps, batch, features) if time_major else (batch, steps, features)
    x = rng.standard_normal(shape).astype(dtype)
    layer.build(x.shape)
    # Contracting weights (rows of norm ~0.6): over 400 steps, larger ones make the recurrence
    # chaotic and rounding alone would separate the two paths.
    layer.set_weights([rng.uniform(-1, 1, w.shape) / np.sqrt(w.shape[0])
                       for w in layer.get_weights()])
    call = {}
    if masked:
        mask = _mask(rng, batch, steps)
        call["mask"] = mask.T if time_major else mask
    compiled, reference = _both_paths(layer, x, **call)
    assert_results_close(list(compiled), list(reference), dtype, tolerances=PATH_TOLERANCES)

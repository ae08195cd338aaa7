"""The fast path of repeated calls (a C++ plan made after the first plain call) and rnnkit's
batch-row threads: same numbers as the validating path and as one thread, and never stale.

A plan is made for one configuration of the layer. Whatever it depends on — every attribute in
rnn.py's `_PLAN_INPUTS`, the weights, the SIMD level, the thread count — changed on a live layer
that holds a plan, the next calls give exactly the numbers of a fresh layer made with the new
configuration and the same weights (tests at the end of this file).
"""

import sys
import threading

import numpy as np
import pytest

import rnnkit
from conftest import (
    assert_arrays_equal,
    builtin_layers,
    flatten,
    recurrent_cell,
    recurrent_layer,
)
from rnnkit import _core, testing
from rnnkit.layers.recurrent.rnn import RNN_ARGUMENTS

LAYERS = builtin_layers()


def _x(shape, seed=0, dtype="float32"):
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


@pytest.mark.parametrize("kind", LAYERS)
@pytest.mark.parametrize("return_state", [False, True])
@pytest.mark.parametrize("return_sequences", [False, True])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_repeated_calls_take_the_plan_and_match_the_numpy_loop(kind, return_state,
                                                                return_sequences, dtype):
    layer = recurrent_layer(kind, 5, return_state=return_state,
                            return_sequences=return_sequences, go_backwards=True, dtype=dtype)
    x = _x((3, 7, 4), dtype=dtype)
    first = layer(x)
    assert layer._plan is not None
    second = layer(x)
    with testing.python_loop():
        reference = layer(x)
    for a, b, r in zip(flatten(first), flatten(second), flatten(reference)):
        np.testing.assert_array_equal(a, b)
        np.testing.assert_allclose(b, r, rtol=1e-5, atol=1e-6)
        assert b.dtype == np.dtype(dtype)


def test_plan_serves_only_the_shape_and_dtype_it_was_made_for():
    layer = rnnkit.GRU(4)
    layer(_x((2, 5, 3)))
    plan = layer._plan
    assert plan(_x((2, 6, 3))) is None  # other steps
    assert plan(_x((2, 5, 3), dtype="float64")) is None  # other dtype
    assert plan(np.asfortranarray(_x((2, 5, 3)))) is None  # not C-contiguous
    assert plan([[1.0]]) is None
    # ... and the layer still answers those through the validating path.
    assert layer(_x((2, 6, 3))).shape == (2, 4)


def test_set_weights_after_a_plan_is_seen_by_the_next_call():
    layer = rnnkit.LSTM(4)
    x = _x((2, 5, 3))
    layer(x)
    before = layer(x)
    layer.set_weights([w * 0.5 for w in layer.get_weights()])
    after = layer(x)
    assert not np.allclose(before, after)
    with testing.python_loop():
        np.testing.assert_allclose(after, layer(x), rtol=1e-5, atol=1e-6)


def test_set_weights_on_a_cell_invalidates_the_layers_plan():
    cell = rnnkit.GRUCell(4)
    layer = rnnkit.RNN([cell, rnnkit.SimpleRNNCell(3)])
    x = _x((2, 5, 3))
    layer(x)
    before = layer(x)
    cell.set_weights([w + 0.1 for w in cell.get_weights()])
    after = layer(x)
    assert not np.allclose(before, after)
    with testing.python_loop():
        np.testing.assert_allclose(after, layer(x), rtol=1e-5, atol=1e-6)


def test_changing_a_layer_argument_drops_the_plan():
    layer = rnnkit.SimpleRNN(4)
    x = _x((2, 5, 3))
    layer(x)
    layer.return_sequences = True
    assert layer(x).shape == (2, 5, 4)


@pytest.mark.parametrize("kind", LAYERS)
def test_stateful_plan_streams_like_one_long_call(kind):
    x = _x((2, 20, 3))
    stateful = recurrent_layer(kind, 6, stateful=True, return_sequences=True)
    whole = recurrent_layer(kind, 6, return_sequences=True)
    stateful(x[:, :1])
    whole(x)
    stateful.set_weights(whole.get_weights())
    stateful.reset_states()
    pieces = [stateful(np.ascontiguousarray(x[:, t:t + 1])) for t in range(20)]
    assert stateful._plan is not None
    np.testing.assert_allclose(np.concatenate(pieces, axis=1), whole(x), rtol=1e-5, atol=1e-6)
    stateful.reset_states()  # in place: the plan keeps serving, from zeros
    np.testing.assert_allclose(stateful(np.ascontiguousarray(x[:, :1])), whole(x)[:, :1],
                               rtol=1e-6, atol=1e-7)


def test_stateful_plan_returns_copies_of_the_carried_states():
    layer = rnnkit.LSTM(3, stateful=True, return_state=True)
    x = _x((1, 1, 2))
    layer(x)
    _, h, c = layer(x)
    h[...] = 100.0
    assert np.all(layer.states[0] != 100.0)


@pytest.mark.parametrize("kind", LAYERS)
@pytest.mark.parametrize("masked", [False, True])
def test_two_threads_give_the_numbers_of_one(kind, masked):
    x = _x((33, 40, 16))
    mask = np.random.default_rng(1).random((33, 40)) > 0.2 if masked else None
    layer = recurrent_layer(kind, 48, return_sequences=True, return_state=True)
    layer(x)
    one = layer(x, mask=mask)
    previous = rnnkit.get_num_threads()
    try:
        rnnkit.set_num_threads(2)
        assert rnnkit.get_num_threads() == 2
        two = layer(x, mask=mask)
        layer(x)
        two_plan = layer(x)  # the plan made under one thread is replanned for two
    finally:
        rnnkit.set_num_threads(previous)
    for a, b in zip(flatten(one), flatten(two)):
        np.testing.assert_allclose(b, a, rtol=1e-6, atol=1e-6)
    for a, b in zip(flatten(layer(x)), flatten(two_plan)):
        np.testing.assert_allclose(b, a, rtol=1e-6, atol=1e-6)


def test_set_num_threads_refuses_nonpositive():
    with pytest.raises(ValueError, match="threads"):
        rnnkit.set_num_threads(0)


def test_concurrent_python_threads_on_one_layer_match_serial_calls():
    layer = rnnkit.LSTM(32, return_sequences=True)
    inputs = [_x((4, 30, 8), seed=s) for s in range(8)]
    expected = [layer(x) for x in inputs]
    results = [[] for _ in inputs]

    def work(i):
        for _ in range(50):
            results[i].append(layer(inputs[i]))

    threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for i, outs in enumerate(results):
        for out in outs:
            np.testing.assert_array_equal(out, expected[i])


def test_plans_follow_the_active_simd_level():
    layer = rnnkit.GRU(8)
    x = _x((2, 4, 3))
    layer(x)
    active = _core.active_isa()
    try:
        for isa in _core.supported_isas():
            _core.set_isa(isa)
            layer(x)
            assert layer.cell.compiled_kernel().isa == isa
    finally:
        _core.set_isa(active)


# ---------------------------------------------------------------------------------------
# invalidation: whatever a plan depends on, changed on a live layer
# ---------------------------------------------------------------------------------------

# Every attribute whose setting drops a layer's plan (read from the module that defines RNN, so
# that a new one is tested here, or fails test_every_plan_input_is_tested, without an edit).
PLAN_INPUTS = sorted(sys.modules[rnnkit.RNN.__module__]._PLAN_INPUTS)
# The ones that are RNN constructor flags; the others need a way to change them (below).
FLAGS = [name for name in PLAN_INPUTS if name in RNN_ARGUMENTS]
STRUCTURES = [*builtin_layers(variants=True), "stacked"]
# Batch == timesteps: a time-major reading of the input has the shape of the batch-major one,
# so a stale plan would take it rather than refuse it.
SQUARE = (4, 4, 3)

def _rnn(structure, dtype="float32", seed=1, units=4, **config):
    """RNN(cell) of a built-in cell, or RNN([LSTMCell, GRUCell]), seeded weights."""
    if structure == "stacked":
        cells = [rnnkit.LSTMCell(units + 1, seed=seed, dtype=dtype),
                 rnnkit.GRUCell(units, seed=seed + 1, dtype=dtype)]
        return rnnkit.RNN(cells, **config)
    return rnnkit.RNN(recurrent_cell(structure, units, seed=seed, dtype=dtype), **config)


def _with_plan(structure, **config):
    """A layer of `structure` that has run twice on SQUARE inputs, so it holds a plan."""
    layer = _rnn(structure, **config)
    x = _x(SQUARE)
    layer(x)
    layer(x)
    assert layer._plan is not None, "no plan to make stale"
    return layer


def _fresh(structure, weights, dtype="float32", shape=SQUARE, units=4, **config):
    """A new layer of `structure` and `config` holding `weights`, built for `shape`."""
    layer = _rnn(structure, dtype, seed=7, units=units, **config)
    layer.build(shape)
    layer.set_weights(weights)
    return layer


def _assert_same_calls(live, fresh, x, calls=3):
    """The next `calls` calls (the validating one, then the plan's) of both layers return the
    same arrays, bit for bit, and leave the same carried states."""
    for call in range(calls):
        assert_arrays_equal(live(x), fresh(x), f"call {call}")
        if fresh.stateful:
            assert_arrays_equal(live.states, fresh.states, f"states after call {call}")


def test_every_plan_input_is_tested():
    untested = set(PLAN_INPUTS) - set(FLAGS) - set(CHANGES)
    assert not untested, f"add a test of changing {sorted(untested)} on a live layer"


@pytest.mark.parametrize("structure", STRUCTURES)
@pytest.mark.parametrize("start", [False, True])
@pytest.mark.parametrize("flag", FLAGS)
def test_flipping_a_flag_gives_the_numbers_of_a_fresh_layer(flag, start, structure):
    live = _with_plan(structure, **{flag: start})
    setattr(live, flag, not start)
    fresh = _fresh(structure, live.get_weights(), **{flag: not start})
    _assert_same_calls(live, fresh, _x(SQUARE, seed=1))


def _swap_cell(structure):
    """Another cell (or stack) of other weights, with the same output size, in place of the
    layer's; the fresh layer runs a copy of it."""
    live = _with_plan(structure)
    if structure == "stacked":
        other = [rnnkit.GRUCell(5, seed=3), rnnkit.LSTMCell(4, seed=4)]
        donor, twin = rnnkit.RNN(other), rnnkit.RNN([rnnkit.GRUCell(5), rnnkit.LSTMCell(4)])
    else:
        kinds = list(builtin_layers(variants=True))
        kind = kinds[(kinds.index(structure) + 1) % len(kinds)]
        donor = rnnkit.RNN(recurrent_cell(kind, 4, seed=3))
        twin = rnnkit.RNN(recurrent_cell(kind, 4))
    donor.build(SQUARE)  # builds the new cell
    twin.build(SQUARE)
    twin.set_weights(donor.get_weights())
    live.cell = donor.cell
    return live, twin, _x(SQUARE, seed=1)


def _swap_dtype(structure):
    """float64 cells holding the same weights, and dtype float64."""
    live = _with_plan(structure)
    donor = _fresh(structure, live.get_weights(), dtype="float64")
    live.cell = donor.cell
    live.dtype = "float64"
    fresh = _fresh(structure, live.get_weights(), dtype="float64")
    return live, fresh, _x(SQUARE, seed=1, dtype="float64")


def _replace_states(structure):
    """New carried states, through reset_states(states), which replaces `_states`."""
    live = _with_plan(structure, stateful=True)
    rng = np.random.default_rng(5)
    states = [rng.uniform(-0.8, 0.8, s.shape).astype("float32") for s in flatten(live.states)]
    before = live._states
    live.reset_states(states)
    assert live._states is not before, "reset_states(states) no longer replaces _states"
    fresh = _fresh(structure, live.get_weights(), stateful=True)
    fresh.reset_states(states)
    return live, fresh, _x(SQUARE, seed=1)


# Plan inputs that are not flags -> how to change one on a live layer with a plan:
# structure -> (live layer, fresh layer of the new configuration, input).
CHANGES = {
    "cell": _swap_cell,
    "dtype": _swap_dtype,  # a float64 layer needs float64 cells: a swap
    "_states": _replace_states,
}


@pytest.mark.parametrize("structure", STRUCTURES)
@pytest.mark.parametrize("attribute", [name for name in PLAN_INPUTS if name not in FLAGS])
def test_changing_a_plan_input_gives_the_numbers_of_a_fresh_layer(attribute, structure):
    if attribute not in CHANGES:
        pytest.fail(f"no test changes the plan input {attribute!r}: add one to CHANGES")
    live, fresh, x = CHANGES[attribute](structure)
    _assert_same_calls(live, fresh, x)


@pytest.mark.parametrize("structure", STRUCTURES)
def test_set_weights_gives_the_numbers_of_a_fresh_layer(structure):
    live = _with_plan(structure)
    rng = np.random.default_rng(6)
    weights = [rng.uniform(-0.5, 0.5, w.shape).astype("float32") for w in live.get_weights()]
    live.set_weights(weights)
    _assert_same_calls(live, _fresh(structure, weights), _x(SQUARE, seed=1))


@pytest.mark.parametrize("structure", STRUCTURES)
def test_set_weights_of_a_cell_gives_the_numbers_of_a_fresh_layer(structure):
    live = _with_plan(structure)
    cell = getattr(live.cell, "cells", [live.cell])[-1]  # the top cell of a stack, on its own
    rng = np.random.default_rng(6)
    cell.set_weights([rng.uniform(-0.5, 0.5, w.shape) for w in cell.get_weights()])
    _assert_same_calls(live, _fresh(structure, live.get_weights()), _x(SQUARE, seed=1))


@pytest.fixture
def restore_isa():
    active = _core.active_isa()
    yield
    _core.set_isa(active)


@pytest.mark.parametrize("structure", STRUCTURES)
def test_changing_the_simd_level_gives_the_numbers_of_a_fresh_layer(structure, restore_isa):
    others = [isa for isa in _core.supported_isas() if isa != _core.active_isa()]
    if not others:
        pytest.skip(f"one SIMD level runs here: {_core.supported_isas()}")
    live = _with_plan(structure)
    for isa in others:
        _core.set_isa(isa)
        fresh = _fresh(structure, live.get_weights())
        _assert_same_calls(live, fresh, _x(SQUARE, seed=1))
        assert all(c.compiled_kernel().isa == isa for c in live._cells)


@pytest.fixture
def restore_threads():
    previous = rnnkit.get_num_threads()
    yield
    rnnkit.set_num_threads(previous)


@pytest.mark.parametrize("structure", STRUCTURES)
@pytest.mark.parametrize("threads", [(1, 2), (2, 1)], ids=["one_to_two", "two_to_one"])
def test_changing_the_thread_count_gives_the_numbers_of_a_fresh_layer(structure, threads,
                                                                      restore_threads):
    before, after = threads
    rnnkit.set_num_threads(before)
    # Rows and steps enough for the work to be shared between two threads.
    x = _x((32, 12, 16), seed=1)
    live = _rnn(structure, units=32)
    live(x)
    live(x)
    assert live._plan is not None
    rnnkit.set_num_threads(after)
    fresh = _fresh(structure, live.get_weights(), shape=x.shape, units=32)
    _assert_same_calls(live, fresh, x)

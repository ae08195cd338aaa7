"""The fast path of repeated calls (a C++ plan made after the first plain call) and rnnkit's
batch-row threads: same numbers as the validating path and as one thread, and never stale."""

import threading

import numpy as np
import pytest

import rnnkit
from rnnkit import _core, testing

LAYERS = {"simple_rnn": rnnkit.SimpleRNN, "lstm": rnnkit.LSTM, "gru": rnnkit.GRU}


def _x(shape, seed=0, dtype="float32"):
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


def _flat(result):
    if isinstance(result, np.ndarray):
        return [result]
    return [a for item in result for a in _flat(item)]


@pytest.mark.parametrize("kind", LAYERS)
@pytest.mark.parametrize("return_state", [False, True])
@pytest.mark.parametrize("return_sequences", [False, True])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_repeated_calls_take_the_plan_and_match_the_numpy_loop(kind, return_state,
                                                                return_sequences, dtype):
    layer = LAYERS[kind](5, return_state=return_state, return_sequences=return_sequences,
                         go_backwards=True, dtype=dtype)
    x = _x((3, 7, 4), dtype=dtype)
    first = layer(x)
    assert layer._plan is not None
    second = layer(x)
    with testing.python_loop():
        reference = layer(x)
    for a, b, r in zip(_flat(first), _flat(second), _flat(reference)):
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
    stateful = LAYERS[kind](6, stateful=True, return_sequences=True)
    whole = LAYERS[kind](6, return_sequences=True)
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
    layer = LAYERS[kind](48, return_sequences=True, return_state=True)
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
    for a, b in zip(_flat(one), _flat(two)):
        np.testing.assert_allclose(b, a, rtol=1e-6, atol=1e-6)
    for a, b in zip(_flat(layer(x)), _flat(two_plan)):
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

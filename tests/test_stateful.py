"""Stateful layers and Bidirectional composition, checked against one-shot runs of the same
weights (streaming step by step must equal the whole sequence at once)."""

import numpy as np
import pytest

import rnnkit
from conftest import builtin_layers, recurrent_layer

LAYERS = builtin_layers()


def _pair(kind, units, **kwargs):
    """A stateful layer and a stateless twin with the same weights."""
    stateful = recurrent_layer(kind, units, stateful=True, return_sequences=True, **kwargs)
    whole = recurrent_layer(kind, units, return_sequences=True, return_state=True, **kwargs)
    return stateful, whole


@pytest.mark.parametrize("kind", LAYERS)
@pytest.mark.parametrize("chunk", [1, 3])
def test_streaming_in_chunks_equals_whole_sequence(kind, chunk):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 12, 3)).astype("float32")
    stateful, whole = _pair(kind, 5)
    stateful(x[:, :1])
    whole(x)
    stateful.set_weights(whole.get_weights())
    stateful.reset_states()
    pieces = [stateful(x[:, t:t + chunk]) for t in range(0, 12, chunk)]
    y, *states = whole(x)
    np.testing.assert_allclose(np.concatenate(pieces, axis=1), y, rtol=1e-5, atol=1e-6)
    for carried, final in zip(stateful.states, states):
        np.testing.assert_allclose(carried, final, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("kind", LAYERS)
def test_reset_states_zeroes_and_sets(kind):
    rng = np.random.default_rng(1)
    x = rng.standard_normal((3, 4, 2)).astype("float32")
    layer = recurrent_layer(kind, 4, stateful=True)
    assert layer.states is None
    first = layer(x)
    assert all(s.shape == (3, 4) and np.any(s != 0) for s in layer.states)
    layer.reset_states()
    assert all(np.all(s == 0) for s in layer.states)
    np.testing.assert_array_equal(layer(x), first)  # a reset layer starts over
    given = [rng.standard_normal((3, 4)).astype("float32") for _ in layer.states]
    layer.reset_states(given)
    for state, value in zip(layer.states, given):
        np.testing.assert_array_equal(state, value)
    stateless = recurrent_layer(kind, 4)
    stateless(x)
    stateless.set_weights(layer.get_weights())
    np.testing.assert_allclose(layer(x), stateless(x, initial_state=given), rtol=1e-6)


def test_states_are_copies_the_caller_cannot_corrupt():
    layer = rnnkit.GRU(3, stateful=True)
    x = np.ones((2, 3, 2), "float32")
    layer(x)
    layer.states[0][...] = 99.0
    assert np.all(layer.states[0] != 99.0)


def test_stateful_stacked_cells_carry_nested_states():
    rng = np.random.default_rng(2)
    x = rng.standard_normal((2, 6, 3)).astype("float32")
    stateful = rnnkit.RNN([rnnkit.LSTMCell(4), rnnkit.GRUCell(3)], stateful=True,
                          return_sequences=True)
    whole = rnnkit.RNN([rnnkit.LSTMCell(4), rnnkit.GRUCell(3)], return_sequences=True)
    stateful(x[:, :1])
    whole(x)
    stateful.set_weights(whole.get_weights())
    stateful.reset_states()
    y = np.concatenate([stateful(x[:, :2]), stateful(x[:, 2:])], axis=1)
    np.testing.assert_allclose(y, whole(x), rtol=1e-5, atol=1e-6)
    assert [len(group) for group in stateful.states] == [2, 1]


MERGES = {
    "concat": lambda a, b: np.concatenate([a, b], axis=-1),
    "sum": lambda a, b: a + b,
    "mul": lambda a, b: a * b,
    "ave": lambda a, b: (a + b) / 2,
    None: lambda a, b: (a, b),
}


@pytest.mark.parametrize("merge_mode", list(MERGES))
@pytest.mark.parametrize("time_major", [False, True])
@pytest.mark.parametrize("return_sequences", [False, True])
def test_bidirectional_is_forward_plus_reversed_backward(merge_mode, time_major,
                                                         return_sequences):
    """Including time_major, where tf.keras 2 once reversed the batch axis (tf#39635)."""
    rng = np.random.default_rng(3)
    x = rng.standard_normal((6, 3, 2) if time_major else (3, 6, 2)).astype("float32")
    layer = rnnkit.Bidirectional(
        rnnkit.LSTM(4, return_sequences=return_sequences, time_major=time_major),
        merge_mode=merge_mode)
    y = layer(x)
    forward = rnnkit.LSTM(4, return_sequences=return_sequences, time_major=time_major)
    backward = rnnkit.LSTM(4, return_sequences=return_sequences, time_major=time_major,
                           go_backwards=True)
    forward(x)
    backward(x)
    weights = layer.get_weights()
    forward.set_weights(weights[:3])
    backward.set_weights(weights[3:])
    y_f, y_b = forward(x), backward(x)
    if return_sequences:
        y_b = np.flip(y_b, axis=0 if time_major else 1)
    expected = MERGES[merge_mode](y_f, y_b)
    for actual, wanted in zip(*(v if isinstance(v, tuple) else (v,) for v in (y, expected))):
        np.testing.assert_allclose(actual, wanted, rtol=1e-6, atol=1e-6)


def test_bidirectional_stateful_resets_both_directions():
    rng = np.random.default_rng(4)
    x = rng.standard_normal((2, 5, 3)).astype("float32")
    layer = rnnkit.Bidirectional(rnnkit.GRU(3, stateful=True, return_state=True))
    first, *states = layer(x)
    assert len(states) == 2 and len(layer.states) == 2
    second = layer(x)[0]
    assert not np.allclose(first, second)
    layer.reset_states()
    assert all(np.all(s == 0) for s in layer.states)
    np.testing.assert_allclose(layer(x)[0], first, rtol=1e-6)

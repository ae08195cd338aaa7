"""precision='bfloat16': every weight rounded to bfloat16, recurrent weights streamed at half
the bytes, float32 arithmetic. The C++ paths equal the NumPy loop on the rounded weights, and
the distance from float32 stays at bfloat16's rounding (8 significant bits)."""

import numpy as np
import pytest

import rnnkit
from conftest import builtin_layers, recurrent_layer
from rnnkit import testing
from rnnkit.layers.recurrent.builtin import round_to_bfloat16

LAYERS = builtin_layers(variants=True)


def test_round_to_bfloat16_rounds_to_nearest_even_and_keeps_specials():
    values = np.array([1.0, 1.00390625, 1.01171875, -2.5, np.inf, -np.inf, 3.4e38, 1e-40],
                      dtype=np.float32)
    rounded = round_to_bfloat16(values)
    # 1 + 2^-8 is a tie between 1 and 1 + 2^-7: to even (1); 1 + 3*2^-8 ties up to 1 + 2^-6.
    np.testing.assert_array_equal(rounded[:6], [1.0, 1.0, 1.015625, -2.5, np.inf, -np.inf])
    assert np.all(rounded.view(np.uint32) & 0xFFFF == 0)
    assert np.isnan(round_to_bfloat16(np.array([np.nan], np.float32)))[0]


@pytest.mark.parametrize("kind", LAYERS)
@pytest.mark.parametrize("batch", [1, 5])
@pytest.mark.parametrize("unroll", [False, True])
def test_bfloat16_compiled_matches_numpy_loop_on_rounded_weights(kind, batch, unroll):
    x = np.random.default_rng(0).standard_normal((batch, 30, 12)).astype("float32")
    mask = np.random.default_rng(1).random((batch, 30)) > 0.2
    layer = recurrent_layer(kind, 40, return_sequences=True, return_state=True, unroll=unroll,
                            precision="bfloat16")
    compiled = layer(x, mask=mask)
    with testing.python_loop():
        reference = layer(x, mask=mask)
    for a, b in zip(compiled, reference):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("kind", LAYERS)
def test_bfloat16_stays_within_its_rounding_of_float32(kind):
    """Each weight moves by at most 2^-9 of itself; over 50 steps of a contracting recurrence
    the outputs (bounded by 1) move by a few times that, never more than 2e-2."""
    x = np.random.default_rng(2).standard_normal((4, 50, 16)).astype("float32")
    half = recurrent_layer(kind, 64, return_sequences=True, precision="bfloat16")
    full = recurrent_layer(kind, 64, return_sequences=True)
    half(x)
    full(x)
    full.set_weights(half.get_weights())
    difference = np.abs(half(x) - full(x)).max()
    assert 0 < difference < 2e-2


def test_bfloat16_weights_read_back_unrounded_and_are_rounded_only_inside():
    layer = rnnkit.LSTM(8, precision="bfloat16")
    x = np.ones((1, 3, 4), "float32")
    layer(x)
    weights = [w + 1e-3 for w in layer.get_weights()]
    layer.set_weights(weights)
    for got, given in zip(layer.get_weights(), weights):
        np.testing.assert_array_equal(got, given.astype("float32"))


def test_bfloat16_streaming_plan_matches_one_call():
    x = np.random.default_rng(3).standard_normal((1, 20, 8)).astype("float32")
    stream = rnnkit.GRU(16, stateful=True, return_sequences=True, precision="bfloat16")
    whole = rnnkit.GRU(16, return_sequences=True, precision="bfloat16")
    stream(x[:, :1])
    whole(x)
    stream.set_weights(whole.get_weights())
    stream.reset_states()
    steps = [stream(np.ascontiguousarray(x[:, t:t + 1])) for t in range(20)]
    np.testing.assert_allclose(np.concatenate(steps, axis=1), whole(x), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(
    "kwargs,match",
    [({"precision": "float16"}, "precision"), ({"precision": "bfloat16", "dtype": "float64"},
                                               "float32")],
)
def test_bfloat16_bad_arguments_raise(kwargs, match):
    with pytest.raises(ValueError, match=match):
        rnnkit.LSTM(4, **kwargs)

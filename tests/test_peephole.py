"""PeepholeLSTMCell / PeepholeLSTM: the LSTM with peephole connections, a built-in C++ cell.

Checked against tf.keras 2's formula (PeepholeLSTMCell._compute_carry_and_output_fused)
written out here in float64, on every path: the C++ kernels (first and repeated calls, masks,
initial states, go_backwards, time_major, unroll, stacks, Bidirectional, stateful streaming,
bfloat16 weights) and the NumPy loop.
"""

import numpy as np
import pytest

import rnnkit
from rnnkit import activations, testing
from rnnkit.layers.recurrent.builtin import round_to_bfloat16

UNITS, FEATURES, BATCH, STEPS = 5, 3, 4, 7
TOLERANCE = {"float32": 2e-5, "float64": 1e-11}


def tf_keras_2_peephole(x, weights, h, c, mask=None, activation="tanh",
                        recurrent_activation="sigmoid", go_backwards=False):
    """The reference: tf.keras 2's PeepholeLSTMCell step over a batch-major sequence, float64,
    masks as Keras applies them (states carried; the output repeats the last one, zeros
    before any)."""
    act, rec = activations.get(activation), activations.get(recurrent_activation)
    kernel, recurrent, bias, p_i, p_f, p_o = (np.asarray(w, np.float64) for w in weights)
    x = np.asarray(x, np.float64)
    h, c = np.asarray(h, np.float64), np.asarray(c, np.float64)
    outputs, last = [], np.zeros_like(h)
    order = range(x.shape[1] - 1, -1, -1) if go_backwards else range(x.shape[1])
    for t in order:
        z = x[:, t] @ kernel + bias + h @ recurrent
        z_i, z_f, z_c, z_o = np.split(z, 4, axis=-1)
        i = rec(z_i + p_i * c)
        f = rec(z_f + p_f * c)
        c_new = f * c + i * act(z_c)
        o = rec(z_o + p_o * c_new)
        h_new = o * act(c_new)
        keep = np.ones((x.shape[0], 1), bool) if mask is None else mask[:, t][:, None]
        h, c = np.where(keep, h_new, h), np.where(keep, c_new, c)
        last = np.where(keep, h_new, last)
        outputs.append(last)
    return np.stack(outputs, axis=1), h, c


def random_weights(dtype, seed=0, use_bias=True):
    rng = np.random.default_rng(seed)
    shapes = [(FEATURES, 4 * UNITS), (UNITS, 4 * UNITS)] + ([(4 * UNITS,)] if use_bias else [])
    shapes += [(UNITS,)] * 3
    return [rng.uniform(-0.8, 0.8, s).astype(dtype) for s in shapes]


def make_layer(dtype="float32", seed=0, use_bias=True, **kwargs):
    layer = rnnkit.PeepholeLSTM(UNITS, dtype=dtype, use_bias=use_bias, **kwargs)
    layer.build((None, None, FEATURES))
    layer.set_weights(random_weights(dtype, seed, use_bias))
    return layer


def reference_weights(layer):
    weights = layer.get_weights()
    if not layer.use_bias:
        weights.insert(2, np.zeros(4 * UNITS))
    if layer.precision == "bfloat16":
        weights = [round_to_bfloat16(w) for w in weights]
    return weights


def inputs(dtype, seed=1):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((BATCH, STEPS, FEATURES)).astype(dtype)
    h0 = rng.standard_normal((BATCH, UNITS)).astype(dtype) * 0.5
    c0 = rng.standard_normal((BATCH, UNITS)).astype(dtype) * 0.5
    mask = rng.random((BATCH, STEPS)) > 0.3
    mask[0, 0] = False  # a masked first step outputs zeros
    return x, h0, c0, mask


def close(got, want, dtype):
    np.testing.assert_allclose(got, want, rtol=TOLERANCE[dtype], atol=TOLERANCE[dtype])


@pytest.mark.parametrize("python_loop", [False, True], ids=["cpp", "numpy-loop"])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("go_backwards", [False, True])
@pytest.mark.parametrize("masked", [False, True])
@pytest.mark.parametrize("use_bias", [True, False])
@pytest.mark.parametrize("unroll", [False, True])
def test_matches_tf_keras_2_formula(python_loop, dtype, go_backwards, masked, use_bias, unroll):
    layer = make_layer(dtype, use_bias=use_bias, return_sequences=True, return_state=True,
                       go_backwards=go_backwards, unroll=unroll)
    x, h0, c0, mask = inputs(dtype)
    mask = mask if masked else None
    want_y, want_h, want_c = tf_keras_2_peephole(
        x, reference_weights(layer), h0, c0, mask, go_backwards=go_backwards
    )
    if python_loop:
        with testing.python_loop():
            y, h, c = layer(x, initial_state=[h0, c0], mask=mask)
    else:
        y, h, c = layer(x, initial_state=[h0, c0], mask=mask)
    close(y, want_y, dtype)
    close(h, want_h, dtype)
    close(c, want_c, dtype)


@pytest.mark.parametrize("activation,recurrent_activation",
                         [("relu", "hard_sigmoid"), ("softsign", "sigmoid"), ("tanh", "linear")])
def test_other_activations(activation, recurrent_activation):
    layer = make_layer("float64", activation=activation,
                       recurrent_activation=recurrent_activation, return_sequences=True)
    x, h0, c0, _ = inputs("float64")
    want, _, _ = tf_keras_2_peephole(x, reference_weights(layer), np.zeros_like(h0),
                                     np.zeros_like(c0), activation=activation,
                                     recurrent_activation=recurrent_activation)
    close(layer(x), want, "float64")


def test_repeated_calls_take_the_fast_path_with_the_same_numbers():
    layer = make_layer("float32", return_sequences=True)
    x, h0, c0, _ = inputs("float32")
    want, _, _ = tf_keras_2_peephole(x, reference_weights(layer), 0 * h0, 0 * c0)
    for _ in range(3):
        close(layer(x), want, "float32")
    assert layer._plan is not None


def test_time_major():
    layer = make_layer("float64", time_major=True, return_sequences=True)
    x, h0, c0, _ = inputs("float64")
    want, _, _ = tf_keras_2_peephole(x, reference_weights(layer), 0 * h0, 0 * c0)
    close(layer(np.swapaxes(x, 0, 1)), np.swapaxes(want, 0, 1), "float64")


def test_zero_peepholes_give_the_plain_lstm():
    peephole = make_layer("float64", return_sequences=True)
    weights = peephole.get_weights()
    peephole.set_weights(weights[:3] + [np.zeros(UNITS)] * 3)
    lstm = rnnkit.LSTM(UNITS, dtype="float64", return_sequences=True)
    lstm.build((None, None, FEATURES))
    lstm.set_weights(weights[:3])
    x = inputs("float64")[0]
    np.testing.assert_array_equal(peephole(x), lstm(x))


@pytest.mark.parametrize("python_loop", [False, True], ids=["cpp", "numpy-loop"])
def test_in_a_stack_and_bidirectional(python_loop):
    x, h0, c0, mask = inputs("float64")
    first = rnnkit.PeepholeLSTMCell(UNITS, dtype="float64")
    second = rnnkit.GRUCell(UNITS, dtype="float64")
    stack = rnnkit.RNN([first, second], return_sequences=True)
    bi = rnnkit.Bidirectional(make_layer("float64", return_sequences=True), merge_mode="concat")
    bi.build(x.shape)
    bi.backward_layer.set_weights(random_weights("float64", seed=5))

    def run():
        return stack(x, mask=mask), bi(x, mask=mask)

    got_stack, got_bi = run()
    with testing.python_loop():
        loop_stack, loop_bi = run()
    close(got_stack, loop_stack, "float64")
    close(got_bi, loop_bi, "float64")
    # The stack's first cell alone is the reference formula.
    first_layer = rnnkit.RNN(first, return_sequences=True)
    want, _, _ = tf_keras_2_peephole(x, first.get_weights(), 0 * h0, 0 * c0, mask)
    close(first_layer(x, mask=mask), want, "float64")
    forward, _, _ = tf_keras_2_peephole(x, bi.forward_layer.get_weights(), 0 * h0, 0 * c0, mask)
    close(got_bi[..., :UNITS], np.where(mask[..., None], forward, 0), "float64")


def test_stateful_streaming_equals_one_call():
    whole = make_layer("float32", return_sequences=True)
    stream = make_layer("float32", stateful=True)
    x = inputs("float32")[0]
    want = whole(x)
    got = np.stack([stream(x[:, t : t + 1]) for t in range(STEPS)], axis=1)
    close(got, want, "float32")


def test_bfloat16_weights_are_rounded_like_every_other_weight():
    layer = make_layer("float32", precision="bfloat16", return_sequences=True)
    x, h0, c0, _ = inputs("float32")
    want, _, _ = tf_keras_2_peephole(x, reference_weights(layer), 0 * h0, 0 * c0)
    close(layer(x), want, "float32")
    with testing.python_loop():
        close(layer(x), want, "float32")


def test_weights_are_named_as_in_tf_keras_2():
    cell = rnnkit.PeepholeLSTMCell(UNITS)
    cell.build((None, FEATURES))
    assert [w.shape for w in cell.weights] == [
        (FEATURES, 4 * UNITS), (UNITS, 4 * UNITS), (4 * UNITS,), (UNITS,), (UNITS,), (UNITS,)
    ]
    assert cell._weight_labels()[3:] == [
        "input_gate_peephole_weights",
        "forget_gate_peephole_weights",
        "output_gate_peephole_weights",
    ]
    with pytest.raises(ValueError, match="input_gate_peephole_weights"):
        cell.set_weights(cell.get_weights()[:3] + [np.zeros(UNITS + 1)] + cell.get_weights()[4:])

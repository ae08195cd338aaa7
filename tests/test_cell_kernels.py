"""The C++ cell kernels driven directly (`_core.Kernel32` / `Kernel64`), without a Python cell
class: the peephole LSTM against a float64 NumPy statement of its equations (tf.keras 2's
PeepholeLSTMCell), and the cell table (`_core.CELLS`, `_core.weight_shapes`) that the bindings
check every weight list against."""

import numpy as np
import pytest

import rnnkit
from rnnkit import _core
from rnnkit.layers.recurrent.builtin import round_to_bfloat16

PEEPHOLES = [
    "input_gate_peephole_weights",
    "forget_gate_peephole_weights",
    "output_gate_peephole_weights",
]
# name: (gates, states, bias has two rows with reset_after, extra weights)
TABLE = {
    "simple_rnn": (1, 1, False, []),
    "lstm": (4, 2, False, []),
    "gru": (3, 1, True, []),
    "peephole_lstm": (4, 2, False, PEEPHOLES),
}
# Relative, and absolute for values near zero (the data are of order 1; float32 sums of a few
# hundred terms are off by a few 1e-6 from float64 ones, in NumPy too).
TOLERANCE = {"float32": 1e-5, "float64": 1e-10}

ACTIVATIONS = {
    "tanh": np.tanh,
    "sigmoid": lambda x: 1.0 / (1.0 + np.exp(-x)),
    "relu": lambda x: np.maximum(x, 0.0),
    "hard_sigmoid": lambda x: np.clip(x / 6.0 + 0.5, 0.0, 1.0),  # Keras 3
    "softsign": lambda x: x / (1.0 + np.abs(x)),
}
# (activation, recurrent_activation): the defaults (a fused path for float32) and others.
PAIRS = [("tanh", "sigmoid"), ("relu", "hard_sigmoid")]
# For long sequences: with relu, 80 steps grow without bound, and float32 rounding with them.
BOUNDED_PAIRS = [("tanh", "sigmoid"), ("softsign", "hard_sigmoid")]


@pytest.fixture
def threads():
    previous = rnnkit.get_num_threads()
    yield rnnkit.set_num_threads
    rnnkit.set_num_threads(previous)


def _weights(rng, cell, units, input_dim, use_bias, dtype, peephole_scale=0.5):
    out = []
    for name, shape in _core.weight_shapes(cell, units, input_dim, use_bias, True):
        fan_in = shape[0] if len(shape) == 2 else 1
        scale = peephole_scale if name in PEEPHOLES else 1.0 / np.sqrt(fan_in)
        out.append((scale * rng.standard_normal(shape)).astype(dtype))
    return out


def _kernel(cell, units, input_dim, pair, use_bias, weights, bf16=False):
    kernel_class = _core.Kernel64 if weights[0].dtype == np.float64 else _core.Kernel32
    return kernel_class(cell, units, input_dim, pair[0], pair[1], use_bias, True, weights,
                        bf16_weights=bf16)


def _reference(x, weights, use_bias, pair, states, mask, go_backwards, zero_output_for_mask):
    """Peephole LSTM in float64 with the driver's semantics (batch-major, outputs in processed
    order): a masked step carries the states and outputs the previous output (zeros with
    zero_output_for_mask, and before any unmasked step)."""
    act, rec = ACTIVATIONS[pair[0]], ACTIVATIONS[pair[1]]
    w = [np.asarray(a, np.float64) for a in weights]
    kernel, recurrent = w[0], w[1]
    bias = w[2] if use_bias else 0.0
    p_i, p_f, p_o = w[-3:]
    h, c = (np.asarray(s, np.float64) for s in states)
    batch, steps, _ = x.shape
    units = h.shape[1]
    output = np.zeros((batch, units))
    outputs = []
    for i in range(steps):
        t = steps - 1 - i if go_backwards else i
        z = x[:, t].astype(np.float64) @ kernel + bias + h @ recurrent
        z_i, z_f, z_c, z_o = np.split(z, 4, axis=1)
        gate_i = rec(z_i + p_i * c)
        gate_f = rec(z_f + p_f * c)
        c_new = gate_f * c + gate_i * act(z_c)
        h_new = rec(z_o + p_o * c_new) * act(c_new)
        used = np.ones(batch, bool) if mask is None else mask[:, t]
        h = np.where(used[:, None], h_new, h)
        c = np.where(used[:, None], c_new, c)
        if mask is None:
            output = h
        else:
            kept = np.zeros_like(output) if zero_output_for_mask else output
            output = np.where(used[:, None], h_new, kept)
        outputs.append(output)
    return np.stack(outputs, axis=1), output, h, c


def _run(kernel, x, states, mask=None, time_major=False, go_backwards=False,
         zero_output_for_mask=False, outputs_in_time_order=False, chunk_steps=-1):
    """Runs the kernel; returns (outputs in processed order, batch-major; last output; h; c)."""
    batch, steps, _ = x.shape
    units = states[0].shape[1]
    states = [np.array(s) for s in states]
    last = np.empty((batch, units), x.dtype)
    if time_major:
        xs = np.ascontiguousarray(x.transpose(1, 0, 2))
        out = np.empty((steps, batch, units), x.dtype)
        m = None if mask is None else np.ascontiguousarray(mask.T)
    else:
        xs, m = x, mask
        out = np.empty((batch, steps, units), x.dtype)
    kernel.run(xs, time_major, states, m, out, last, go_backwards, zero_output_for_mask,
               outputs_in_time_order, chunk_steps)
    if time_major:
        out = out.transpose(1, 0, 2)
    if outputs_in_time_order and go_backwards:
        out = out[:, ::-1]
    return out, last, states[0], states[1]


def _assert_close(got, expected, dtype):
    tol = TOLERANCE[dtype]
    for g, e in zip(got, expected):
        np.testing.assert_allclose(g, e, rtol=tol, atol=tol)


def _mask(rng, batch, steps, go_backwards):
    mask = rng.random((batch, steps)) < 0.7
    mask[0, steps - 1 if go_backwards else 0] = False  # the first step processed is masked
    if batch > 1:
        mask[1] = False  # a row never used: states stay the initial ones
    return mask


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("units", [3, 16, 64])
@pytest.mark.parametrize("batch", [1, 3, 40])
@pytest.mark.parametrize("go_backwards", [False, True])
def test_peephole_lstm_matches_its_equations(threads, dtype, units, batch, go_backwards):
    threads(2)
    rng = np.random.default_rng([units, batch, int(go_backwards)])
    steps, input_dim = 7, 5
    x = rng.standard_normal((batch, steps, input_dim)).astype(dtype)
    states = [rng.standard_normal((batch, units)).astype(dtype) for _ in range(2)]
    mask = _mask(rng, batch, steps, go_backwards)
    for use_bias in (True, False):
        weights = _weights(rng, "peephole_lstm", units, input_dim, use_bias, dtype)
        for pair in PAIRS:
            kernel = _kernel("peephole_lstm", units, input_dim, pair, use_bias, weights)
            for m, zero_output in ((None, False), (mask, False), (mask, True)):
                expected = _reference(x, weights, use_bias, pair, states, m, go_backwards,
                                      zero_output)
                for time_major in (False, True):
                    for chunk_steps in (-1, 0, 2):
                        got = _run(kernel, x, states, m, time_major, go_backwards, zero_output,
                                   outputs_in_time_order=chunk_steps == 2,
                                   chunk_steps=chunk_steps)
                        _assert_close(got, expected, dtype)


@pytest.mark.parametrize("dtype, units, input_dim", [
    ("float32", 256, 64), ("float64", 256, 64), ("float64", 64, 640),
])
@pytest.mark.parametrize("batch", [1, 3])
@pytest.mark.parametrize("go_backwards", [False, True])
@pytest.mark.parametrize("time_major", [False, True])
@pytest.mark.parametrize("pair", BOUNDED_PAIRS)
def test_peephole_lstm_split_steps(threads, dtype, units, input_dim, batch, go_backwards,
                                   time_major, pair):
    """Two threads sharing every step's units give the numbers of one, and of the equations."""
    rng = np.random.default_rng([units, batch])
    # Enough work to be split, and no more: over 80 steps the cell state integrates to |c| ~ 60
    # and float32 (NumPy's as well) strays past 1e-5 from float64.
    steps = 24
    x = rng.standard_normal((batch, steps, input_dim)).astype(dtype)
    states = [rng.standard_normal((batch, units)).astype(dtype) for _ in range(2)]
    weights = _weights(rng, "peephole_lstm", units, input_dim, True, dtype)
    kernel = _kernel("peephole_lstm", units, input_dim, pair, True, weights)
    expected = _reference(x, weights, True, pair, states, None, go_backwards, False)
    for chunk_steps in (0, 2):
        threads(1)
        one = _run(kernel, x, states, None, time_major, go_backwards, chunk_steps=chunk_steps)
        threads(2)
        assert kernel.split_parts(batch, steps, chunk_steps, False) == 2
        two = _run(kernel, x, states, None, time_major, go_backwards, chunk_steps=chunk_steps)
        for a, b in zip(one, two):
            np.testing.assert_array_equal(b, a)
        _assert_close(two, expected, dtype)


@pytest.mark.parametrize("units", [16, 64, 256])
@pytest.mark.parametrize("batch", [1, 3, 40])
@pytest.mark.parametrize("pair", PAIRS)
@pytest.mark.parametrize("masked", [False, True])
def test_peephole_lstm_with_bfloat16_weights(threads, units, batch, pair, masked):
    """Every weight, the peepholes included, is rounded to bfloat16; arithmetic stays float32."""
    threads(2)
    rng = np.random.default_rng([units, batch])
    steps, input_dim = 6, 64
    x = rng.standard_normal((batch, steps, input_dim)).astype("float32")
    states = [rng.standard_normal((batch, units)).astype("float32") for _ in range(2)]
    mask = _mask(rng, batch, steps, False) if masked else None
    weights = _weights(rng, "peephole_lstm", units, input_dim, True, "float32")
    kernel = _kernel("peephole_lstm", units, input_dim, pair, True, weights, bf16=True)
    rounded = [round_to_bfloat16(w) for w in weights]
    assert all(np.any(r != w) for r, w in zip(rounded, weights))  # rounding shows
    expected = _reference(x, rounded, True, pair, states, mask, False, False)
    _assert_close(_run(kernel, x, states, mask), expected, "float32")


@pytest.mark.parametrize("dtype, bf16", [("float32", False), ("float32", True),
                                         ("float64", False)])
@pytest.mark.parametrize("pair", PAIRS)
@pytest.mark.parametrize("use_bias", [True, False])
@pytest.mark.parametrize("units, batch", [(16, 3), (256, 1), (64, 40)])
def test_zero_peepholes_give_exactly_the_lstm(threads, dtype, bf16, pair, use_bias, units,
                                             batch):
    rng = np.random.default_rng(units)
    steps, input_dim = 20, 32
    x = rng.standard_normal((batch, steps, input_dim)).astype(dtype)
    states = [rng.standard_normal((batch, units)).astype(dtype) for _ in range(2)]
    mask = _mask(rng, batch, steps, False)
    lstm_weights = _weights(rng, "lstm", units, input_dim, use_bias, dtype)
    zeros = [np.zeros(units, dtype) for _ in PEEPHOLES]
    lstm = _kernel("lstm", units, input_dim, pair, use_bias, lstm_weights, bf16)
    peephole = _kernel("peephole_lstm", units, input_dim, pair, use_bias, lstm_weights + zeros,
                       bf16)
    for n in (1, 2):
        threads(n)
        for m in (None, mask):
            for a, b in zip(_run(lstm, x, states, m, chunk_steps=0),
                            _run(peephole, x, states, m, chunk_steps=0)):
                np.testing.assert_array_equal(b, a)


def test_cells_says_what_the_table_says():
    expected = tuple(
        {"name": name, "gates": gates, "states": states}
        for name, (gates, states, _, _) in TABLE.items()
    )
    cells = _core.CELLS
    assert cells == expected


@pytest.mark.parametrize("cell", TABLE)
@pytest.mark.parametrize("use_bias", [True, False])
@pytest.mark.parametrize("reset_after", [True, False])
def test_weight_shapes_say_what_the_table_says(cell, use_bias, reset_after):
    gates, _, two_rows, extra = TABLE[cell]
    units, input_dim, width = 7, 5, gates * 7
    expected = [("kernel", (input_dim, width)), ("recurrent_kernel", (units, width))]
    if use_bias:
        expected.append(("bias", (2, width) if two_rows and reset_after else (width,)))
    expected += [(name, (units,)) for name in extra]
    assert _core.weight_shapes(cell, units, input_dim, use_bias, reset_after) == expected


@pytest.mark.parametrize("cell, layer", [
    ("simple_rnn", rnnkit.SimpleRNNCell), ("lstm", rnnkit.LSTMCell), ("gru", rnnkit.GRUCell),
])
@pytest.mark.parametrize("use_bias", [True, False])
def test_python_cells_hold_the_weights_the_table_lists(cell, layer, use_bias):
    built = layer(6, use_bias=use_bias)
    built.build((None, 4))
    reset_after = getattr(built, "reset_after", True)
    shapes = _core.weight_shapes(cell, 6, 4, use_bias, reset_after)
    assert [w.shape for w in built.weights] == [shape for _, shape in shapes]
    assert built.compiled_kernel() is not None


def test_unknown_cell_names_the_known_ones():
    with pytest.raises(ValueError, match="unknown cell 'indrnn'; known: simple_rnn, lstm, gru, "
                                         "peephole_lstm"):
        _core.weight_shapes("indrnn", 4, 3, True, True)


@pytest.mark.parametrize("kernel_class, dtype", [(_core.Kernel32, "float32"),
                                                 (_core.Kernel64, "float64")])
def test_wrong_weights_are_errors_naming_the_weight(kernel_class, dtype):
    rng = np.random.default_rng(0)
    weights = _weights(rng, "peephole_lstm", 8, 5, True, dtype)

    def make(ws, use_bias=True):
        return kernel_class("peephole_lstm", 8, 5, "tanh", "sigmoid", use_bias, True, ws)

    make(weights)
    with pytest.raises(ValueError, match=r"weights: expected 6 arrays \(kernel, recurrent_kernel, "
                                         r"bias, input_gate_peephole_weights, "
                                         r"forget_gate_peephole_weights, "
                                         r"output_gate_peephole_weights\), received 5"):
        make(weights[:5])
    with pytest.raises(ValueError, match=r"expected 5 arrays .*, received 6"):
        make(weights, use_bias=False)  # the bias is listed only with use_bias
    wrong = [*weights[:3], np.zeros(9, dtype), *weights[4:]]
    with pytest.raises(ValueError, match=r"^weights\[3\] \(input_gate_peephole_weights\): "
                                         r"expected shape \(8,\), received \(9,\)$"):
        make(wrong)
    wrong = [weights[0].T.copy(), *weights[1:]]
    with pytest.raises(ValueError, match=r"^weights\[0\] \(kernel\): expected shape \(5, 32\), "
                                         r"received \(32, 5\)$"):
        make(wrong)
    wrong = [*weights[:5], np.zeros((1, 8), dtype)]
    with pytest.raises(ValueError, match=r"weights\[5\] \(output_gate_peephole_weights\): "
                                         r"expected shape \(8,\), received \(1, 8\)"):
        make(wrong)
    wrong = [*weights[:4], np.zeros(16, dtype)[::2], weights[5]]
    with pytest.raises(ValueError, match=r"weights\[4\] \(forget_gate_peephole_weights\) must be "
                                         "C-contiguous"):
        make(wrong)
    other = "float64" if dtype == "float32" else "float32"
    wrong = [*weights[:2], weights[2].astype(other), *weights[3:]]
    with pytest.raises(TypeError, match=rf"weights\[2\] \(bias\) must be a {dtype} array, "
                                        rf"received a {other} array"):
        make(wrong)
    with pytest.raises(TypeError, match=r"weights\[2\] \(bias\) must be a .* received NoneType"):
        make([*weights[:2], None, *weights[3:]])

"""NaN, inf and denormals (docs/reliability.md, "Numerics").

- NaN and inf propagate as arithmetic says: the C++ kernels give exactly the NaN/inf pattern of
  the NumPy loop (the readable statement of the semantics), row by row, and a NaN or inf in one
  batch row never reaches another row, whatever the thread split.
- Denormals: while a built-in kernel runs, denormal inputs read as zero and denormal results are
  flushed to zero (FTZ/DAZ), so a sequence that decays into the denormal range does not slow the
  kernels down by orders of magnitude; the calling thread's floating-point mode is restored on
  return.

The denormal speed check compares the CPU time of a denormal-input run against the same layer
on normal inputs (best of several runs each) with a generous ratio, not a wall-clock bound: on
x86 without FTZ/DAZ the ratio was ~40 for a float32 SimpleRNN here, with them ~1.
"""

import time

import numpy as np
import pytest

import rnnkit
import rnnkit.testing
from conftest import builtin_layers, flatten, recurrent_layer
from rnnkit import activations

KINDS = [*builtin_layers(variants=True), "stacked"]
DTYPES = ("float32", "float64")
SPECIAL = {"nan": np.nan, "inf": np.inf, "-inf": -np.inf, "huge": 1e30}
# Every activation the C++ kernels compute, with Keras 3's formulas.
ACTIVATIONS = (
    "tanh", "sigmoid", "hard_sigmoid", "relu", "linear", "elu", "selu", "softsign",
    "softplus", "swish", "gelu", "exponential", "hard_silu",
)


def _layer(kind, dtype, **kw):
    kw = {"return_sequences": True, "return_state": True, **kw}
    if kind == "stacked":
        cells = [rnnkit.LSTMCell(5, seed=3, dtype=dtype), rnnkit.GRUCell(4, seed=4, dtype=dtype)]
        layer = rnnkit.RNN(cells, **kw)
    else:
        layer = recurrent_layer(kind, 5, dtype=dtype, **kw)
    layer.build((4, 6, 3))
    rng = np.random.default_rng(7)
    layer.set_weights([rng.uniform(-0.6, 0.6, w.shape) for w in layer.get_weights()])
    return layer


def _assert_same_specials(got, want, dtype):
    """Same NaN positions, same infinities (with sign), finite values close."""
    for g, w in zip(flatten(got), flatten(want)):
        np.testing.assert_array_equal(np.isnan(g), np.isnan(w))
        np.testing.assert_array_equal(np.isposinf(g), np.isposinf(w))
        np.testing.assert_array_equal(np.isneginf(g), np.isneginf(w))
        tol = 1e-5 if dtype == "float32" else 1e-10
        finite = np.isfinite(w)
        np.testing.assert_allclose(g[finite], w[finite], rtol=tol, atol=tol)


def _call_both(layer, x, **kw):
    with np.errstate(all="ignore"):
        got = layer(x, **kw)
        with rnnkit.testing.python_loop():
            want = layer(x, **kw)
    return got, want


@pytest.mark.parametrize("value", SPECIAL)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kind", KINDS)
def test_special_values_in_inputs_propagate_as_in_numpy_loop(kind, dtype, value):
    layer = _layer(kind, dtype)
    x = np.random.default_rng(1).uniform(-1, 1, (4, 6, 3)).astype(dtype)
    x[1, 2, 0] = SPECIAL[value]  # row 1 from step 2 on
    x[3, 5, 2] = SPECIAL[value]  # row 3, last step only
    got, want = _call_both(layer, x)
    _assert_same_specials(got, want, dtype)
    sequence = flatten(got)[0]
    # Rows 0 and 2 never saw the value: finite, and equal to a run of those rows alone (up to
    # the summation order, which depends on the number of rows in a product).
    clean = layer(np.ascontiguousarray(x[[0, 2]]))
    tol = 1e-6 if dtype == "float32" else 1e-14
    for row_all, row_alone in zip(flatten(got), flatten(clean)):
        np.testing.assert_allclose(row_all[[0, 2]], row_alone, rtol=tol, atol=tol)
    assert np.isfinite(sequence[[0, 2]]).all()
    if value == "nan":  # a NaN input reaches the state: every later step of its row is NaN
        assert np.isnan(sequence[1, 2:]).all()
        assert not np.isnan(sequence[1, :2]).any()
        assert np.isnan(sequence[3, 5]).all() and not np.isnan(sequence[3, :5]).any()


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kind", KINDS)
def test_special_values_in_initial_state_and_weights_propagate(kind, dtype):
    layer = _layer(kind, dtype)
    x = np.random.default_rng(2).uniform(-1, 1, (4, 6, 3)).astype(dtype)
    states = [
        np.random.default_rng(3).uniform(-1, 1, (4, s)).astype(dtype)
        for group in layer._groups()
        for s in group
    ]
    states[0][0, 0] = np.nan
    states[-1][2, 1] = np.inf
    got, want = _call_both(layer, x, initial_state=states)
    _assert_same_specials(got, want, dtype)
    assert np.isnan(flatten(got)[0][0]).any()  # the NaN state reached row 0's outputs

    weights = layer.get_weights()
    weights[1][0, 0] = np.nan  # one recurrent weight of the first cell
    layer.set_weights(weights)
    got, want = _call_both(layer, x)
    _assert_same_specials(got, want, dtype)


@pytest.mark.parametrize("zero_output_for_mask", [False, True])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kind", KINDS)
def test_masked_steps_never_read_their_nan_inputs(kind, dtype, zero_output_for_mask):
    layer = _layer(kind, dtype, zero_output_for_mask=zero_output_for_mask)
    x = np.random.default_rng(4).uniform(-1, 1, (4, 6, 3)).astype(dtype)
    mask = np.ones((4, 6), bool)
    mask[:, [0, 3]] = False
    x[:, [0, 3]] = np.nan  # only at masked steps
    x[2, 5] = np.inf
    mask[2, 5] = False
    got, want = _call_both(layer, x, mask=mask)
    _assert_same_specials(got, want, dtype)
    for array in flatten(got):
        assert np.isfinite(array).all()


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_every_activation_maps_special_values_as_numpy(activation, dtype):
    """One value per batch row through SimpleRNN(1) with kernel 1, no recurrence, no bias: the
    output is activation(value), compared with rnnkit.activations (Keras's formulas)."""
    values = np.array(
        [np.nan, np.inf, -np.inf, 0.0, -0.0, 1e30, -1e30, 88.5, 89.0, -100.0, 3.0, -3.0, 710.0],
        dtype=dtype,
    )
    layer = rnnkit.SimpleRNN(1, activation=activation, use_bias=False, dtype=dtype)
    layer.build((values.size, 1, 1))
    layer.set_weights([np.ones((1, 1)), np.zeros((1, 1))])
    with np.errstate(all="ignore"):
        got = layer(values.reshape(-1, 1, 1))[:, 0]
        want = np.asarray(activations.get(activation)(values[:, None]), dtype=dtype)[:, 0]
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
    np.testing.assert_array_equal(np.isinf(got), np.isinf(want))
    finite = np.isfinite(want)
    # rtol: Eigen's vectorised erf/tanh/logistic; atol: results in the denormal range are
    # flushed to zero by the kernels (FTZ), NumPy keeps them.
    np.testing.assert_allclose(
        got[finite], want[finite], rtol=1e-4, atol=np.finfo(dtype).smallest_normal
    )
    np.testing.assert_array_equal(got[~finite], want[~finite])


# --------------------------------------------------------------------------------- denormals
def _decaying_layer(kind, dtype, units=64, **kw):
    """A layer whose weights keep tiny inputs tiny: kernel and recurrent kernel 0.5 * identity,
    no bias, so denormal inputs give denormal gates (and, for SimpleRNN, denormal states)."""
    layer = recurrent_layer(kind, units, dtype=dtype, return_sequences=True, **kw)
    layer.build((32, 400, units))
    weights = layer.get_weights()
    weights[0] = 0.5 * np.eye(units, weights[0].shape[1])
    weights[1] = 0.5 * np.eye(units, weights[1].shape[1])
    weights[2] = np.zeros_like(weights[2])
    layer.set_weights(weights)
    return layer


def _denormal_inputs(dtype, shape, seed=0):
    tiny = np.finfo(dtype).smallest_normal
    base = np.random.default_rng(seed).uniform(0.5, 1.0, shape).astype(dtype)
    normal = base * np.asarray(1e-3, dtype)
    denormal = base * np.asarray(tiny * 1e-3, dtype)
    assert (denormal != 0).all() and (np.abs(denormal) < tiny).all()
    return normal, denormal


@pytest.mark.parametrize("dtype", DTYPES)
def test_denormal_inputs_and_results_are_flushed_to_zero(dtype):
    layer = _decaying_layer("simple_rnn", dtype, activation="linear")
    _, denormal = _denormal_inputs(dtype, (32, 400, 64))
    y = layer(denormal)
    np.testing.assert_array_equal(y, np.zeros_like(y))  # DAZ: denormal x reads as 0
    # The smallest normal numbers are kept: x * 0.5 * 2 through two steps of the identity.
    tiny = np.finfo(dtype).smallest_normal
    x = np.zeros((32, 400, 64), dtype)
    x[:, 0] = 4 * tiny
    y = layer(x)
    np.testing.assert_array_equal(y[:, 0], np.full((32, 64), 2 * tiny, dtype))
    np.testing.assert_array_equal(y[:, 1], np.full((32, 64), tiny, dtype))
    np.testing.assert_array_equal(y[:, 2], 0)  # tiny / 2 is denormal: flushed (FTZ)


def test_flush_to_zero_does_not_leak_into_the_calling_thread():
    """The kernels restore the thread's floating-point mode: NumPy keeps gradual underflow."""
    tiny = np.finfo("float32").smallest_normal
    assert np.float32(tiny) / np.float32(4) != 0  # IEEE before ...
    layer = _decaying_layer("simple_rnn", "float32")
    layer(np.ones((32, 400, 64), "float32"))
    assert np.float32(tiny) / np.float32(4) != 0  # ... and after a kernel ran on this thread
    assert np.float64(np.finfo("float64").smallest_normal) / 4 != 0


def test_pool_workers_flush_denormals_too():
    """With two threads the batch rows are split across the pool: every slice flushes."""
    previous = rnnkit.get_num_threads()
    rnnkit.set_num_threads(2)
    try:
        layer = _decaying_layer("simple_rnn", "float32", activation="linear")
        _, denormal = _denormal_inputs("float32", (32, 400, 64))
        y = layer(denormal)
    finally:
        rnnkit.set_num_threads(previous)
    np.testing.assert_array_equal(y, np.zeros_like(y))


def _cpu_seconds(layer, x, repeats=5):
    layer(x)  # warm: plan, workspace
    best = float("inf")
    for _ in range(repeats):
        start = time.thread_time()
        layer(x)
        best = min(best, time.thread_time() - start)
    return best


# A generous ratio: "orders of magnitude" is what the issue rules out; measured here ~1.0 with
# FTZ/DAZ and 10-40 without them. CPU time of this thread (the pool is not used: 1 thread).
MAX_DENORMAL_SLOWDOWN = 5.0


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kind", builtin_layers())
def test_denormals_do_not_slow_the_kernels_down(kind, dtype):
    previous = rnnkit.get_num_threads()
    rnnkit.set_num_threads(1)
    try:
        layer = _decaying_layer(kind, dtype, activation="linear")
        normal, denormal = _denormal_inputs(dtype, (32, 400, 64))
        ratios = []
        for _ in range(3):  # a ratio under the bound once is enough: noise only adds time
            ratios.append(_cpu_seconds(layer, denormal) / _cpu_seconds(layer, normal))
            if ratios[-1] < MAX_DENORMAL_SLOWDOWN:
                break
    finally:
        rnnkit.set_num_threads(previous)
    assert min(ratios) < MAX_DENORMAL_SLOWDOWN, ratios

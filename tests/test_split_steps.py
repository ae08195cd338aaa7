"""Split steps: with few rows (batch 1 above all), rnnkit's threads share every step's columns,
each computing some units of every gate for all rows and passing a barrier after each step
(cpp/include/rnnkit/kernels/sequence.hpp, run_sequence_part). Every case first checks that the
split is really taken (Kernel.split_parts), then that it gives bit for bit the numbers of one
thread, over cells, directions, layouts, chunkings, precisions and states; masks and GRU with
reset_after=False never split."""

import numpy as np
import pytest

import rnnkit
from conftest import builtin_layers, flatten, recurrent_layer, state_sizes
from rnnkit import testing

UNITS = 256  # whole panels at every SIMD level, and steps long enough to be worth splitting
STEPS = 50  # and enough of them
CELLS = {
    **builtin_layers(),
    "lstm_relu": ("LSTM", {"activation": "relu", "recurrent_activation": "hard_sigmoid"}),
}


def _layer(cell, **kwargs):
    return recurrent_layer(CELLS[cell], UNITS, **kwargs)


def _x(shape, dtype="float32", seed=0):
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


@pytest.fixture
def threads():
    previous = rnnkit.get_num_threads()

    def use(n):
        rnnkit.set_num_threads(n)
        assert rnnkit.get_num_threads() == n

    yield use
    rnnkit.set_num_threads(previous)


def _split_parts(layer, x, time_major=False, has_mask=False, chunk_steps=0):
    batch, steps = (x.shape[1], x.shape[0]) if time_major else (x.shape[0], x.shape[1])
    kernel = layer.cell.compiled_kernel()
    return kernel.split_parts(batch, steps, chunk_steps, has_mask)


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("batch", [1, 3])
@pytest.mark.parametrize("go_backwards", [False, True])
@pytest.mark.parametrize("return_sequences", [False, True])
@pytest.mark.parametrize("time_major", [False, True])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_split_steps_give_the_numbers_of_one_thread(threads, cell, batch, go_backwards,
                                                    return_sequences, time_major, dtype):
    kwargs = dict(return_sequences=return_sequences, return_state=True,
                  go_backwards=go_backwards, time_major=time_major, dtype=dtype)
    layer = _layer(cell, **kwargs)
    shape = (STEPS, batch, 64) if time_major else (batch, STEPS, 64)
    x = _x(shape, dtype)
    states = [_x((batch, UNITS), dtype, seed=s + 1)
              for s in range(len(state_sizes(CELLS[cell], UNITS)))]
    threads(1)
    one = layer(x, initial_state=states)
    one_plain = layer(x)
    one_again = layer(x)  # through the plan
    threads(2)
    assert _split_parts(layer, x, time_major) == 2
    two = layer(x, initial_state=states)
    two_plain = layer(x)
    two_again = layer(x)
    for a, b in zip(flatten(one) + flatten(one_plain) + flatten(one_again),
                    flatten(two) + flatten(two_plain) + flatten(two_again)):
        np.testing.assert_array_equal(b, a)


@pytest.mark.parametrize("chunk", [1, 2, 7, STEPS])
@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_split_steps_with_every_chunking(threads, cell, chunk):
    layer = _layer(cell, return_sequences=True)
    x = _x((2, STEPS, 64))
    threads(1)
    with testing.chunk_steps(chunk):
        one = layer(x)
        threads(2)
        assert _split_parts(layer, x, chunk_steps=chunk) == 2
        two = layer(x)
    np.testing.assert_array_equal(two, one)


@pytest.mark.parametrize("cell", builtin_layers())
def test_split_steps_with_bfloat16_weights(threads, cell):
    layer = _layer(cell, return_sequences=True, precision="bfloat16")
    x = _x((1, STEPS, 64))
    threads(1)
    one = layer(x)
    threads(2)
    assert _split_parts(layer, x) == 2
    np.testing.assert_array_equal(layer(x), one)


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_stateful_split_steps_stream_like_one_thread(threads, cell):
    make = lambda: _layer(cell, return_sequences=True, stateful=True)  # noqa: E731
    serial, split = make(), make()
    serial.build((1, STEPS, 64))
    split.build((1, STEPS, 64))
    split.set_weights(serial.get_weights())
    x = _x((1, 4 * STEPS, 64))
    calls = range(0, 4 * STEPS, STEPS)
    threads(1)
    expected = [serial(x[:, i:i + STEPS]) for i in calls]
    threads(2)
    got = [split(x[:, i:i + STEPS]) for i in calls]
    assert _split_parts(split, x[:, :STEPS]) == 2
    for a, b in zip(expected, got):
        np.testing.assert_array_equal(b, a)
    for a, b in zip(serial.states, split.states):
        np.testing.assert_array_equal(b, a)


def test_masks_reset_before_gru_and_short_steps_do_not_split(threads):
    threads(2)
    x = _x((1, STEPS, 64))
    lstm = _layer("lstm")
    lstm(x)
    assert _split_parts(lstm, x, has_mask=True) == 0
    gru = rnnkit.GRU(UNITS, reset_after=False)
    gru(x)
    assert _split_parts(gru, x) == 0
    small = rnnkit.LSTM(32)
    small(_x((1, 1000, 8)))
    assert _split_parts(small, _x((1, 1000, 8))) == 0  # a step too short to share
    many = _layer("lstm")
    many(_x((16, STEPS, 64)))
    assert _split_parts(many, _x((16, STEPS, 64))) == 0  # rows enough to share out instead


def test_masked_calls_on_a_splitting_layer_match_one_thread(threads):
    layer = _layer("gru", return_sequences=True)
    x = _x((2, STEPS, 64))
    mask = np.random.default_rng(3).random((2, STEPS)) > 0.3
    threads(1)
    one = layer(x, mask=mask)
    threads(2)  # rows split between the threads: one row's kernel sums in another order
    np.testing.assert_allclose(layer(x, mask=mask), one, rtol=1e-6, atol=1e-6)


def test_split_steps_in_a_stack_and_a_bidirectional_layer(threads):
    stack = rnnkit.RNN(rnnkit.StackedRNNCells([rnnkit.LSTMCell(UNITS), rnnkit.GRUCell(UNITS)]),
                       return_sequences=True)
    both = rnnkit.Bidirectional(rnnkit.LSTM(UNITS, return_sequences=True))
    x = _x((1, STEPS, 64))
    threads(1)
    expected = [stack(x), both(x)]
    threads(2)
    for cell in stack.cell.cells:
        assert cell.compiled_kernel().split_parts(1, STEPS, 0, False) == 2
    for a, b in zip(expected, [stack(x), both(x)]):
        np.testing.assert_array_equal(b, a)

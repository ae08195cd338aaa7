"""The examples of the tf.keras 2 `RNN` docstring: its MinimalRNNCell, alone and stacked, and
a plain NumPy reference of the docstring's RNN semantics checked against rnnkit (custom cells
through the NumPy loop; built-in cells through C++)."""

import numpy as np
import pytest

import rnnkit
from rnnkit.examples import MinimalRNNCell, minimal_rnn, stacked_minimal_rnn


def reference_rnn(step, x, initial_states, *, go_backwards=False, mask=None,
                  return_sequences=False):
    """tf.keras 2's RNN, written from its docstring: iterate `step(x_t, states)` over time; with a
    mask, a masked step keeps the states and repeats the previous output (zeros at first)."""
    steps = x.shape[1]
    order = range(steps - 1, -1, -1) if go_backwards else range(steps)
    states, previous, outputs = list(initial_states), None, []
    for t in order:
        output, new_states = step(x[:, t], states)
        if mask is not None:
            keep = mask[:, t][:, None]
            previous = np.zeros_like(output) if previous is None else previous
            output = np.where(keep, output, previous)
            new_states = [np.where(keep, n, s) for n, s in zip(new_states, states)]
        states, previous = new_states, output
        outputs.append(output)
    return (np.stack(outputs, axis=1) if return_sequences else outputs[-1]), states


def minimal_step(kernel, recurrent_kernel):
    def step(x_t, states):
        output = x_t @ kernel + states[0] @ recurrent_kernel
        return output, [output]

    return step


def test_minimal_rnn_cell_runs_alone_like_the_docstring():
    x = np.random.default_rng(0).standard_normal((4, 10, 5)).astype("float32")
    assert minimal_rnn(x).shape == (4, 32)
    cell = MinimalRNNCell(32)
    layer = rnnkit.RNN(cell, return_sequences=True, return_state=True)
    y, h = layer(x)
    expected, (expected_h,) = reference_rnn(
        minimal_step(cell.kernel, cell.recurrent_kernel), x, [np.zeros((4, 32), "float32")],
        return_sequences=True,
    )
    assert y.dtype == np.float32 and y.shape == (4, 10, 32)
    np.testing.assert_allclose(y, expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(h, expected_h, rtol=1e-5, atol=1e-6)


def test_minimal_rnn_cell_weights_follow_the_docstring_initializer():
    cell = MinimalRNNCell(32)
    rnnkit.RNN(cell)(np.ones((1, 2, 5), "float32"))
    kernel, recurrent = cell.get_weights()
    assert kernel.shape == (5, 32) and recurrent.shape == (32, 32)
    assert np.all(np.abs(kernel) <= 0.05)  # 'uniform' is RandomUniform(-0.05, 0.05)
    assert np.std(kernel) > 0.01


@pytest.mark.parametrize("go_backwards", [False, True])
@pytest.mark.parametrize("masked", [False, True])
def test_stacked_minimal_rnn_cells_match_reference(go_backwards, masked):
    rng = np.random.default_rng(1)
    x = rng.standard_normal((3, 7, 5)).astype("float32")
    assert stacked_minimal_rnn(x).shape == (3, 64)
    cells = [MinimalRNNCell(32), MinimalRNNCell(64)]
    layer = rnnkit.RNN(cells, return_sequences=True, return_state=True,
                       go_backwards=go_backwards)
    mask = rng.random((3, 7)) > 0.3 if masked else None
    y, state_1, state_2 = layer(x, mask=mask)
    first, second = (minimal_step(c.kernel, c.recurrent_kernel) for c in cells)

    def stacked_step(x_t, states):
        out_1, (h_1,) = first(x_t, [states[0]])
        out_2, (h_2,) = second(out_1, [states[1]])
        return out_2, [h_1, h_2]

    zeros = [np.zeros((3, 32), "float32"), np.zeros((3, 64), "float32")]
    expected, (h_1, h_2) = reference_rnn(stacked_step, x, zeros, go_backwards=go_backwards,
                                         mask=mask, return_sequences=True)
    np.testing.assert_allclose(y, expected, rtol=1e-5, atol=1e-6)
    # A custom cell with an int state_size and no get_initial_state has a bare-array state
    # in a stack, as in Keras 3.
    np.testing.assert_allclose(state_1, h_1, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(state_2, h_2, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("go_backwards", [False, True])
@pytest.mark.parametrize("masked", [False, True])
@pytest.mark.parametrize("return_sequences", [False, True])
def test_builtin_simple_rnn_matches_the_docstring_reference(go_backwards, masked, return_sequences):
    """The same reference, now against the C++ path of a built-in cell."""
    rng = np.random.default_rng(2)
    x = rng.standard_normal((4, 9, 3)).astype("float64")
    layer = rnnkit.SimpleRNN(6, activation="tanh", go_backwards=go_backwards,
                             return_sequences=return_sequences, dtype="float64")
    mask = rng.random((4, 9)) > 0.3 if masked else None
    y = layer(x, mask=mask)
    kernel, recurrent, bias = layer.get_weights()

    def step(x_t, states):
        h = np.tanh(x_t @ kernel + bias + states[0] @ recurrent)
        return h, [h]

    expected, _ = reference_rnn(step, x, [np.zeros((4, 6))], go_backwards=go_backwards,
                                mask=mask, return_sequences=return_sequences)
    np.testing.assert_allclose(y, expected, rtol=1e-12, atol=1e-12)


class ConstantsCell(rnnkit.Layer):
    """A tf.keras 2-style cell taking `constants` (an attention-like context vector)."""

    def __init__(self, units, **kwargs):
        super().__init__(**kwargs)
        self.units = units
        self.state_size = units

    def build(self, input_shape):
        self.kernel = self.add_weight((input_shape[-1], self.units), "uniform", name="kernel")
        self.recurrent_kernel = self.add_weight((self.units, self.units), "uniform",
                                                name="recurrent_kernel")
        self.built = True

    def call(self, inputs, states, constants):
        context = constants[0]
        h = np.tanh(inputs @ self.kernel + states[0] @ self.recurrent_kernel + context)
        return h, [h]


@pytest.mark.parametrize("time_major", [False, True])
def test_constants_reach_the_cell_every_step_as_in_tf_keras_2(time_major):
    rng = np.random.default_rng(4)
    x = rng.standard_normal((3, 6, 2)).astype("float32")
    context = rng.standard_normal((3, 5)).astype("float32")
    cell = ConstantsCell(5)
    layer = rnnkit.RNN(cell, return_sequences=True, time_major=time_major)
    y = layer(x.transpose(1, 0, 2) if time_major else x, constants=[context])
    if time_major:
        y = y.transpose(1, 0, 2)

    def step(x_t, states):
        h = np.tanh(x_t @ cell.kernel + states[0] @ cell.recurrent_kernel + context)
        return h, [h]

    expected, _ = reference_rnn(step, x, [np.zeros((3, 5), "float32")], return_sequences=True)
    np.testing.assert_allclose(y, expected, rtol=1e-5, atol=1e-6)


def test_constants_pass_through_a_stack_to_the_cells_that_take_them():
    rng = np.random.default_rng(5)
    x = rng.standard_normal((2, 4, 3)).astype("float32")
    context = rng.standard_normal((2, 4)).astype("float32")
    cells = [rnnkit.GRUCell(4), ConstantsCell(4)]
    layer = rnnkit.RNN(cells, return_sequences=True)
    y = layer(x, constants=[context])
    gru = rnnkit.RNN(rnnkit.GRUCell(4), return_sequences=True)
    gru(x)
    gru.set_weights(cells[0].get_weights())
    inner = gru(x)
    expected, _ = reference_rnn(
        lambda x_t, s: (lambda h: (h, [h]))(
            np.tanh(x_t @ cells[1].kernel + s[0] @ cells[1].recurrent_kernel + context)),
        inner, [np.zeros((2, 4), "float32")], return_sequences=True)
    np.testing.assert_allclose(y, expected, rtol=1e-5, atol=1e-6)


def test_the_quick_check_runs_every_built_in_cell(capsys):
    """`python -m rnnkit` (the README's quick check) runs the docstring's examples and every
    built-in cell's C++ path against the NumPy loop, and says OK."""
    from rnnkit.__main__ import main
    from rnnkit.layers.recurrent import registry

    assert main() == 0
    printed = capsys.readouterr().out
    assert "OK: C++ and NumPy agree" in printed
    for layer_class in registry.layer_classes().values():
        assert f"  {layer_class.__name__} " in printed

"""Any object with `call(inputs, states)` and `state_size` is a cell, as in Keras (SPEC, "Custom
cells"): no `build`, no weights, no base class, even one that cannot take new attributes."""

import numpy as np
import pytest

import rnnkit


class Leaky:
    """A cell with no build method: h = 0.5 h + tanh(x)."""

    state_size = 3
    output_size = 3

    def call(self, inputs, states):
        h = 0.5 * states[0] + np.tanh(inputs)
        return h, [h]


class SlottedLeaky:
    """The same cell refusing new attributes (no `built` can be set on it)."""

    __slots__ = ()
    state_size = 3
    output_size = 3
    call = Leaky.call


def reference(x, go_backwards=False):
    h = np.zeros((x.shape[0], 3), x.dtype)
    outputs = []
    steps = range(x.shape[1])
    for t in reversed(steps) if go_backwards else steps:
        h = 0.5 * h + np.tanh(x[:, t])
        outputs.append(h)
    return np.stack(outputs, axis=1), h


@pytest.mark.parametrize("cell_class", [Leaky, SlottedLeaky])
@pytest.mark.parametrize("go_backwards", [False, True])
def test_a_plain_object_without_build_is_a_cell(cell_class, go_backwards, rng):
    x = rng.standard_normal((2, 5, 3)).astype("float32")
    layer = rnnkit.RNN(cell_class(), return_sequences=True, return_state=True,
                       go_backwards=go_backwards)
    outputs, state = layer(x)
    expected_outputs, expected_state = reference(x, go_backwards)
    np.testing.assert_allclose(outputs, expected_outputs, rtol=1e-6)
    np.testing.assert_allclose(state, expected_state, rtol=1e-6)
    assert layer.weights == []


def test_plain_cells_stack_and_run_in_models(rng):
    x = rng.standard_normal((2, 4, 3)).astype("float32")
    stacked = rnnkit.RNN([Leaky(), rnnkit.SimpleRNNCell(2)])
    assert stacked(x).shape == (2, 2)
    inputs = rnnkit.Input((4, 3))
    model = rnnkit.Model(inputs, rnnkit.RNN(Leaky())(inputs))
    np.testing.assert_allclose(model(x), reference(x)[1], rtol=1e-6)

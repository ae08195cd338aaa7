"""The examples of the tf.keras 2 `RNN` docstring (its custom cell, alone and stacked), run by
rnnkit.

`MinimalRNNCell` is the docstring's cell unchanged apart from its imports (`keras` is rnnkit,
`K` is rnnkit.ops). Custom Python cells run through rnnkit's NumPy loop.
"""

from __future__ import annotations

import numpy as np

import rnnkit as keras
from rnnkit import RNN
from rnnkit import ops as K


# First, let's define a RNN Cell, as a layer subclass.
class MinimalRNNCell(keras.layers.Layer):
    def __init__(self, units, **kwargs):
        self.units = units
        self.state_size = units
        super(MinimalRNNCell, self).__init__(**kwargs)  # noqa: UP008 (the docstring's spelling)

    def build(self, input_shape):
        self.kernel = self.add_weight(
            shape=(input_shape[-1], self.units), initializer="uniform", name="kernel"
        )
        self.recurrent_kernel = self.add_weight(
            shape=(self.units, self.units), initializer="uniform", name="recurrent_kernel"
        )
        self.built = True

    def call(self, inputs, states):
        prev_output = states[0]
        h = K.dot(inputs, self.kernel)
        output = h + K.dot(prev_output, self.recurrent_kernel)
        return output, [output]


def minimal_rnn(x: np.ndarray) -> np.ndarray:
    """The docstring's first use: one MinimalRNNCell(32) over (batch, timesteps, 5) inputs."""
    cell = MinimalRNNCell(32)
    layer = RNN(cell)
    return layer(x)


def stacked_minimal_rnn(x: np.ndarray) -> np.ndarray:
    """The docstring's stacked use: RNN([MinimalRNNCell(32), MinimalRNNCell(64)])."""
    cells = [MinimalRNNCell(32), MinimalRNNCell(64)]
    layer = RNN(cells)
    return layer(x)

"""SimpleRNNCell and SimpleRNN, as keras.layers.SimpleRNNCell / SimpleRNN."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .builtin import BuiltinCell
from .cell_layer import CellLayer


class SimpleRNNCell(BuiltinCell):
    """Fully connected RNN cell, as `keras.layers.SimpleRNNCell`:
    h_t = activation(x_t · kernel + bias + h_{t-1} · recurrent_kernel).

    Weights: kernel (input_dim, units), recurrent_kernel (units, units), bias (units,).
    """

    CORE_NAME = "simple_rnn"

    ARGUMENTS = {k: v for k, v in BuiltinCell.ARGUMENTS.items() if k != "recurrent_activation"}

    def call(
        self, inputs: np.ndarray, states: Sequence[np.ndarray], training: bool = False
    ) -> tuple[np.ndarray, list[np.ndarray]]:
        w = self._step_weights()
        kernel, recurrent_kernel, bias = w["kernel"], w["recurrent_kernel"], w.get("bias")
        h = inputs @ kernel
        if self.use_bias:
            h = h + bias
        h = self.activation(h + states[0] @ recurrent_kernel)
        return h, [h]


class SimpleRNN(CellLayer):
    """Fully connected RNN: `RNN(SimpleRNNCell(units, ...), ...)` in one layer."""

    CELL_CLASS = SimpleRNNCell

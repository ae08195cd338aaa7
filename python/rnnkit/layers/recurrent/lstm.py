"""LSTMCell and LSTM, as keras.layers.LSTMCell / LSTM."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from .builtin import BuiltinCell, insert_argument
from .cell_layer import CellLayer


class LSTMCell(BuiltinCell):
    """Long Short-Term Memory cell, as `keras.layers.LSTMCell`; gates i, f, c, o.

    Weights: kernel (input_dim, 4*units), recurrent_kernel (units, 4*units), bias (4*units,).
    States: [h, c]. With `unit_forget_bias` the forget gate's bias starts at one.
    """

    CORE_NAME = "lstm"
    GATES = 4

    STATES = 2
    ARGUMENTS = insert_argument(
        BuiltinCell.ARGUMENTS, "unit_forget_bias", True, after="bias_initializer"
    )

    def _bias_initializer(self) -> Any:
        init = super()._bias_initializer()
        if not self.unit_forget_bias:
            return init
        units = self.units

        def forget_gate_ones(shape: Sequence[int], dtype: str = "float32") -> np.ndarray:
            return np.concatenate(
                [init((units,), dtype), np.ones(units, dtype), init((2 * units,), dtype)]
            )

        return forget_gate_ones

    def call(
        self, inputs: np.ndarray, states: Sequence[np.ndarray], training: bool = False
    ) -> tuple[np.ndarray, list[np.ndarray]]:
        h_prev, c_prev = states[0], states[1]
        kernel, recurrent_kernel, bias = self._step_weights()
        z = inputs @ kernel
        if self.use_bias:
            z = z + bias
        z = z + h_prev @ recurrent_kernel
        z_i, z_f, z_c, z_o = np.split(z, 4, axis=-1)
        i = self.recurrent_activation(z_i)
        f = self.recurrent_activation(z_f)
        c = f * c_prev + i * self.activation(z_c)
        o = self.recurrent_activation(z_o)
        h = o * self.activation(c)
        return h, [h, c]


class LSTM(CellLayer):
    """Long Short-Term Memory layer: `RNN(LSTMCell(units, ...), ...)` in one layer."""

    CELL_CLASS = LSTMCell

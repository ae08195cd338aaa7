"""GRUCell and GRU, as keras.layers.GRUCell / GRU."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .builtin import BuiltinCell, insert_argument
from .cell_layer import CellLayer


class GRUCell(BuiltinCell):
    """Gated Recurrent Unit cell, as `keras.layers.GRUCell`; gates z, r, h.

    Weights: kernel (input_dim, 3*units), recurrent_kernel (units, 3*units), bias (2, 3*units)
    when `reset_after` (input bias, recurrent bias: the CuDNN/PyTorch convention) else
    (3*units,).
    """

    CORE_NAME = "gru"

    ARGUMENTS = insert_argument(
        BuiltinCell.ARGUMENTS, "reset_after", True, after="recurrent_dropout"
    )

    def call(
        self, inputs: np.ndarray, states: Sequence[np.ndarray], training: bool = False
    ) -> tuple[np.ndarray, list[np.ndarray]]:
        h_prev = states[0]
        units = self.units
        w = self._step_weights()
        kernel, u, bias = w["kernel"], w["recurrent_kernel"], w.get("bias")
        if self.use_bias:
            input_bias, recurrent_bias = (bias[0], bias[1]) if self.reset_after else (bias, None)
        else:
            input_bias = recurrent_bias = None
        x = inputs @ kernel
        if input_bias is not None:
            x = x + input_bias
        x_z, x_r, x_h = x[:, :units], x[:, units : 2 * units], x[:, 2 * units :]
        if self.reset_after:
            m = h_prev @ u
            if recurrent_bias is not None:
                m = m + recurrent_bias
            z = self.recurrent_activation(x_z + m[:, :units])
            r = self.recurrent_activation(x_r + m[:, units : 2 * units])
            hh = self.activation(x_h + r * m[:, 2 * units :])
        else:
            z = self.recurrent_activation(x_z + h_prev @ u[:, :units])
            r = self.recurrent_activation(x_r + h_prev @ u[:, units : 2 * units])
            hh = self.activation(x_h + (r * h_prev) @ u[:, 2 * units :])
        h = z * h_prev + (1 - z) * hh
        return h, [h]


class GRU(CellLayer):
    """Gated Recurrent Unit layer: `RNN(GRUCell(units, ...), ...)` in one layer."""

    CELL_CLASS = GRUCell

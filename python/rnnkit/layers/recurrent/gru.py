"""GRUCell and GRU, as keras.layers.GRUCell / GRU."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from .builtin import BuiltinCell
from .cell_layer import CellLayer


class GRUCell(BuiltinCell):
    """Gated Recurrent Unit cell, as `keras.layers.GRUCell`; gates z, r, h.

    Weights: kernel (input_dim, 3*units), recurrent_kernel (units, 3*units), bias (2, 3*units)
    when `reset_after` (input bias, recurrent bias: the CuDNN/PyTorch convention) else
    (3*units,).
    """

    _CELL = "gru"
    _GATES = 3

    def __init__(self, units: int, reset_after: bool = True, **kwargs: Any) -> None:
        super().__init__(units, **kwargs)
        self.reset_after = bool(reset_after)

    def _reset_after(self) -> bool:
        return self.reset_after

    def _bias_shape(self) -> tuple[int, ...]:
        width = 3 * self.units
        return (2, width) if self.reset_after else (width,)

    def call(
        self, inputs: np.ndarray, states: Sequence[np.ndarray], training: bool = False
    ) -> tuple[np.ndarray, list[np.ndarray]]:
        h_prev = states[0]
        units = self.units
        kernel, u, bias = self._step_weights()
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

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "reset_after": self.reset_after}


class GRU(CellLayer):
    """Gated Recurrent Unit layer: `RNN(GRUCell(units, ...), ...)` in one layer."""

    _CELL_CLASS = GRUCell

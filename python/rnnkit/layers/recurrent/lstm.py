"""LSTMCell and LSTM, as keras.layers.LSTMCell / LSTM, and the LSTM with peephole connections
(PeepholeLSTMCell, as tf.keras 2's keras.experimental.PeepholeLSTMCell, and PeepholeLSTM)."""

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

    ARGUMENTS = insert_argument(
        BuiltinCell.ARGUMENTS, "unit_forget_bias", True, after="bias_initializer"
    )

    def _weight_initializer(self, name: str, index: int) -> Any:
        init = super()._weight_initializer(name, index)
        if name != "bias" or not self.unit_forget_bias:
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
        w = self._step_weights()
        kernel, recurrent_kernel, bias = w["kernel"], w["recurrent_kernel"], w.get("bias")
        z = inputs @ kernel
        if self.use_bias:
            z = z + bias
        z = z + h_prev @ recurrent_kernel
        z_i, z_f, z_c, z_o = np.split(z, 4, axis=-1)
        i = self.recurrent_activation(z_i + self._peephole(w, "input", c_prev))
        f = self.recurrent_activation(z_f + self._peephole(w, "forget", c_prev))
        c = f * c_prev + i * self.activation(z_c)
        o = self.recurrent_activation(z_o + self._peephole(w, "output", c))
        h = o * self.activation(c)
        return h, [h, c]

    def _peephole(self, weights: dict[str, np.ndarray], gate: str, c: np.ndarray) -> Any:
        """What a gate sees of the carry besides its input (nothing, in the plain LSTM)."""
        return 0


class LSTM(CellLayer):
    """Long Short-Term Memory layer: `RNN(LSTMCell(units, ...), ...)` in one layer."""

    CELL_CLASS = LSTMCell


class PeepholeLSTMCell(LSTMCell):
    """LSTM cell with peephole connections, as tf.keras 2's
    `keras.experimental.PeepholeLSTMCell` (Gers et al., 2002; ONNX LSTM with its P input):
    the input and forget gates see the previous carry, the output gate the new one:

        i = recurrent_activation(z_i + p_i * c_{t-1})
        f = recurrent_activation(z_f + p_f * c_{t-1})
        c_t = f * c_{t-1} + i * activation(z_c)
        o = recurrent_activation(z_o + p_o * c_t)
        h_t = o * activation(c_t)

    Weights: LSTMCell's, then input_gate_peephole_weights, forget_gate_peephole_weights and
    output_gate_peephole_weights, (units,) each, drawn with `kernel_initializer` (as tf.keras 2
    does). The arguments are LSTMCell's; tf.keras 2's default recurrent_activation was
    'hard_sigmoid' (its own 0.2 x + 0.5 formula): pass the activation the model was trained with.
    """

    CORE_NAME = "peephole_lstm"

    def _peephole(self, weights: dict[str, np.ndarray], gate: str, c: np.ndarray) -> Any:
        return weights[f"{gate}_gate_peephole_weights"] * c


class PeepholeLSTM(CellLayer):
    """`RNN(PeepholeLSTMCell(units, ...), ...)` in one layer."""

    CELL_CLASS = PeepholeLSTMCell

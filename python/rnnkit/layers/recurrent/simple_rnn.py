"""SimpleRNNCell and SimpleRNN, as keras.layers.SimpleRNNCell / SimpleRNN."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ... import activations
from .builtin import BuiltinCell
from .cell_layer import CellLayer


class SimpleRNNCell(BuiltinCell):
    """Fully connected RNN cell, as `keras.layers.SimpleRNNCell`:
    h_t = activation(x_t · kernel + bias + h_{t-1} · recurrent_kernel).

    Weights: kernel (input_dim, units), recurrent_kernel (units, units), bias (units,).
    """

    _CELL = "simple_rnn"
    _GATES = 1

    def __init__(
        self, units: int, activation: activations.ActivationLike = "tanh", **kwargs: Any
    ) -> None:
        super().__init__(units, activation=activation, **kwargs)

    def call(
        self, inputs: np.ndarray, states: Sequence[np.ndarray], training: bool = False
    ) -> tuple[np.ndarray, list[np.ndarray]]:
        kernel, recurrent_kernel, bias = self._step_weights()
        h = inputs @ kernel
        if self.use_bias:
            h = h + bias
        h = self.activation(h + states[0] @ recurrent_kernel)
        return h, [h]

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        del config["recurrent_activation"]
        return config


class SimpleRNN(CellLayer):
    """Fully connected RNN: `RNN(SimpleRNNCell(units, ...), ...)` in one layer."""

    _CELL_CLASS = SimpleRNNCell

"""StackedRNNCells: several cells run as one."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ..base import Layer
from .cell_protocol import (
    accepts,
    build_cell,
    call_cell,
    check_cell,
    labels,
    output_size,
    state_sizes,
)


class StackedRNNCells(Layer):
    """A stack of cells run as one: each cell's output is the next one's input; the stack
    outputs the last cell's output. States are nested per cell, as in Keras 3."""

    def __init__(self, cells: Sequence[Any], **kwargs: Any) -> None:
        if isinstance(cells, Layer) or not isinstance(cells, (list, tuple)) or not cells:
            raise ValueError(f"`cells` must be a non-empty list of cells. Received: {cells!r}")
        for i, cell in enumerate(cells):
            check_cell(cell, f"cells[{i}]")
        super().__init__(**kwargs)
        self.cells = list(cells)

    @property
    def state_size(self) -> list[Any]:
        return [cell.state_size for cell in self.cells]

    @property
    def output_size(self) -> int:
        return output_size(self.cells[-1])

    def build(self, input_shape: Sequence[int | None]) -> None:
        shape = tuple(input_shape)
        for cell in self.cells:
            build_cell(cell, shape)
            shape = (*shape[:-1], output_size(cell))
        self.built = True

    def get_initial_state(self, batch_size: int) -> list[list[np.ndarray]]:
        return [
            [
                np.zeros((batch_size, s), dtype=getattr(cell, "dtype", "float32"))
                for s in state_sizes(cell)
            ]
            for cell in self.cells
        ]

    def call(
        self,
        inputs: np.ndarray,
        states: Sequence[Any],
        training: bool = False,
        constants: Sequence[np.ndarray] | None = None,
    ) -> tuple[np.ndarray, list[Any]]:
        """One step of every cell in turn; `constants` go to the cells whose `call` takes them."""
        new_states = []
        for cell, cell_states in zip(self.cells, states):
            kwargs = (
                {"constants": constants}
                if constants is not None and accepts(cell, "constants")
                else {}
            )
            group = list(cell_states) if isinstance(cell_states, (list, tuple)) else [cell_states]
            inputs, cell_new = call_cell(cell, inputs, group, training, **kwargs)
            new_states.append(cell_new)
        return inputs, new_states

    @property
    def weights(self) -> list[np.ndarray]:
        return [w for cell in self.cells for w in getattr(cell, "weights", [])]

    def _weight_labels(self) -> list[str]:
        return [
            f"cells[{i}].{label}" for i, cell in enumerate(self.cells) for label in labels(cell)
        ]

    def _on_weights_changed(self) -> None:
        super()._on_weights_changed()
        for cell in self.cells:
            if isinstance(cell, Layer):
                cell._on_weights_changed()

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "cells": self.cells}

    def __repr__(self) -> str:
        return f"StackedRNNCells({self.cells!r})"

"""What Sequential and functional models share: a list of layers whose weights, weight
labels, states and lookup by name are the model's, in `layers` order (Keras's
`model.get_weights()` order)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from .._arrays import describe
from ..io.keras_weights import load_weights as _load_keras_weights
from ..layers.base import Layer


class LayerContainer(Layer):
    """A model: `_layers` holds its layers, in order."""

    _layers: list[Any]

    def get_layer(self, name: str | None = None, index: int | None = None) -> Any:
        """The layer called `name` (or at `index` of `layers`)."""
        if index is not None:
            return self.layers[index]
        for layer in self.layers:
            if layer.name == name:
                return layer
        raise ValueError(
            f"No such layer: {name}. Existing layers are: {[lay.name for lay in self.layers]}."
        )

    @property
    def weights(self) -> list[np.ndarray]:
        return [w for layer in self._layers for w in layer.weights]

    @property
    def trainable_weights(self) -> list[np.ndarray]:
        return [w for layer in self._layers for w in layer.trainable_weights]

    def _weight_labels(self) -> list[str]:
        return [
            f"{layer.name}.{label}"
            for layer in self._layers
            for label in (layer._weight_labels() if isinstance(layer, Layer)
                          else [f"weight_{i}" for i in range(len(layer.weights))])
        ]

    def set_weights(self, weights: Sequence[Any]) -> None:
        """Set every layer's weights from one list in `get_weights()` order; everything is
        checked before anything is written."""
        if isinstance(weights, np.ndarray) or not isinstance(weights, (list, tuple)):
            raise TypeError(f"`weights` must be a list of arrays. Received: {describe(weights)}")
        expected = self.weights
        if len(weights) != len(expected):
            raise ValueError(
                f"{self.name} expects {len(expected)} weight arrays (build the model first if "
                f"it is not built), but `weights` has {len(weights)}."
            )
        for label, target, value in zip(self._weight_labels(), expected, weights):
            if np.shape(value) != target.shape:
                raise ValueError(
                    f"Weight `{label}` of {self.name} expected shape {target.shape}, received "
                    f"{np.shape(value)}."
                )
        start = 0
        for layer in self._layers:
            count = len(layer.weights)
            if count:
                layer.set_weights(list(weights[start : start + count]))
            start += count

    def _on_weights_changed(self) -> None:
        super()._on_weights_changed()
        for layer in self._layers:
            if isinstance(layer, Layer):
                layer._on_weights_changed()

    def count_params(self) -> int:
        return int(sum(w.size for w in self.weights))

    def load_weights(self, path: Any) -> None:
        """Read a Keras weights file into this model (same architecture): a Keras 3
        `.weights.h5`, the weights of a `.keras` archive, or a legacy HDF5 `.h5` (weights only
        or a whole model). Needs h5py; Keras is not needed."""
        _load_keras_weights(self, path)

    def reset_states(self) -> None:
        """Zero the carried states of every stateful layer."""
        for layer in self._layers:
            if hasattr(layer, "reset_states"):
                layer.reset_states()

    reset_state = reset_states

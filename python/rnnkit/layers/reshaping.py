"""Reshaping layers of Keras 3 for inference (NumPy): Permute, Cropping1D, ZeroPadding1D,
UpSampling1D and Identity. As in Keras, only Identity hands the mask on; the others have no
`compute_mask` in Keras and drop it (even those that keep the time axis's meaning).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from .core import ModelLayer

__all__ = ["Cropping1D", "Identity", "Permute", "UpSampling1D", "ZeroPadding1D"]

Shape = tuple  # a shape with None for unknown dimensions


def _is_int(value: Any) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def _int_pair(value: Any, name: str) -> tuple[int, int]:
    """An int or a pair of ints >= 0, as Keras's `standardize_tuple(value, 2, allow_zero=True)`."""
    message = f"The `{name}` argument must be a tuple of 2 integers. Received {name}={value}"
    if _is_int(value):
        pair = (int(value), int(value))
    else:
        try:
            items = tuple(value)
        except TypeError:
            raise ValueError(message) from None
        if len(items) != 2 or not all(_is_int(v) for v in items):
            raise ValueError(message)
        pair = (int(items[0]), int(items[1]))
    negative = {v for v in pair if v < 0}
    if negative:
        raise ValueError(
            f"{message}, including values {negative} that do not satisfy `value >= 0`"
        )
    return pair


def _check_rank(x: np.ndarray, rank: int, layer: ModelLayer, expected: str) -> None:
    if x.ndim != rank:
        raise ValueError(
            f"Input 0 of layer {layer.name} is incompatible: expected rank {rank}, {expected}. "
            f"Received: inputs with shape {x.shape}"
        )


# --------------------------------------------------------------------------- Permute
class Permute(ModelLayer):
    """Permutes the non-batch axes, as `keras.layers.Permute`: `dims` is a permutation of
    1..rank-1 (output axis i + 1 is input axis dims[i]). Drops the mask, as Keras does."""

    supports_masking = False

    def __init__(self, dims: Sequence[int], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        try:
            dims = tuple(dims)
            valid = all(_is_int(d) for d in dims) and sorted(dims) == list(
                range(1, len(dims) + 1)
            )
        except TypeError:
            valid = False
        if not valid:
            raise ValueError(
                "Invalid permutation argument `dims` for Permute Layer. The set of indices in "
                f"`dims` must be consecutive and start from 1. Received dims={dims}"
            )
        self.dims = tuple(int(d) for d in dims)

    def _check(self, shape: tuple) -> None:
        if len(shape) != len(self.dims) + 1:
            raise ValueError(
                f"Input 0 of layer {self.name} is incompatible: expected rank "
                f"{len(self.dims) + 1} for dims={self.dims}. Received: inputs with shape {shape}"
            )

    def call(self, inputs: np.ndarray) -> np.ndarray:
        self._check(inputs.shape)
        return np.ascontiguousarray(np.transpose(inputs, (0, *self.dims)))

    def compute_output_shape(self, input_shape: Sequence[int | None]) -> Shape:
        shape = tuple(input_shape)
        self._check(shape)
        return (shape[0], *(shape[d] for d in self.dims))

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "dims": self.dims}


# ------------------------------------------------------------------------ 1-D crop, pad, repeat
class Cropping1D(ModelLayer):
    """Removes `cropping` = (start, end) timesteps (an int: both) from (batch, time, features),
    as `keras.layers.Cropping1D`. Drops the mask, as Keras does."""

    supports_masking = False

    def __init__(self, cropping: int | Sequence[int] = (1, 1), **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.cropping = _int_pair(cropping, "cropping")

    def call(self, inputs: np.ndarray) -> np.ndarray:
        _check_rank(inputs, 3, self, "(batch, time, features)")
        steps = inputs.shape[1]
        if sum(self.cropping) >= steps:
            raise ValueError(
                f"`cropping` parameter of `Cropping1D` layer {self.name} must be smaller than "
                f"the input length. Received: inputs.shape={inputs.shape}, "
                f"cropping={self.cropping}"
            )
        start, end = self.cropping
        return np.ascontiguousarray(inputs[:, start : steps - end, :])

    def compute_output_shape(self, input_shape: Sequence[int | None]) -> Shape:
        shape = tuple(input_shape)
        if len(shape) != 3:
            raise ValueError(
                f"{self.name} expects (batch, time, features). Received: input_shape={shape}"
            )
        length = None
        if shape[1] is not None:
            length = shape[1] - sum(self.cropping)
            if length <= 0:
                raise ValueError(
                    "`cropping` parameter of `Cropping1D` layer must be smaller than the input "
                    f"length. Received: input_shape={shape}, cropping={self.cropping}"
                )
        return (shape[0], length, shape[2])

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "cropping": self.cropping}


class ZeroPadding1D(ModelLayer):
    """Adds `padding` = (start, end) zero timesteps (an int: both), as
    `keras.layers.ZeroPadding1D`; the time axis is 1 for "channels_last" (the default), 2 for
    "channels_first". Drops the mask, as Keras does."""

    supports_masking = False

    def __init__(
        self, padding: int | Sequence[int] = 1, data_format: str | None = None, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        # None is Keras's image_data_format(), "channels_last" unless configured otherwise.
        data_format = "channels_last" if data_format is None else str(data_format).lower()
        if data_format not in ("channels_first", "channels_last"):
            raise ValueError(
                "The `data_format` argument must be one of {'channels_first', "
                f"'channels_last'}}. Received: data_format={data_format}"
            )
        self.data_format = data_format
        self.padding = _int_pair(padding, "padding")

    @property
    def _time_axis(self) -> int:
        return 2 if self.data_format == "channels_first" else 1

    def call(self, inputs: np.ndarray) -> np.ndarray:
        expected = (
            "(batch, features, time)" if self.data_format == "channels_first"
            else "(batch, time, features)"
        )
        _check_rank(inputs, 3, self, expected)
        widths = [(0, 0), (0, 0), (0, 0)]
        widths[self._time_axis] = self.padding
        return np.pad(inputs, widths)

    def compute_output_shape(self, input_shape: Sequence[int | None]) -> Shape:
        shape = list(input_shape)
        if len(shape) != 3:
            raise ValueError(
                f"{self.name} expects rank-3 inputs. Received: input_shape={tuple(shape)}"
            )
        if shape[self._time_axis] is not None:
            shape[self._time_axis] += sum(self.padding)
        return tuple(shape)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "padding": self.padding, "data_format": self.data_format}


class UpSampling1D(ModelLayer):
    """Repeats each timestep `size` times, as `keras.layers.UpSampling1D`. Drops the mask, as
    Keras does."""

    supports_masking = False

    def __init__(self, size: int = 2, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if not _is_int(size):
            raise TypeError(f"Expected an integer value for `size`, got {type(size)}.")
        if size <= 0:
            raise ValueError(
                f"Argument `size` should be a positive integer. Received: size={size}"
            )
        self.size = int(size)

    def call(self, inputs: np.ndarray) -> np.ndarray:
        _check_rank(inputs, 3, self, "(batch, time, features)")
        return np.repeat(inputs, self.size, axis=1)

    def compute_output_shape(self, input_shape: Sequence[int | None]) -> Shape:
        shape = tuple(input_shape)
        if len(shape) != 3:
            raise ValueError(
                f"{self.name} expects (batch, time, features). Received: input_shape={shape}"
            )
        return (shape[0], None if shape[1] is None else self.size * shape[1], shape[2])

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "size": self.size}


# --------------------------------------------------------------------------- Identity
class Identity(ModelLayer):
    """Returns its input, as `keras.layers.Identity`; the mask passes through. Floats are cast
    to the layer's dtype (Keras's autocast); integer inputs (token ids) pass unchanged."""

    def _prepare_inputs(self, inputs: Any) -> np.ndarray:
        array = inputs if isinstance(inputs, np.ndarray) else np.asarray(inputs)
        if array.dtype.kind in "biu":
            return array
        return self._convert(array)

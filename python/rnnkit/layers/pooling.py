"""Pooling layers (NumPy, inference only): MaxPooling1D/2D and AveragePooling1D/2D over
sliding windows, and the global max/average poolings over all steps or pixels, with Keras 3's
arguments and output shapes. Masks as in Keras: only GlobalAveragePooling1D reads one (it
averages over the unmasked steps); no pooling layer hands a mask on.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from .convolutional import (
    _data_format_arg,
    _int_tuple,
    _output_shape,
    _padding_amounts,
    _padding_arg,
    _windows,
)
from .core import ModelLayer, Shape

__all__ = [
    "AveragePooling1D",
    "AveragePooling2D",
    "GlobalAveragePooling1D",
    "GlobalAveragePooling2D",
    "GlobalMaxPooling1D",
    "GlobalMaxPooling2D",
    "MaxPooling1D",
    "MaxPooling2D",
]


def _check_rank(layer: ModelLayer, x: np.ndarray, rank: int) -> None:
    if x.ndim != rank + 2:
        spatial = "steps" if rank == 1 else "rows, cols"
        layout = (
            f"(batch, {spatial}, channels)"
            if layer.data_format == "channels_last"
            else f"(batch, channels, {spatial})"
        )
        raise ValueError(
            f"Input 0 of layer {layer.name} is incompatible: expected rank {rank + 2}, "
            f"{layout}. Received: inputs with shape {x.shape}"
        )


# --------------------------------------------------------------------------- window pooling
class _Pooling(ModelLayer):
    """Max or average over windows of `pool_size`, moved by `strides` (None: pool_size)."""

    supports_masking = False  # Keras's pooling layers define no compute_mask: the mask is dropped
    _rank = 1
    _mode = "max"

    def __init__(
        self,
        pool_size: Any,
        strides: Any = None,
        padding: str = "valid",
        data_format: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.pool_size = _int_tuple(pool_size, self._rank, "pool_size")
        # Keras accepts strides of 0 here but fails on the first call: refused up front.
        self.strides = _int_tuple(pool_size if strides is None else strides, self._rank, "strides")
        self.padding = _padding_arg(padding, ("valid", "same"))
        self.data_format = _data_format_arg(data_format)

    def _forward(self, x: np.ndarray, mask: Any) -> tuple[np.ndarray, Any]:
        _check_rank(self, x, self._rank)
        shape = x.shape
        if self.data_format == "channels_first":
            x = np.moveaxis(x, 1, -1)
        ones = (1,) * self._rank
        fill = -np.inf if self._mode == "max" else 0.0
        windows = _windows(x, self.pool_size, self.strides, ones, self.padding, self, fill, shape)
        window_axes = tuple(range(-self._rank - 1, -1))  # (batch, *out, *window, channels)
        if self._mode == "max":
            y = windows.max(axis=window_axes)
        else:
            y = windows.sum(axis=window_axes) / self._counts(x.shape[1:-1], y_dtype=x.dtype)
        if self.data_format == "channels_first":
            y = np.moveaxis(y, -1, 1)
        return np.ascontiguousarray(y, dtype=self.dtype), None

    def _counts(self, spatial: Sequence[int], y_dtype: np.dtype) -> np.ndarray:
        """How many input (not padding) elements each window holds, shaped (*out, 1): Keras's
        "same" average divides by these, not by the pool size."""
        counts = np.ones((1,) * (self._rank + 1), dtype=y_dtype)
        for axis, (size, k, s) in enumerate(zip(spatial, self.pool_size, self.strides)):
            before = _padding_amounts(size, k, s, 1, self.padding)[0]
            out = (size - k) // s + 1 if self.padding == "valid" else (size - 1) // s + 1
            starts = np.arange(out) * s - before
            along = np.minimum(starts + k, size) - np.maximum(starts, 0)
            shape = [1] * (self._rank + 1)
            shape[axis] = out
            counts = counts * along.astype(y_dtype).reshape(shape)
        return counts

    def compute_output_shape(self, input_shape: Sequence[int | None]) -> Shape:
        shape = tuple(input_shape)
        channels = None
        if len(shape) == self._rank + 2:
            channels = shape[-1] if self.data_format == "channels_last" else shape[1]
        ones = (1,) * self._rank
        return _output_shape(
            self, shape, channels, self.pool_size, self.strides, ones, self.padding,
            self.data_format,
        )  # fmt: skip

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "pool_size": self.pool_size,
            "padding": self.padding,
            "strides": self.strides,
            "data_format": self.data_format,
        }


class MaxPooling1D(_Pooling):
    """Maximum over windows of `pool_size` steps, as `keras.layers.MaxPooling1D`."""

    def __init__(
        self,
        pool_size: Any = 2,
        strides: Any = None,
        padding: str = "valid",
        data_format: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(pool_size, strides, padding, data_format, **kwargs)


class MaxPooling2D(_Pooling):
    """Maximum over windows of `pool_size` pixels, as `keras.layers.MaxPooling2D`."""

    _rank = 2

    def __init__(
        self,
        pool_size: Any = (2, 2),
        strides: Any = None,
        padding: str = "valid",
        data_format: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(pool_size, strides, padding, data_format, **kwargs)


class AveragePooling1D(_Pooling):
    """Mean over windows of `pool_size` steps, as `keras.layers.AveragePooling1D` (with
    padding="same", over the window's input steps only)."""

    _mode = "average"

    def __init__(
        self,
        pool_size: Any,
        strides: Any = None,
        padding: str = "valid",
        data_format: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(pool_size, strides, padding, data_format, **kwargs)


class AveragePooling2D(_Pooling):
    """Mean over windows of `pool_size` pixels, as `keras.layers.AveragePooling2D` (with
    padding="same", over the window's input pixels only)."""

    _rank = 2
    _mode = "average"

    def __init__(
        self,
        pool_size: Any,
        strides: Any = None,
        padding: str = "valid",
        data_format: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(pool_size, strides, padding, data_format, **kwargs)


# --------------------------------------------------------------------------- global pooling
class _GlobalPooling(ModelLayer):
    """Max or mean over every spatial position; `keepdims` keeps them as size-1 axes."""

    supports_masking = False
    _rank = 1
    _mode = "max"

    def __init__(
        self, data_format: str | None = None, keepdims: bool = False, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self.data_format = _data_format_arg(data_format)
        self.keepdims = bool(keepdims)

    def _spatial_axes(self) -> tuple[int, ...]:
        first = 1 if self.data_format == "channels_last" else 2
        return tuple(range(first, first + self._rank))

    def _forward(self, x: np.ndarray, mask: Any) -> tuple[np.ndarray, Any]:
        _check_rank(self, x, self._rank)
        axes = self._spatial_axes()
        if self._mode == "max":
            y = x.max(axis=axes, keepdims=self.keepdims)
        else:
            y = x.mean(axis=axes, keepdims=self.keepdims)
        return np.asarray(y, dtype=self.dtype), None

    def compute_output_shape(self, input_shape: Sequence[int | None]) -> Shape:
        shape = tuple(input_shape)
        if len(shape) != self._rank + 2:
            raise ValueError(
                f"Input 0 of layer {self.name} is incompatible: expected rank "
                f"{self._rank + 2}. Received: input_shape={shape}"
            )
        channels = shape[-1] if self.data_format == "channels_last" else shape[1]
        kept = (1,) * self._rank if self.keepdims else ()
        if self.data_format == "channels_last":
            return (shape[0], *kept, channels)
        return (shape[0], channels, *kept)

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "data_format": self.data_format,
            "keepdims": self.keepdims,
        }


class GlobalMaxPooling1D(_GlobalPooling):
    """Maximum over all steps, as `keras.layers.GlobalMaxPooling1D`. Like Keras it ignores a
    mask (masked steps take part in the maximum) and hands none on."""


class GlobalMaxPooling2D(_GlobalPooling):
    """Maximum over all pixels, as `keras.layers.GlobalMaxPooling2D`."""

    _rank = 2


class GlobalAveragePooling2D(_GlobalPooling):
    """Mean over all pixels, as `keras.layers.GlobalAveragePooling2D`."""

    _rank = 2
    _mode = "average"


class GlobalAveragePooling1D(_GlobalPooling):
    """Mean over all steps, as `keras.layers.GlobalAveragePooling1D`; with a mask, the mean
    of the unmasked steps (NaN for a fully masked row, as Keras's 0 / 0). No mask is handed on.
    """

    supports_masking = True  # reads the mask (Keras's compute_mask then returns None)
    _mode = "average"

    def _forward(self, x: np.ndarray, mask: Any) -> tuple[np.ndarray, Any]:
        if mask is None:
            return super()._forward(x, None)
        _check_rank(self, x, 1)
        steps_axis = self._spatial_axes()[0]
        mask = np.asarray(mask)
        expected = (x.shape[0], x.shape[steps_axis])
        if mask.shape != expected:
            raise ValueError(
                f"The mask given to {self.name} must have shape (batch, steps) = {expected}. "
                f"Received: mask with shape {mask.shape} for inputs with shape {x.shape}"
            )
        keep = np.expand_dims(mask.astype(bool), 2 if steps_axis == 1 else 1)
        total = np.where(keep, x, x.dtype.type(0)).sum(axis=steps_axis, keepdims=self.keepdims)
        count = keep.astype(x.dtype).sum(axis=steps_axis, keepdims=self.keepdims)
        with np.errstate(invalid="ignore", divide="ignore"):
            y = total / count
        return np.asarray(y, dtype=self.dtype), None

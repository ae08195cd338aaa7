"""Initializers without randomness: Zeros, Ones, Constant, Identity, and a fixed array."""

from __future__ import annotations

import numpy as np

from .initializer import Initializer, _check_number, _standardize_dtype, _standardize_shape


class Zeros(Initializer):
    """All zeros."""

    def __call__(self, shape, dtype="float32"):
        """Return zeros of the given shape and dtype."""
        return np.zeros(_standardize_shape(shape), dtype=_standardize_dtype(dtype, False))


class Ones(Initializer):
    """All ones."""

    def __call__(self, shape, dtype="float32"):
        """Return ones of the given shape and dtype."""
        return np.ones(_standardize_shape(shape), dtype=_standardize_dtype(dtype, False))


class Constant(Initializer):
    """Every element equals ``value`` (a scalar, or an array broadcastable to the shape)."""

    def __init__(self, value=0.0):
        arr = np.asarray(value)
        if arr.dtype.kind not in "biuf":
            raise ValueError(
                "Argument `value` must be a real number (or an array of them). "
                f"Received: value={value!r}"
            )
        self.value = value

    def __call__(self, shape, dtype="float32"):
        """Return an array filled with (or broadcast from) ``value``."""
        shape = _standardize_shape(shape)
        dtype = _standardize_dtype(dtype, False)
        value = np.asarray(self.value)
        try:
            return np.array(np.broadcast_to(value.astype(dtype), shape))
        except ValueError:
            raise ValueError(
                f"Argument `value` of Constant has shape {value.shape}, which cannot be "
                f"broadcast to the requested shape. Received: shape={shape}"
            ) from None

    def get_config(self):
        value = self.value
        if isinstance(value, (np.ndarray, np.generic)):
            value = value.tolist()
        return {"value": value}

    @classmethod
    def from_config(cls, config):
        value = config.get("value", 0.0)
        if isinstance(value, dict) and value.get("class_name") == "__numpy__":
            inner = value["config"]
            value = np.asarray(inner["value"], dtype=inner.get("dtype"))
        return cls(value)


class Identity(Initializer):
    """``gain`` times the identity matrix (2-D shapes only; non-square allowed)."""

    def __init__(self, gain=1.0):
        _check_number("gain", gain)
        self.gain = gain

    def __call__(self, shape, dtype="float32"):
        """Return ``gain * eye(rows, cols)``."""
        shape = _standardize_shape(shape)
        if len(shape) != 2:
            raise ValueError(
                "Identity initializer can only be used for 2D matrices. "
                f"Received: shape={shape} of rank {len(shape)}."
            )
        dtype = _standardize_dtype(dtype, False)
        return (self.gain * np.eye(*shape)).astype(dtype)

    def get_config(self):
        return {"gain": self.gain}


class _FromArray(Initializer):
    """Returns a fixed array (cast to the dtype); the requested shape must equal its shape."""

    def __init__(self, array):
        self.array = np.asarray(array)

    def __call__(self, shape, dtype="float32"):
        """Return the stored array cast to ``dtype``."""
        shape = _standardize_shape(shape)
        if shape != self.array.shape:
            raise ValueError(
                f"Expected `shape` to be {self.array.shape} for an array used as initializer. "
                f"Received: shape={shape}"
            )
        return self.array.astype(_standardize_dtype(dtype, False))

    def get_config(self):
        return {"array": self.array.tolist()}

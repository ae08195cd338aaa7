"""Dtype and shape policy: every array is checked and converted once, here, before C++ sees it."""

from __future__ import annotations

from typing import Any

import numpy as np

FLOAT_DTYPES = ("float32", "float64")


def standardize_dtype(dtype: Any) -> str:
    """A layer's dtype: None means float32; float32 and float64 are supported."""
    if dtype is None:
        return "float32"
    try:
        name = np.dtype(dtype).name
    except TypeError:
        name = None
    if name not in FLOAT_DTYPES:
        raise ValueError(
            "`dtype` must be 'float32' or 'float64' (or None for float32). "
            f"Received: dtype={dtype!r}"
        )
    return name


def describe(value: Any) -> str:
    """A short description of what was received, for error messages."""
    if isinstance(value, np.ndarray):
        return f"array of shape {value.shape} and dtype {value.dtype}"
    return f"{type(value).__name__} {value!r}"[:200]


def as_float_array(value: Any, dtype: str, name: str) -> np.ndarray:
    """`value` as a C-contiguous array of `dtype`: floats, ints and bools convert; complex,
    object, string and other kinds are refused with a TypeError naming the argument."""
    if isinstance(value, np.ndarray):
        array = value
    else:
        try:
            array = np.asarray(value)
        except (ValueError, TypeError) as error:
            raise TypeError(
                f"`{name}` must be an array of numbers. Received: {describe(value)} ({error})"
            ) from None
    if array.dtype.kind not in "biuf":
        raise TypeError(
            f"`{name}` must be an array of real numbers (float, int or bool); "
            f"received an array of dtype {array.dtype}."
        )
    # np.asarray, not np.ascontiguousarray: that one turns a 0-d array into shape (1,), and the
    # rank error would then report a shape the caller never passed.
    try:
        array = np.asarray(array, dtype=dtype, order="C")
        # A view at an odd byte offset: the kernels read whole elements (an aligned copy).
        return array if array.flags.aligned else array.copy()
    except (MemoryError, ValueError) as error:  # ValueError: NumPy's "array is too big"
        raise MemoryError(
            f"`{name}` cannot be converted to a contiguous {dtype} array: {describe(array)} "
            f"({error})"
        ) from None


def as_mask(value: Any, shape: tuple[int, int], name: str = "mask") -> np.ndarray:
    """A boolean mask of exactly `shape`, C-contiguous."""
    if isinstance(value, np.ndarray):
        array = value
    else:
        try:
            array = np.asarray(value)
        except (ValueError, TypeError) as error:
            raise TypeError(
                f"`{name}` must be a boolean array of shape {shape}. "
                f"Received: {describe(value)} ({error})"
            ) from None
    if array.dtype.kind not in "biuf":
        raise TypeError(f"`{name}` must be a boolean array; received dtype {array.dtype}.")
    if array.shape != shape:
        raise ValueError(f"`{name}` must have shape {shape}. Received: {describe(array)}")
    return np.ascontiguousarray(array, dtype=bool)

"""The small set of array ops that Keras-style custom cells call inside ``call()``.

Thin NumPy wrappers with the signatures of ``keras.ops`` (Keras 3) and, where they differ, the
extra arguments of tf.keras 2's ``keras.backend`` (``K``), so a cell written as::

    from keras import ops                # Keras 3
    from keras import backend as K       # tf.keras 2

runs with ``from rnnkit import ops`` / ``from rnnkit import ops as K`` instead. Inside a cell
every array is a ``numpy.ndarray``.

Differences from ``keras.ops`` worth knowing:

* ``concatenate(xs, axis=-1)`` defaults to the last axis, like tf.keras 2's
  ``K.concatenate``; ``keras.ops.concatenate`` defaults to ``axis=0``. Pass ``axis``
  explicitly in code meant for both.
* ``shape(x)`` returns a tuple of ints (as ``keras.ops.shape`` does), not a tensor.
* float64 stays float64. (Keras 3's NumPy backend turns float64 inputs of most ops into
  float32; rnnkit supports float64 end to end.)

dtype rules (binary ops, ``where``, ``concatenate``, ``stack``, ``dot``, ``matmul``,
``bias_add``): the floating dtypes of the array operands decide; integer and boolean arrays
do not widen a float (an int64 mask times a float32 state is float32, as in Keras/JAX).
Python scalars and NumPy scalars are "weak": they take the arrays' dtype, so
``multiply(x32, np.float64(0.5))`` stays float32 under NumPy 2's NEP 50 promotion. With only
scalars, Python floats give float32 and Python ints int32 (Keras's defaults). Unary float ops
(``exp``, ``tanh``, ``sigmoid``, ``softmax``, ``mean``) return float32 for integer or boolean
input and keep floating dtypes.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "add",
    "bias_add",
    "cast",
    "clip",
    "concatenate",
    "convert_to_tensor",
    "divide",
    "dot",
    "exp",
    "expand_dims",
    "matmul",
    "maximum",
    "mean",
    "minimum",
    "multiply",
    "ones_like",
    "relu",
    "reshape",
    "shape",
    "sigmoid",
    "softmax",
    "split",
    "squeeze",
    "stack",
    "subtract",
    "sum",
    "tanh",
    "transpose",
    "where",
    "zeros",
    "zeros_like",
]

_FLOATX = np.dtype("float32")
_INTX = np.dtype("int32")


# --------------------------------------------------------------------------- dtype policy


def _is_python_scalar(x):
    return isinstance(x, (bool, int, float, complex))


def _leaves(x):
    """Yield the leaves of nested lists/tuples."""
    if isinstance(x, (list, tuple)):
        for item in x:
            yield from _leaves(item)
    else:
        yield x


def _scalar_kind(x):
    """NumPy kind letter of a Python scalar: 'b', 'i', 'f' or 'c'."""
    if isinstance(x, bool):
        return "b"
    if isinstance(x, int):
        return "i"
    return "f" if isinstance(x, float) else "c"


def _weak_default(kinds):
    """dtype for operands that are all Python scalars of the given kinds ('b', 'i', 'f', 'c')."""
    if "c" in kinds:
        return np.dtype("complex64")
    if "f" in kinds:
        return _FLOATX
    if "i" in kinds:
        return _INTX
    return np.dtype("bool") if kinds else _FLOATX


def _result_dtype(*items):
    """The dtype the operands are promoted to (see the module docstring)."""
    arrays, np_scalars, weak_kinds = [], [], set()
    for item in items:
        for leaf in _leaves(item):
            if isinstance(leaf, np.ndarray):
                arrays.append(leaf.dtype)
            elif isinstance(leaf, np.generic):
                np_scalars.append(leaf.dtype)
            elif _is_python_scalar(leaf):
                weak_kinds.add(_scalar_kind(leaf))
            else:
                arrays.append(np.asarray(leaf).dtype)
    strong = arrays or np_scalars
    if not strong:
        return _weak_default(weak_kinds)
    if arrays and np_scalars:
        # NumPy scalars are weak next to arrays: only their kind matters.
        weak_kinds.update("i" if dt.kind == "u" else dt.kind for dt in np_scalars)
    inexact = [dt for dt in strong if dt.kind in "fc"]
    base = np.result_type(*inexact) if inexact else np.result_type(*strong)
    if base.kind in "biu" and weak_kinds & {"f", "c"}:
        return np.dtype("complex64") if "c" in weak_kinds else _FLOATX
    if base.kind == "f" and "c" in weak_kinds:
        return np.result_type(base, np.complex64)
    if base.kind == "b" and "i" in weak_kinds:
        return _INTX
    return base


def _as(x, dtype):
    """``x`` as an array of ``dtype`` (no copy when it already is one)."""
    return np.asarray(x, dtype=dtype)


def _float_array(x):
    """``x`` as an array; integer and boolean data become float32."""
    x = convert_to_tensor(x)
    return x if x.dtype.kind in "fc" else x.astype(_FLOATX)


def _binary(fn, x1, x2):
    dtype = _result_dtype(x1, x2)
    return np.asarray(fn(_as(x1, dtype), _as(x2, dtype)))


# --------------------------------------------------------------------------- conversion


def convert_to_tensor(x, dtype=None, sparse=None, ragged=None):
    """Return ``x`` as a NumPy array (Python floats become float32, Python ints int32)."""
    if sparse or ragged:
        raise ValueError(
            "rnnkit arrays are dense NumPy arrays; `sparse` and `ragged` are not supported. "
            f"Received: sparse={sparse}, ragged={ragged}"
        )
    if dtype is not None:
        return np.asarray(x, dtype=dtype)
    if isinstance(x, np.ndarray):
        return x
    return np.asarray(x, dtype=_result_dtype(x))


def cast(x, dtype):
    """Return ``x`` converted to ``dtype`` (no copy when it already has it)."""
    return np.asarray(x).astype(dtype, copy=False)


def shape(x):
    """Return the shape of ``x`` as a tuple of ints."""
    return tuple(np.shape(x))


def zeros(shape, dtype=None):
    """Return a new array of zeros (float32 by default)."""
    return np.zeros(shape, dtype=_FLOATX if dtype is None else dtype)


def zeros_like(x, dtype=None):
    """Return zeros with the shape (and, by default, the dtype) of ``x``."""
    return np.zeros_like(convert_to_tensor(x), dtype=dtype)


def ones_like(x, dtype=None):
    """Return ones with the shape (and, by default, the dtype) of ``x``."""
    return np.ones_like(convert_to_tensor(x), dtype=dtype)


# --------------------------------------------------------------------------- arithmetic


def add(x1, x2):
    """Element-wise ``x1 + x2`` with broadcasting."""
    return _binary(np.add, x1, x2)


def subtract(x1, x2):
    """Element-wise ``x1 - x2`` with broadcasting."""
    return _binary(np.subtract, x1, x2)


def multiply(x1, x2):
    """Element-wise ``x1 * x2`` with broadcasting."""
    return _binary(np.multiply, x1, x2)


def divide(x1, x2):
    """Element-wise true division ``x1 / x2`` (integer inputs give float32)."""
    dtype = _result_dtype(x1, x2)
    if dtype.kind in "biu":
        dtype = _FLOATX
    return np.asarray(np.divide(_as(x1, dtype), _as(x2, dtype)))


def maximum(x1, x2):
    """Element-wise maximum with broadcasting (NaN propagates)."""
    return _binary(np.maximum, x1, x2)


def minimum(x1, x2):
    """Element-wise minimum with broadcasting (NaN propagates)."""
    return _binary(np.minimum, x1, x2)


def matmul(x1, x2):
    """Matrix product with NumPy ``matmul`` broadcasting over leading axes."""
    return _binary(np.matmul, x1, x2)


def dot(x1, x2):
    """``numpy.dot``: contracts the last axis of ``x1`` with the second-to-last of ``x2``."""
    return _binary(np.dot, x1, x2)


def clip(x, x_min, x_max):
    """Clip values to ``[x_min, x_max]``; the result keeps the dtype of ``x``."""
    x = convert_to_tensor(x)
    dtype = _INTX if x.dtype == np.bool_ else x.dtype
    return np.asarray(np.clip(x, x_min, x_max)).astype(dtype, copy=False)


def where(condition, x1=None, x2=None):
    """Choose ``x1`` where ``condition`` holds else ``x2``; with one argument, the indices."""
    if x1 is None and x2 is None:
        return np.where(condition)
    if x1 is None or x2 is None:
        raise ValueError(
            "`where` needs both `x1` and `x2`, or neither. "
            f"Received: x1={'None' if x1 is None else 'an array'}, "
            f"x2={'None' if x2 is None else 'an array'}"
        )
    dtype = _result_dtype(x1, x2)
    return np.where(np.asarray(condition, dtype=bool), _as(x1, dtype), _as(x2, dtype))


def sum(x, axis=None, keepdims=False):
    """Sum over ``axis`` (all axes by default); bool and small ints sum to int32."""
    x = convert_to_tensor(x)
    if x.dtype.kind in "fc" or x.dtype.itemsize >= 4:
        dtype = x.dtype
    else:
        dtype = np.dtype("uint32") if x.dtype.kind == "u" else _INTX
    axis = tuple(axis) if isinstance(axis, list) else axis
    return np.asarray(np.sum(x, axis=axis, keepdims=keepdims, dtype=dtype))


def mean(x, axis=None, keepdims=False):
    """Mean over ``axis`` (all axes by default); integer input gives float32."""
    x = convert_to_tensor(x)
    axis = tuple(axis) if isinstance(axis, list) else axis
    if x.dtype.kind in "fc":
        return np.asarray(np.mean(x, axis=axis, keepdims=keepdims))
    return np.asarray(np.mean(x, axis=axis, keepdims=keepdims, dtype=np.float64)).astype(_FLOATX)


def bias_add(x, bias, data_format=None):
    """Add ``bias`` along the channel axis (last for ``"channels_last"``, 1 otherwise)."""
    x = convert_to_tensor(x)
    bias = convert_to_tensor(bias)
    if data_format is None:
        data_format = "channels_last"
    if data_format not in ("channels_last", "channels_first"):
        raise ValueError(
            "Argument `data_format` must be 'channels_last' or 'channels_first'. "
            f"Received: data_format={data_format!r}"
        )
    if x.ndim < 2 and data_format == "channels_first":
        raise ValueError(
            "`bias_add` with data_format='channels_first' needs `x` of rank >= 2. "
            f"Received: x.shape={x.shape}"
        )
    channel_axis = -1 if data_format == "channels_last" else 1
    if bias.ndim == 1:
        if x.ndim == 0 or x.shape[channel_axis] != bias.shape[0]:
            raise ValueError(
                f"`bias` of shape {bias.shape} does not match the channel axis of `x` "
                f"({data_format}). Received: x.shape={x.shape}"
            )
        if channel_axis == 1:
            bias = bias.reshape((1, -1) + (1,) * (x.ndim - 2))
    elif bias.ndim != x.ndim - 1 or bias.shape != x.shape[1:]:
        raise ValueError(
            "`bias` must be 1-D with one value per channel, or have the shape of `x` without "
            f"its batch axis. Received: bias.shape={bias.shape}, x.shape={x.shape}"
        )
    return add(x, bias)


# --------------------------------------------------------------------------- activations


def exp(x):
    """Element-wise exponential."""
    return np.asarray(np.exp(_float_array(x)))


def tanh(x):
    """Element-wise hyperbolic tangent."""
    return np.asarray(np.tanh(_float_array(x)))


def sigmoid(x):
    """Element-wise logistic ``1 / (1 + exp(-x))``, without overflow warnings."""
    x = _float_array(x)
    z = np.exp(-np.abs(x))
    one = np.ones((), dtype=x.dtype)
    return np.where(x >= 0, one / (one + z), z / (one + z))


def relu(x, negative_slope=0.0, max_value=None, threshold=0.0, *, alpha=None):
    """ReLU with ``keras.activations.relu``'s options (``alpha``: tf.keras 2's name for the slope).

    ``x`` where ``threshold < x < max_value``, ``max_value`` above it, and
    ``negative_slope * (x - threshold)`` below the threshold.
    """
    x = convert_to_tensor(x)
    if alpha is not None:
        negative_slope = alpha
    dtype = x.dtype
    zero = np.zeros((), dtype=dtype)
    slope = np.asarray(negative_slope, dtype=dtype)
    thr = np.asarray(threshold, dtype=dtype)
    if negative_slope != 0:
        if max_value is None and threshold == 0:
            return np.asarray(np.maximum(x, slope * x))  # leaky ReLU
        below = np.maximum(thr - x, zero)
    out = np.where(x > thr, x, zero) if threshold != 0 else np.maximum(x, zero)
    if max_value is not None:
        out = np.clip(out, zero, np.asarray(max_value, dtype=dtype))
    if negative_slope != 0:
        out = out - slope * below
    return np.asarray(out).astype(dtype, copy=False)


def softmax(x, axis=-1):
    """Softmax along ``axis``: ``exp(x - max) / sum(exp(x - max))``."""
    x = _float_array(x)
    axis = tuple(axis) if isinstance(axis, list) else axis
    e = np.exp(x - np.max(x, axis=axis, keepdims=True))
    return np.asarray(e / np.sum(e, axis=axis, keepdims=True))


# --------------------------------------------------------------------------- shapes


def concatenate(xs, axis=-1):
    """Join a sequence of arrays along ``axis`` (default: the last axis, as ``K.concatenate``)."""
    dtype = _result_dtype(*xs)
    return np.concatenate([_as(x, dtype) for x in xs], axis=axis)


def stack(x, axis=0):
    """Join a sequence of same-shape arrays along a new axis."""
    dtype = _result_dtype(*x)
    return np.stack([_as(a, dtype) for a in x], axis=axis)


def split(x, indices_or_sections, axis=0):
    """Split ``x`` into equal sections or at the given indices; returns a list."""
    return np.split(convert_to_tensor(x), indices_or_sections, axis=axis)


def transpose(x, axes=None):
    """Permute the axes (reverse them by default)."""
    axes = tuple(axes) if isinstance(axes, list) else axes
    return np.transpose(convert_to_tensor(x), axes=axes)


def reshape(x, newshape):
    """Give ``x`` a new shape with the same number of elements (one ``-1`` allowed)."""
    return np.reshape(convert_to_tensor(x), newshape)


def expand_dims(x, axis=-1):
    """Insert a length-1 axis at ``axis`` (default: last, as ``K.expand_dims``)."""
    return np.expand_dims(convert_to_tensor(x), axis)


def squeeze(x, axis=None):
    """Remove length-1 axes (all of them, or those in ``axis``)."""
    axis = tuple(axis) if isinstance(axis, list) else axis
    return np.squeeze(convert_to_tensor(x), axis=axis)

"""Merge layers, as `keras.layers`: Add, Subtract, Multiply, Average, Maximum, Minimum,
Concatenate and Dot, each called on a list of arrays.

Elementwise merges broadcast as Keras does (an input of lower rank gets size-1 axes after the
batch axis). Masks follow Keras: an elementwise merge hands on the OR of its inputs' masks when
every input has one (else none); Multiply, Maximum and Minimum also use the masks in the
computation (a masked element does not take part; not the mask of an input of lower rank,
which Keras's expand_dims drops); Concatenate ORs its inputs' masks along the concatenated axis;
Dot hands on none.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from .._arrays import as_float_array, describe
from .core import ModelLayer, Shape

__all__ = ["Add", "Average", "Concatenate", "Dot", "Maximum", "Minimum", "Multiply", "Subtract"]


class _Merge(ModelLayer):
    """The base of merge layers: a list of inputs in, one output."""

    _exact_inputs: int | None = None  # Subtract and Dot take exactly two

    def _prepare_inputs(self, inputs: Any) -> list[np.ndarray]:
        if not isinstance(inputs, (list, tuple)) or isinstance(inputs, np.ndarray):
            raise ValueError(
                f"A merge layer ({self.name}) should be called on a list of inputs. Received: "
                f"{describe(inputs)}"
            )
        if not inputs or (self._exact_inputs and len(inputs) != self._exact_inputs):
            count = self._exact_inputs or "at least 1"
            raise ValueError(
                f"A `{type(self).__name__}` layer should be called on {count} inputs. Received "
                f"{len(inputs)} inputs."
            )
        arrays = [as_float_array(x, self.dtype, f"inputs[{i}]") for i, x in enumerate(inputs)]
        batches = {a.shape[0] for a in arrays if a.ndim}
        if len(batches) > 1 and not self._joins_batches(arrays):
            raise ValueError(
                f"Cannot merge tensors with different batch sizes ({self.name}). Received "
                f"tensors with shapes {[a.shape for a in arrays]}"
            )
        return arrays

    def _joins_batches(self, arrays: list[np.ndarray]) -> bool:
        return False

    def _run(self, inputs: Any, mask: Any, training: bool) -> tuple[Any, Any]:
        arrays = self._prepare_inputs(inputs)
        if not self.built:
            self.build([a.shape for a in arrays])
        masks = list(mask) if isinstance(mask, (list, tuple)) else [mask] * len(arrays)
        if len(masks) != len(arrays):
            raise ValueError(
                f"{self.name}: `mask` should be a list of {len(arrays)} masks. Received "
                f"{len(masks)}."
            )
        return self._forward(arrays, masks)

    def _forward(self, x: Any, mask: Any) -> tuple[np.ndarray, Any]:
        arrays = _same_rank(x)
        try:
            np.broadcast_shapes(*(a.shape for a in arrays))
        except ValueError:
            raise ValueError(
                f"Inputs of {self.name} have incompatible shapes. Received shapes "
                f"{[a.shape for a in x]}"
            ) from None
        # Keras expands a lower-rank input with expand_dims, a new tensor without the mask:
        # that input's mask takes no part in the computation (the output mask still ORs it).
        used = [None if a.ndim < arrays[0].ndim else m for a, m in zip(x, mask)]
        return self._merge(arrays, used), _or_masks(mask, self.name)

    def _merge(self, x: list[np.ndarray], masks: list[Any]) -> np.ndarray:
        raise NotImplementedError

    def compute_output_shape(self, input_shape: Sequence[Any]) -> Shape:
        """As Keras: the non-batch dims combine pair by pair, right-aligned (an unknown dim
        makes the result unknown); the batch is the one known batch size, else None."""
        shapes = [tuple(s) for s in input_shape]
        out = shapes[0][1:]
        for shape in shapes[1:]:
            longer, other = (out, shape[1:]) if len(out) >= len(shape) - 1 else (shape[1:], out)
            dims = list(longer[: len(longer) - len(other)])
            for i, j in zip(longer[len(longer) - len(other) :], other):
                if i is not None and j is not None and 1 not in (i, j) and i != j:
                    raise ValueError(
                        f"Inputs of {self.name} have incompatible shapes. Received shapes "
                        f"{shapes}"
                    )
                dims.append(None if None in (i, j) else j if i == 1 else i)
            out = tuple(dims)
        batches = {s[0] for s in shapes if s} - {None}
        return (batches.pop() if len(batches) == 1 else None, *out)


def _same_rank(arrays: list[np.ndarray]) -> list[np.ndarray]:
    """Inputs of lower rank get size-1 axes after the batch axis, as Keras merges them."""
    rank = max(a.ndim for a in arrays)
    return [a.reshape(a.shape[:1] + (1,) * (rank - a.ndim) + a.shape[1:]) for a in arrays]


def _or_masks(masks: list[Any], name: str) -> Any:
    """Keras's merge mask: the OR of the inputs' masks when every input has one, broadcast
    one after the other as Keras's ops.logical_or (masks of (batch, 1) and (batch, steps))."""
    if any(m is None for m in masks):
        return None
    out = np.asarray(masks[0], dtype=bool)
    for m in masks[1:]:
        try:
            out = np.logical_or(out, np.asarray(m, dtype=bool))
        except ValueError:
            raise ValueError(
                f"{name}: cannot OR the masks of the inputs, of shapes "
                f"{[np.shape(m) for m in masks]}."
            ) from None
    return out


def _expand(mask: Any, x: np.ndarray) -> Any:
    """A (batch, time) mask broadcast over the features of x."""
    return None if mask is None else np.broadcast_to(np.asarray(mask)[..., None], x.shape)


class Add(_Merge):
    """The elementwise sum of the inputs."""

    def _merge(self, x: list[np.ndarray], masks: list[Any]) -> np.ndarray:
        out = x[0]
        for other in x[1:]:
            out = out + other
        return out


class Subtract(_Merge):
    """inputs[0] - inputs[1]."""

    _exact_inputs = 2

    def _merge(self, x: list[np.ndarray], masks: list[Any]) -> np.ndarray:
        return x[0] - x[1]


class Average(_Merge):
    """The elementwise mean of the inputs."""

    def _merge(self, x: list[np.ndarray], masks: list[Any]) -> np.ndarray:
        out = x[0]
        for other in x[1:]:
            out = out + other
        return out / out.dtype.type(len(x))


class Multiply(_Merge):
    """The elementwise product of the inputs; a masked element counts as 1, and where every
    input is masked the output is 0 (when every input has a mask), as Keras."""

    def _merge(self, x: list[np.ndarray], masks: list[Any]) -> np.ndarray:
        expanded = [_expand(m, a) for a, m in zip(x, masks)]
        out = None
        for a, m in zip(x, expanded):
            if m is not None:
                a = np.where(m, a, a.dtype.type(1))
            out = a if out is None else out * a
        if all(m is not None for m in expanded):
            # OR pair by pair: masks of broadcastable inputs ((B, T, F), (B, 1, F)) broadcast.
            kept = expanded[0]
            for m in expanded[1:]:
                kept = np.logical_or(kept, m)
            out = np.where(kept, out, out.dtype.type(0))
        return out


class _Extremum(_Merge):
    """Maximum and Minimum: masked elements are replaced by the other operand, as Keras."""

    _operation = staticmethod(np.maximum)

    def _merge(self, x: list[np.ndarray], masks: list[Any]) -> np.ndarray:
        out, out_mask = None, None
        for a, m in zip(x, masks):
            m = _expand(m, a)
            if out is None:
                out, out_mask = a, m
                continue
            if m is not None:
                a = np.where(m, a, out)
            if out_mask is not None:
                out = np.where(out_mask, out, a)
            out_mask = None if m is None or out_mask is None else np.logical_or(out_mask, m)
            out = self._operation(out, a)
        return out


class Maximum(_Extremum):
    """The elementwise maximum of the inputs."""


class Minimum(_Extremum):
    """The elementwise minimum of the inputs."""

    _operation = staticmethod(np.minimum)


class Concatenate(_Merge):
    """The inputs joined along `axis` (the last by default); the output mask is the OR over
    the features of the inputs' masks joined the same way (an input without a mask counts as
    unmasked), as Keras."""

    def __init__(self, axis: int = -1, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.axis = int(axis)

    def _joins_batches(self, arrays: list[np.ndarray]) -> bool:
        return bool(arrays[0].ndim) and self.axis % arrays[0].ndim == 0  # axis 0, as Keras

    def _forward(self, x: Any, mask: Any) -> tuple[np.ndarray, Any]:
        ranks = {a.ndim for a in x}
        axis = self.axis % x[0].ndim if x[0].ndim else 0
        others = {a.shape[:axis] + a.shape[axis + 1 :] for a in x}
        if len(ranks) != 1 or len(others) != 1:
            raise ValueError(
                f"A `Concatenate` layer ({self.name}) requires inputs with matching shapes "
                f"except for the concatenation axis. Received: input_shape="
                f"{[a.shape for a in x]}"
            )
        out = np.concatenate(x, axis=self.axis)
        if all(m is None for m in mask):
            return out, None
        full = [
            np.ones(a.shape, dtype=bool) if m is None
            else np.broadcast_to(np.asarray(m, dtype=bool).reshape(
                np.shape(m) + (1,) * (a.ndim - np.ndim(m))), a.shape)
            for a, m in zip(x, mask)
        ]
        return out, np.any(np.concatenate(full, axis=self.axis), axis=-1)

    def compute_output_shape(self, input_shape: Sequence[Any]) -> Shape:
        shapes = [list(s) for s in input_shape]
        out = shapes[0][:]
        axis = self.axis % len(out)
        sizes = [s[axis] for s in shapes]
        out[axis] = None if None in sizes else sum(sizes)
        return tuple(out)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "axis": self.axis}


class Dot(_Merge):
    """The dot product of two inputs along `axes` (one axis, or one per input), per sample,
    as Keras's `batch_dot`; `normalize=True` L2-normalizes both along those axes first."""

    _exact_inputs = 2

    def __init__(self, axes: int | Sequence[int], normalize: bool = False, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if not isinstance(axes, (int, np.integer)):
            if (
                not isinstance(axes, (list, tuple))
                or len(axes) != 2
                or not all(isinstance(a, (int, np.integer)) for a in axes)
            ):
                raise ValueError(
                    "Invalid format for argument `axes`: it should be an int or a list of 2 "
                    f"ints. Received: axes={axes!r}"
                )
            axes = [int(a) for a in axes]
        self.axes: Any = int(axes) if isinstance(axes, (int, np.integer)) else axes
        self.normalize = bool(normalize)

    def _axes_for(self, ranks: Sequence[int]) -> list[int]:
        axes = [self.axes] * 2 if isinstance(self.axes, int) else list(self.axes)
        return [a % r if a < 0 else a for a, r in zip(axes, ranks)]

    def _forward(self, x: Any, mask: Any) -> tuple[np.ndarray, Any]:
        a, b = x
        axis_a, axis_b = self._axes_for([a.ndim, b.ndim])
        if 0 in (axis_a, axis_b) or axis_a >= a.ndim or axis_b >= b.ndim:
            raise ValueError(
                f"{self.name}: cannot take the dot product over axes {[axis_a, axis_b]} of "
                f"inputs of shapes {a.shape} and {b.shape} (axis 0 is the batch)."
            )
        if a.shape[axis_a] != b.shape[axis_b]:
            raise ValueError(
                f"Cannot do batch_dot on inputs with shapes {a.shape} and {b.shape} with axes="
                f"{[axis_a, axis_b]}. x.shape[{axis_a}] != y.shape[{axis_b}] "
                f"({a.shape[axis_a]} != {b.shape[axis_b]})."
            )
        if self.normalize:
            a, b = _l2_normalize(a, axis_a), _l2_normalize(b, axis_b)
        left = np.moveaxis(a, axis_a, -1)
        right = np.moveaxis(b, axis_b, 1)
        batch = a.shape[0]
        product = left.reshape(batch, -1, left.shape[-1]) @ right.reshape(
            batch, right.shape[1], -1
        )
        out = product.reshape((batch, *left.shape[1:-1], *right.shape[2:]))
        return (out.reshape(batch, 1) if out.ndim == 1 else out), None

    def compute_output_shape(self, input_shape: Sequence[Any]) -> Shape:
        first, second = (list(s) for s in input_shape)
        axis_a, axis_b = self._axes_for([len(first), len(second)])
        first.pop(axis_a)
        second.pop(axis_b)
        out = first + second[1:]
        return tuple(out + [1] if len(out) == 1 else out)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "axes": self.axes, "normalize": self.normalize}


def _l2_normalize(x: np.ndarray, axis: int) -> np.ndarray:
    """Keras 3's ops.normalize: x * min(1 / norm, 1 / epsilon), epsilon = backend.epsilon()
    = 1e-7 (tf.keras 2's l2_normalize floored the squared sum at 1e-12, the norm at 1e-6)."""
    square_sum = np.sum(np.square(x), axis=axis, keepdims=True)
    with np.errstate(divide="ignore"):  # a zero vector: 1/0 = inf, then capped at 1e7
        inv_norm = 1.0 / np.sqrt(square_sum)
    return x * np.minimum(inv_norm, x.dtype.type(1e7))

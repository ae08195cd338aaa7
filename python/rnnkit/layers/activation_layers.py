"""Activation layers of Keras 3 for inference (NumPy): ReLU, LeakyReLU, PReLU (with its learned
`alpha`), ELU and Softmax. All hand the mask on unchanged, as Keras does; Softmax also uses it,
as Keras's `Softmax.call(inputs, mask)`: masked positions get no probability.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np

from .core import ModelLayer

__all__ = ["ELU", "LeakyReLU", "PReLU", "ReLU", "Softmax"]

Shape = tuple  # a shape with None for unknown dimensions


def _number(value: Any, name: str, layer: str) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        raise ValueError(
            f"`{name}` of a {layer} layer must be a number. Received: {name}={value!r}"
        ) from None


# --------------------------------------------------------------------------- ReLU family
class ReLU(ModelLayer):
    """Rectified linear unit, as `keras.layers.ReLU`: `x` for threshold < x < max_value,
    `max_value` above it, `negative_slope * (x - threshold)` below the threshold."""

    def __init__(
        self,
        max_value: float | None = None,
        negative_slope: float = 0.0,
        threshold: float = 0.0,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if max_value is not None and _number(max_value, "max_value", "ReLU") < 0.0:
            raise ValueError(
                "max_value of a ReLU layer cannot be a negative value. "
                f"Received: max_value={max_value}"
            )
        if negative_slope is None or _number(negative_slope, "negative_slope", "ReLU") < 0.0:
            raise ValueError(
                "negative_slope of a ReLU layer cannot be None or a negative value. "
                f"Received: negative_slope={negative_slope}"
            )
        if threshold is None or _number(threshold, "threshold", "ReLU") < 0.0:
            raise ValueError(
                "threshold of a ReLU layer cannot be None or a negative value. "
                f"Received: threshold={threshold}"
            )
        self.max_value = None if max_value is None else float(max_value)
        self.negative_slope = float(negative_slope)
        self.threshold = float(threshold)

    def call(self, inputs: np.ndarray) -> np.ndarray:
        x = inputs
        cast = x.dtype.type
        slope = self.negative_slope
        if slope != 0.0:
            if self.max_value is None and self.threshold == 0.0:
                # Keras's leaky_relu: max(x, slope * x), which for slope > 1 swaps the sides.
                return np.maximum(x, cast(slope) * x)
            negative = np.maximum(cast(self.threshold) - x, cast(0.0))
        if self.threshold != 0.0:
            y = np.where(x > cast(self.threshold), x, cast(0.0))
        else:
            y = np.maximum(x, cast(0.0))
        if self.max_value is not None:
            y = np.clip(y, cast(0.0), cast(self.max_value))
        if slope != 0.0:
            y = y - cast(slope) * negative
        return y

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "max_value": self.max_value,
            "negative_slope": self.negative_slope,
            "threshold": self.threshold,
        }


class LeakyReLU(ModelLayer):
    """`max(x, negative_slope * x)`, as `keras.layers.LeakyReLU` (`x` for x >= 0 and
    `negative_slope * x` below when the slope is <= 1). tf.keras 2's `alpha` is accepted."""

    def __init__(self, negative_slope: float = 0.3, **kwargs: Any) -> None:
        if "alpha" in kwargs:  # the tf.keras 2 name, which Keras 3 still takes (with a warning)
            negative_slope = kwargs.pop("alpha")
            warnings.warn(
                "Argument `alpha` is deprecated. Use `negative_slope` instead.", stacklevel=2
            )
        super().__init__(**kwargs)
        if negative_slope is None or _number(negative_slope, "negative_slope", "LeakyReLU") < 0:
            raise ValueError(
                "The negative_slope value of a Leaky ReLU layer cannot be None or negative "
                f"value. Expected a float. Received: negative_slope={negative_slope}"
            )
        self.negative_slope = float(negative_slope)

    def call(self, inputs: np.ndarray) -> np.ndarray:
        return np.maximum(inputs, inputs.dtype.type(self.negative_slope) * inputs)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "negative_slope": self.negative_slope}


class PReLU(ModelLayer):
    """Parametric ReLU, as `keras.layers.PReLU`: `x` for x >= 0, `alpha * x` below, with a
    learned `alpha` of the input's shape (without the batch), of size 1 along `shared_axes`."""

    def __init__(
        self,
        alpha_initializer: Any = "Zeros",
        alpha_regularizer: Any = None,
        alpha_constraint: Any = None,
        shared_axes: int | Sequence[int] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.alpha_initializer = alpha_initializer
        if shared_axes is None:
            self.shared_axes = None
        else:
            axes = list(shared_axes) if isinstance(shared_axes, (list, tuple)) else [shared_axes]
            if not all(isinstance(a, (int, np.integer)) and not isinstance(a, bool)
                       for a in axes):
                raise ValueError(
                    f"`shared_axes` must be an int or a list of ints. "
                    f"Received: shared_axes={shared_axes!r}"
                )
            self.shared_axes = [int(a) for a in axes]

    def build(self, input_shape: Sequence[int | None]) -> None:
        shape = tuple(input_shape)
        param_shape = list(shape[1:])
        # Keras sets param_shape[i - 1] = 1 for each shared axis i (Python indexing included).
        for i in self.shared_axes or ():
            if not -len(param_shape) <= i - 1 < len(param_shape):
                raise ValueError(
                    f"{self.name}: shared axis {i} is out of range for input shape {shape}. "
                    f"Received: shared_axes={self.shared_axes}"
                )
            param_shape[i - 1] = 1
        if None in param_shape:
            raise ValueError(
                f"{self.name} needs every non-shared dimension of its input to build. "
                f"Received: input_shape={shape}, shared_axes={self.shared_axes}"
            )
        self.alpha = self.add_weight(tuple(param_shape), self.alpha_initializer, name="alpha")
        super().build(shape)

    def call(self, inputs: np.ndarray) -> np.ndarray:
        x = inputs
        ok = x.ndim == self.alpha.ndim + 1
        if ok:
            try:
                ok = np.broadcast_shapes(x.shape[1:], self.alpha.shape) == x.shape[1:]
            except ValueError:
                ok = False
        if not ok:
            raise ValueError(
                f"Input 0 of layer {self.name} is incompatible: expected (batch, ...) "
                f"matching alpha of shape {self.alpha.shape}. Received: inputs with shape "
                f"{x.shape}"
            )
        zero = x.dtype.type(0.0)
        return np.maximum(x, zero) + (-self.alpha) * np.maximum(-x, zero)

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "alpha_initializer": self.alpha_initializer,
            "shared_axes": self.shared_axes,
        }


class ELU(ModelLayer):
    """Exponential linear unit, as `keras.layers.ELU`: `x` for x >= 0, `alpha * (exp(x) - 1)`
    below."""

    def __init__(self, alpha: float = 1.0, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.alpha = _number(alpha, "alpha", "ELU")

    def call(self, inputs: np.ndarray) -> np.ndarray:
        cast = inputs.dtype.type
        return np.where(inputs >= cast(0.0), inputs, cast(self.alpha) * np.expm1(inputs))

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "alpha": self.alpha}


# --------------------------------------------------------------------------- Softmax
class Softmax(ModelLayer):
    """Softmax over `axis` (an int or a list of axes), as `keras.layers.Softmax`.

    With a mask (broadcastable to the inputs from the right, each dimension 1 or equal; a
    non-boolean mask means `mask > 0.5`), masked positions are replaced by -1e9 before the
    softmax and their outputs set to zero. So a (batch, timesteps) sequence mask fits 2-D
    scores only; on 3-D inputs Keras (and rnnkit) refuse it unless it broadcasts.
    """

    def __init__(self, axis: int | Sequence[int] = -1, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if isinstance(axis, (list, tuple)):
            if not axis or not all(
                isinstance(a, (int, np.integer)) and not isinstance(a, bool) for a in axis
            ):
                raise ValueError(
                    f"`axis` of Softmax must be an int or a non-empty list of ints. "
                    f"Received: axis={axis!r}"
                )
            self.axis: int | list[int] = [int(a) for a in axis]
        elif isinstance(axis, (int, np.integer)) and not isinstance(axis, bool):
            self.axis = int(axis)
        else:
            raise ValueError(
                f"`axis` of Softmax must be an int or a non-empty list of ints. "
                f"Received: axis={axis!r}"
            )

    def _check_mask(self, mask: Any, x: np.ndarray) -> np.ndarray:
        mask = np.asarray(mask)
        fits = mask.ndim <= x.ndim and all(
            m in (1, i) for m, i in zip(mask.shape[::-1], x.shape[::-1])
        )
        if not fits:
            raise ValueError(
                f"{self.name}: the `mask` must be broadcastable to `inputs`: each mask dimension "
                f"must be 1 or match the corresponding input dimension, and it must not have "
                f"more dimensions. Received: inputs.shape={x.shape}, mask.shape={mask.shape}"
            )
        return mask if mask.dtype == np.bool_ else mask > 0.5

    def _forward(self, x: np.ndarray, mask: Any) -> tuple[np.ndarray, Any]:
        axes = self.axis if isinstance(self.axis, list) else [self.axis]
        if any(a >= x.ndim or a < -x.ndim for a in axes) or len(
            {a % x.ndim for a in axes}
        ) != len(axes):
            raise ValueError(
                f"Input 0 of layer {self.name} is incompatible with axis={self.axis}. "
                f"Received: inputs with shape {x.shape}"
            )
        keep = None
        if mask is not None:
            keep = self._check_mask(mask, x)
            x = np.where(keep, x, x.dtype.type(-1e9))
        reduce = tuple(axes)
        top = np.max(x, axis=reduce, keepdims=True)
        if len(axes) > 1:
            # Keras: exp(x - logsumexp(x)) over several axes.
            log_sum = np.log(np.sum(np.exp(x - top), axis=reduce, keepdims=True)) + top
            out = np.exp(x - log_sum)
        else:
            e = np.exp(x - top)
            out = e / np.sum(e, axis=reduce, keepdims=True)
        if keep is not None:
            out = np.where(keep, out, x.dtype.type(0.0))
        return out, mask

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "axis": self.axis}

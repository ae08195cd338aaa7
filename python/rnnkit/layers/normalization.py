"""Normalization layers of Keras 3 for inference (NumPy): BatchNormalization (with its moving
statistics), LayerNormalization and UnitNormalization. All three hand the mask on unchanged, as
Keras does; only BatchNormalization's `call` reads it, and at inference only to check its rank.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from .. import initializers as _initializers
from .core import ModelLayer

__all__ = ["BatchNormalization", "LayerNormalization", "UnitNormalization"]

Shape = tuple  # a shape with None for unknown dimensions


# --------------------------------------------------------------------------- axis helpers
def _is_int(value: Any) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def _axes_argument(axis: Any, layer: str) -> int | list[int]:
    """An `axis` of LayerNormalization / UnitNormalization: an int or a list of ints (a tuple
    becomes a list, as Keras stores it)."""
    if isinstance(axis, (list, tuple)) and all(_is_int(a) for a in axis):
        return [int(a) for a in axis]
    if _is_int(axis):
        return int(axis)
    raise TypeError(
        f"Expected an int or a list/tuple of ints for the argument 'axis' of {layer}. "
        f"Received: axis={axis!r}"
    )


def _check_axes(axes: Sequence[int], ndim: int, axis: Any, shape: Any, layer: str) -> None:
    """Every axis in range for rank `ndim`, no axis twice (Keras fails on either later)."""
    for a in axes:
        if a >= ndim or a < -ndim:
            raise ValueError(
                f"Axis {a} is out of bounds for input shape {tuple(shape)} of {layer}. "
                f"Received: axis={axis}"
            )
    if len({a % ndim for a in axes}) != len(axes):
        raise ValueError(
            f"{layer}: `axis` names the same dimension twice for input shape {tuple(shape)}. "
            f"Received: axis={axis}"
        )


# --------------------------------------------------------------------------- BatchNormalization
class BatchNormalization(ModelLayer):
    """`gamma * (x - moving_mean) / sqrt(moving_variance + epsilon) + beta` along `axis`, as
    `keras.layers.BatchNormalization` computes at inference.

    Weights, in Keras's order: gamma (if `scale`), beta (if `center`), moving_mean,
    moving_variance, and with `renorm=True` moving_stddev, renorm_mean and renorm_stddev, which
    only training reads. `momentum`, `renorm_*` and `synchronized` only matter in training and
    are kept for the config. `training=True` (batch statistics) raises: rnnkit is inference-only.
    """

    def __init__(
        self,
        axis: int = -1,
        momentum: float = 0.99,
        epsilon: float = 1e-3,
        center: bool = True,
        scale: bool = True,
        beta_initializer: Any = "zeros",
        gamma_initializer: Any = "ones",
        moving_mean_initializer: Any = "zeros",
        moving_variance_initializer: Any = "ones",
        beta_regularizer: Any = None,
        gamma_regularizer: Any = None,
        beta_constraint: Any = None,
        gamma_constraint: Any = None,
        renorm: bool = False,
        renorm_clipping: dict[str, float] | None = None,
        renorm_momentum: float = 0.99,
        synchronized: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        # tf.keras 2 configs hold the axis as a one-element list; Keras 3's legacy loader turns
        # it into an int, and so does rnnkit.
        if isinstance(axis, (list, tuple)) and len(axis) == 1:
            axis = axis[0]
        if not _is_int(axis):
            raise ValueError(
                f"BatchNormalization takes one integer `axis` (as Keras 3). Received: axis={axis!r}"
            )
        self.axis = int(axis)
        self.momentum = float(momentum)
        self.epsilon = float(epsilon)
        self.center = bool(center)
        self.scale = bool(scale)
        self.beta_initializer = beta_initializer
        self.gamma_initializer = gamma_initializer
        self.moving_mean_initializer = moving_mean_initializer
        self.moving_variance_initializer = moving_variance_initializer
        # Synchronised statistics are a training matter: inference is the same, so accepted.
        self.synchronized = bool(synchronized)
        self.renorm = bool(renorm)
        if self.renorm:
            renorm_clipping = dict(renorm_clipping or {})
            keys = ["rmax", "rmin", "dmax"]
            if set(renorm_clipping) - set(keys):
                raise ValueError(
                    "Received invalid keys for `renorm_clipping` argument: "
                    f"{renorm_clipping}. Supported values: {keys}."
                )
            rmax, rmin = renorm_clipping.get("rmax"), renorm_clipping.get("rmin")
            dmax = renorm_clipping.get("dmax")
            if rmax is not None and rmin is not None and rmax < rmin:
                raise ValueError(
                    "rmax should be greater than rmin in the `renorm_clipping` argument. "
                    f"Received: rmax={rmax}, rmin={rmin}."
                )
            if dmax is not None and dmax < 0:
                raise ValueError(
                    "dmax should be non-negative in the `renorm_clipping` argument. "
                    f"Received: dmax={dmax}."
                )
        self.renorm_clipping = renorm_clipping
        self.renorm_momentum = float(renorm_momentum)
        self.gamma: np.ndarray | None = None
        self.beta: np.ndarray | None = None

    def _check_training(self, training: Any) -> None:
        if training and self.trainable:
            raise ValueError(
                f"`training=True` on {self.name} (BatchNormalization): training mode normalizes "
                "with the batch statistics and updates the moving ones; rnnkit is "
                "inference-only. Call with training=False (the default)."
            )

    def build(self, input_shape: Sequence[int | None]) -> None:
        shape = tuple(input_shape)
        _check_axes([self.axis], len(shape), self.axis, shape, self.name)
        channels = shape[self.axis]
        if channels is None:
            raise ValueError(
                f"{self.name} needs the size of axis {self.axis} to build. Received: "
                f"input_shape={shape}"
            )
        size = (int(channels),)
        if self.scale:
            self.gamma = self.add_weight(size, self.gamma_initializer, name="gamma")
        if self.center:
            self.beta = self.add_weight(size, self.beta_initializer, name="beta")
        self.moving_mean = self.add_weight(size, self.moving_mean_initializer,
                                           name="moving_mean", trainable=False)
        self.moving_variance = self.add_weight(size, self.moving_variance_initializer,
                                               name="moving_variance", trainable=False)
        if self.renorm:
            # Training-only state, created so that Keras's weight list fits (initial values as
            # Keras: the stddev is the square root of the variance initializer's values).
            variance_init = _initializers.get(self.moving_variance_initializer)

            def stddev_init(shape: Any, dtype: Any = None) -> np.ndarray:
                return np.sqrt(np.asarray(variance_init(shape, dtype=dtype)))

            self.moving_stddev = self.add_weight(size, stddev_init, name="moving_stddev",
                                                 trainable=False)
            self.renorm_mean = self.add_weight(size, self.moving_mean_initializer,
                                               name="renorm_mean", trainable=False)
            self.renorm_stddev = self.add_weight(size, stddev_init, name="renorm_stddev",
                                                 trainable=False)
        super().build(shape)

    def _forward(self, x: np.ndarray, mask: Any) -> tuple[np.ndarray, Any]:
        built = self._build_shape
        if x.ndim != len(built) or x.shape[self.axis] != self.moving_mean.shape[0]:
            raise ValueError(
                f"Input 0 of layer {self.name} is incompatible: expected rank {len(built)} "
                f"with axis {self.axis} of size {self.moving_mean.shape[0]}. Received: inputs "
                f"with shape {x.shape}"
            )
        # Keras's call checks the mask's rank even though inference does not use the mask.
        if mask is not None and np.ndim(mask) != x.ndim - 1:
            raise ValueError(
                f"{self.name}: the mask provided should be one dimension less than the inputs. "
                f"Received: mask.shape={np.shape(mask)}, inputs.shape={x.shape}"
            )
        shape = [1] * x.ndim
        shape[self.axis] = -1
        # Keras's form: x * inv + (beta - mean * inv), inv = gamma / sqrt(variance + eps).
        inv = 1.0 / np.sqrt(self.moving_variance + self.epsilon)
        if self.gamma is not None:
            inv = inv * self.gamma
        offset = -self.moving_mean * inv
        if self.beta is not None:
            offset = offset + self.beta
        return x * inv.reshape(shape) + offset.reshape(shape), mask

    def compute_output_shape(self, input_shape: Sequence[int | None]) -> Shape:
        shape = tuple(input_shape)
        _check_axes([self.axis], len(shape), self.axis, shape, self.name)
        return shape

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "axis": self.axis,
            "momentum": self.momentum,
            "epsilon": self.epsilon,
            "center": self.center,
            "scale": self.scale,
            "beta_initializer": self.beta_initializer,
            "gamma_initializer": self.gamma_initializer,
            "moving_mean_initializer": self.moving_mean_initializer,
            "moving_variance_initializer": self.moving_variance_initializer,
            "synchronized": self.synchronized,
            "renorm": self.renorm,
            "renorm_clipping": self.renorm_clipping,
            "renorm_momentum": self.renorm_momentum,
        }


# --------------------------------------------------------------------------- LayerNormalization
class LayerNormalization(ModelLayer):
    """Normalizes each sample over `axis` (an int or a list), as
    `keras.layers.LayerNormalization`: `(x - mean) / sqrt(var + epsilon) * gamma + beta`.

    Weights gamma (if `scale` or `rms_scaling`) and beta (if `center` and not `rms_scaling`), of
    the shape of the normalized axes in sorted order. Keras reshapes (does not transpose) them
    to the broadcast shape, which rnnkit repeats, so an axis list mixing signs reads the weights
    as Keras does. The deprecated `rms_scaling=True` computes Keras's `x / sqrt(var + epsilon) *
    gamma` (no centering). The variance is the mean squared deviation from the mean, as Keras's
    TensorFlow and JAX backends compute it (its NumPy backend's E[x^2] - E[x]^2 loses digits
    far from zero mean).
    """

    def __init__(
        self,
        axis: int | Sequence[int] = -1,
        epsilon: float = 1e-3,
        center: bool = True,
        scale: bool = True,
        beta_initializer: Any = "zeros",
        gamma_initializer: Any = "ones",
        beta_regularizer: Any = None,
        gamma_regularizer: Any = None,
        beta_constraint: Any = None,
        gamma_constraint: Any = None,
        rms_scaling: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.axis = _axes_argument(axis, "LayerNormalization")
        if isinstance(self.axis, list) and not self.axis:
            raise ValueError(f"`axis` must name at least one axis. Received: axis={axis!r}")
        self.epsilon = float(epsilon)
        self.center = bool(center)
        self.scale = bool(scale)
        self.rms_scaling = bool(rms_scaling)
        self.beta_initializer = beta_initializer
        self.gamma_initializer = gamma_initializer
        self.gamma: np.ndarray | None = None
        self.beta: np.ndarray | None = None

    @property
    def _axes(self) -> list[int]:
        return sorted(self.axis) if isinstance(self.axis, list) else [self.axis]

    def build(self, input_shape: Sequence[int | None]) -> None:
        shape = tuple(input_shape)
        axes = self._axes
        _check_axes(axes, len(shape), self.axis, shape, self.name)
        size = tuple(shape[a] for a in axes)
        if (self.scale or self.rms_scaling or self.center) and None in size:
            raise ValueError(
                f"{self.name} needs the size of every normalized axis {self.axis} to build. "
                f"Received: input_shape={shape}"
            )
        if self.scale or self.rms_scaling:
            self.gamma = self.add_weight(size, self.gamma_initializer, name="gamma")
        if self.center and not self.rms_scaling:
            self.beta = self.add_weight(size, self.beta_initializer, name="beta")
        super().build(shape)

    def _broadcast(self, weight: np.ndarray, x: np.ndarray, axes: list[int]) -> np.ndarray:
        """The weight as Keras's `_broadcast` lays it over `x` (a reshape, not a transpose)."""
        target = [1] * x.ndim
        for a in axes:
            target[a] = x.shape[a]
        try:
            if weight.ndim != x.ndim and axes != [x.ndim - 1]:
                weight = weight.reshape(target)
            np.broadcast_shapes(weight.shape, x.shape)
        except ValueError:
            raise ValueError(
                f"Input 0 of layer {self.name} is incompatible: axes {self.axis} of the inputs "
                f"must have sizes {weight.shape}. Received: inputs with shape {x.shape}"
            ) from None
        return weight

    def _forward(self, x: np.ndarray, mask: Any) -> tuple[np.ndarray, Any]:
        axes = self._axes
        _check_axes(axes, x.ndim, self.axis, x.shape, self.name)
        weights = [w for w in (self.gamma, self.beta) if w is not None]
        if weights and tuple(x.shape[a] for a in axes) != weights[0].shape:
            raise ValueError(
                f"Input 0 of layer {self.name} is incompatible: axes {self.axis} of the inputs "
                f"must have sizes {weights[0].shape}. Received: inputs with shape {x.shape}"
            )
        gamma = None if self.gamma is None else self._broadcast(self.gamma, x, axes)
        beta = None if self.beta is None else self._broadcast(self.beta, x, axes)
        reduce = tuple(axes)
        mean = np.mean(x, axis=reduce, keepdims=True)
        variance = np.mean(np.square(x - mean), axis=reduce, keepdims=True)
        inv = 1.0 / np.sqrt(variance + self.epsilon)
        if self.rms_scaling:
            # Keras's deprecated rms_scaling divides by the standard deviation, uncentered.
            out = x * inv
            return (out if gamma is None else out * gamma), mask
        if gamma is not None:
            inv = inv * gamma
        offset = -mean * inv
        if beta is not None:
            offset = offset + beta
        return x * inv + offset, mask

    def compute_output_shape(self, input_shape: Sequence[int | None]) -> Shape:
        shape = tuple(input_shape)
        _check_axes(self._axes, len(shape), self.axis, shape, self.name)
        return shape

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "axis": self.axis,
            "epsilon": self.epsilon,
            "center": self.center,
            "scale": self.scale,
            "rms_scaling": self.rms_scaling,
            "beta_initializer": self.beta_initializer,
            "gamma_initializer": self.gamma_initializer,
        }


# --------------------------------------------------------------------------- UnitNormalization
class UnitNormalization(ModelLayer):
    """Scales each sample to unit L2 norm over `axis` (an int or a list), as
    `keras.layers.UnitNormalization`: `x * min(1 / sqrt(sum(x^2)), 1e12)`."""

    def __init__(self, axis: int | Sequence[int] = -1, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.axis = _axes_argument(axis, "UnitNormalization")
        if isinstance(self.axis, list) and not self.axis:
            raise ValueError(f"`axis` must name at least one axis. Received: axis={axis!r}")

    @property
    def _axes(self) -> list[int]:
        return list(self.axis) if isinstance(self.axis, list) else [self.axis]

    def _forward(self, x: np.ndarray, mask: Any) -> tuple[np.ndarray, Any]:
        axes = self._axes
        _check_axes(axes, x.ndim, self.axis, x.shape, self.name)
        square_sum = np.sum(np.square(x), axis=tuple(axes), keepdims=True)
        with np.errstate(divide="ignore"):  # a zero vector: 1/0 = inf, then capped at 1e12
            inv_norm = 1.0 / np.sqrt(square_sum)
        return x * np.minimum(inv_norm, 1e12), mask

    def compute_output_shape(self, input_shape: Sequence[int | None]) -> Shape:
        shape = tuple(input_shape)
        _check_axes(self._axes, len(shape), self.axis, shape, self.name)
        return shape

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "axis": self.axis}

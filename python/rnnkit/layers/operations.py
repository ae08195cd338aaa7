"""Keras operations traced into functional models (`keras.ops.*` applied to symbolic tensors,
and the `NotEqual`/`Any` a `Masking` or `Embedding(mask_zero=True)` layer traces for its mask),
as nodes of an rnnkit Model: NumPy functions, no weights, no masks handed on (Keras operations
hand on none)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from .base import Layer


def _axis(config: dict[str, Any]) -> Any:
    axis = config.get("axis")
    return tuple(axis) if isinstance(axis, list) else axis


def _dtype(config: dict[str, Any], x: Any) -> Any:
    return np.dtype(config["dtype"]) if config.get("dtype") else np.asarray(x).dtype


def _reduce(function: Callable[..., Any]) -> Callable[..., Any]:
    return lambda config, x: function(x, axis=_axis(config),
                                      keepdims=bool(config.get("keepdims", False)))


def _binary(function: Callable[..., Any]) -> Callable[..., Any]:
    return lambda config, x, y: function(x, y)


# Keras's operation class name -> f(operation config, *call args)
_OPERATIONS: dict[str, Callable[..., Any]] = {
    "NotEqual": _binary(np.not_equal),
    "Equal": _binary(np.equal),
    "Greater": _binary(np.greater),
    "GreaterEqual": _binary(np.greater_equal),
    "Less": _binary(np.less),
    "LessEqual": _binary(np.less_equal),
    "LogicalAnd": _binary(np.logical_and),
    "LogicalOr": _binary(np.logical_or),
    "LogicalNot": lambda config, x: np.logical_not(x),
    "Add": _binary(np.add),
    "Subtract": _binary(np.subtract),
    "Multiply": _binary(np.multiply),
    "Divide": _binary(np.divide),
    "TrueDivide": _binary(np.true_divide),
    "Maximum": _binary(np.maximum),
    "Minimum": _binary(np.minimum),
    "Matmul": _binary(np.matmul),
    "Any": _reduce(np.any),
    "All": _reduce(np.all),
    "Sum": _reduce(np.sum),
    "Mean": _reduce(np.mean),
    "Max": _reduce(np.max),
    "Min": _reduce(np.min),
    "Cast": lambda config, x: x.astype(np.dtype(config.get("dtype", "float32"))),
    "ExpandDims": lambda config, x: np.expand_dims(x, _axis(config)),
    "Squeeze": lambda config, x: np.squeeze(x, axis=_axis(config)),
    "Transpose": lambda config, x: np.transpose(x, config.get("axes")),
    "Reshape": lambda config, x: np.reshape(x, config.get("newshape", config.get("new_shape"))),
    "ZerosLike": lambda config, x: np.zeros_like(x, dtype=_dtype(config, x)),
    "OnesLike": lambda config, x: np.ones_like(x, dtype=_dtype(config, x)),
    "ConvertToTensor": lambda config, x: np.asarray(x, dtype=_dtype(config, x)),
    "BroadcastTo": lambda config, x: np.broadcast_to(x, config.get("shape")),
    "Concatenate": lambda config, xs: np.concatenate(xs, axis=config.get("axis", 0)),
    "Stack": lambda config, xs: np.stack(xs, axis=config.get("axis", 0)),
    "Where": lambda config, c, x=None, y=None: np.where(c, x, y),
    "Clip": lambda config, x, low, high: np.clip(x, low, high),
    "Negative": lambda config, x: np.negative(x),
    "Abs": lambda config, x: np.abs(x),
    "Exp": lambda config, x: np.exp(x),
    "Log": lambda config, x: np.log(x),
    "Sqrt": lambda config, x: np.sqrt(x),
    "Square": lambda config, x: np.square(x),
    "Tanh": lambda config, x: np.tanh(x),
}


class Operation(Layer):
    """A traced Keras operation: `operation` is Keras's class name (NotEqual, Any, Mean, ...),
    `config` its configuration (axis, keepdims, dtype, ...)."""

    def __init__(self, operation: str, config: dict[str, Any] | None = None,
                 name: str | None = None, **kwargs: Any) -> None:
        kwargs.pop("dtype", None)
        super().__init__(name=name, **kwargs)
        if operation not in _OPERATIONS:
            raise ValueError(
                f"rnnkit cannot run the Keras operation {operation!r} in a functional model. "
                f"Supported operations: {', '.join(sorted(_OPERATIONS))}."
            )
        self.operation = operation
        self.config = dict(config or {})
        self.built = True

    @staticmethod
    def supported() -> list[str]:
        return sorted(_OPERATIONS)

    @classmethod
    def from_keras(cls, entry: dict[str, Any]) -> Operation:
        config = dict(entry.get("config") or {})
        name = config.pop("name", None) or entry.get("name")
        return cls(str(entry.get("class_name")), config, name=name)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self._invoke(args, kwargs, lambda value: None, False)[0]

    def _invoke(self, args: Sequence[Any], kwargs: dict[str, Any], mask_of: Any,
                training: bool) -> tuple[Any, Any]:
        values = [a if isinstance(a, list) else np.asarray(a) if isinstance(a, np.ndarray)
                  else a for a in args]
        return _OPERATIONS[self.operation](self.config, *values, **kwargs), None

    def get_config(self) -> dict[str, Any]:
        return {"name": self.name, "operation": self.operation, "config": self.config}

    def __repr__(self) -> str:
        return f"<Operation {self.operation} name={self.name}>"

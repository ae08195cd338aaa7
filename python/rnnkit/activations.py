"""Activations by Keras 3 name: the one table of them.

Two groups: the kernel activations (`_BY_NAME`), which the C++ kernels also run and every
recurrent cell accepts, and the layer-only ones (`_LAYER_ONLY`: softmax, relu6, ...), which only
Dense and Activation accept. Both use the formulas of keras/src/backend/numpy/nn.py; the NumPy
versions serve the NumPy loop, custom cells, the non-recurrent layers and the tests.
"""

from __future__ import annotations

import math
from typing import Callable, Union

import numpy as np

from . import _core

ActivationLike = Union[str, Callable[[np.ndarray], np.ndarray], None]

_SELU_ALPHA = 1.6732632423543772848170429916717
_SELU_SCALE = 1.0507009873554804934193349852946
_erf = np.vectorize(math.erf, otypes=[np.float64])


def _const(value: float, x: np.ndarray) -> np.ndarray:
    return np.asarray(value, dtype=x.dtype)  # keeps float32 math in float32 (NEP 50)


def linear(x: np.ndarray) -> np.ndarray:
    return x


def tanh(x: np.ndarray) -> np.ndarray:
    return np.tanh(x)


def sigmoid(x: np.ndarray) -> np.ndarray:
    return _const(1.0, x) / (_const(1.0, x) + np.exp(-x))


def hard_sigmoid(x: np.ndarray) -> np.ndarray:
    """Keras 3: relu6(x + 3) / 6 (tf.keras 2 used 0.2 x + 0.5)."""
    return np.clip(x / _const(6.0, x) + _const(0.5, x), _const(0.0, x), _const(1.0, x))


def keras2_hard_sigmoid(x: np.ndarray) -> np.ndarray:
    """Keras 2's hard_sigmoid, clip(0.2 x + 0.5, 0, 1): what "hard_sigmoid" means in files
    written by Keras 2 (the Keras importer reads it so)."""
    return np.clip(x * _const(0.2, x) + _const(0.5, x), _const(0.0, x), _const(1.0, x))


def relu(x: np.ndarray) -> np.ndarray:
    return np.maximum(x, _const(0.0, x))


def elu(x: np.ndarray) -> np.ndarray:
    return np.where(x >= 0, x, np.expm1(x))


def selu(x: np.ndarray) -> np.ndarray:
    return _const(_SELU_SCALE, x) * np.where(x >= 0, x, _const(_SELU_ALPHA, x) * np.expm1(x))


def softsign(x: np.ndarray) -> np.ndarray:
    return x / (_const(1.0, x) + np.abs(x))


def softplus(x: np.ndarray) -> np.ndarray:
    return np.logaddexp(x, _const(0.0, x))


def swish(x: np.ndarray) -> np.ndarray:
    return x * sigmoid(x)


def gelu(x: np.ndarray) -> np.ndarray:
    """The exact form, 0.5 x (1 + erf(x / sqrt(2))), which Keras 3 uses for "gelu" by name."""
    return (0.5 * x * (1.0 + _erf(x / math.sqrt(2.0)))).astype(x.dtype)


def exponential(x: np.ndarray) -> np.ndarray:
    return np.exp(x)


def hard_silu(x: np.ndarray) -> np.ndarray:
    return x * hard_sigmoid(x)


_BY_NAME: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "linear": linear,
    "tanh": tanh,
    "sigmoid": sigmoid,
    "hard_sigmoid": hard_sigmoid,
    "relu": relu,
    "elu": elu,
    "selu": selu,
    "softsign": softsign,
    "softplus": softplus,
    "swish": swish,
    "gelu": gelu,
    "exponential": exponential,
    "hard_silu": hard_silu,
    "keras2_hard_sigmoid": keras2_hard_sigmoid,
}
_ALIASES = {"silu": "swish", "hard_swish": "hard_silu"}
assert set(_BY_NAME) == set(_core.ACTIVATIONS), "Python and C++ activation lists differ"


# --------------------------------------------------------------------------- layer-only
def softmax(x: np.ndarray) -> np.ndarray:
    """Over the last axis."""
    e = np.exp(x - np.max(x, axis=-1, keepdims=True))
    return e / np.sum(e, axis=-1, keepdims=True)


def log_softmax(x: np.ndarray) -> np.ndarray:
    """Over the last axis."""
    top = np.max(x, axis=-1, keepdims=True)
    return x - top - np.log(np.exp(x - top).sum(axis=-1, keepdims=True))


def relu6(x: np.ndarray) -> np.ndarray:
    return np.minimum(np.maximum(x, _const(0.0, x)), _const(6.0, x))


def leaky_relu(x: np.ndarray) -> np.ndarray:
    return np.maximum(x, _const(0.2, x) * x)


def mish(x: np.ndarray) -> np.ndarray:
    return x * np.tanh(softplus(x))


def log_sigmoid(x: np.ndarray) -> np.ndarray:
    return -softplus(-x)


def hard_tanh(x: np.ndarray) -> np.ndarray:
    return np.clip(x, _const(-1.0, x), _const(1.0, x))


def tanh_shrink(x: np.ndarray) -> np.ndarray:
    return x - np.tanh(x)


def celu(x: np.ndarray) -> np.ndarray:
    zero = _const(0.0, x)
    return np.maximum(x, zero) + np.expm1(np.minimum(x, zero))


_LAYER_ONLY: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "softmax": softmax,
    "log_softmax": log_softmax,
    "relu6": relu6,
    "leaky_relu": leaky_relu,
    "mish": mish,
    "log_sigmoid": log_sigmoid,
    "hard_tanh": hard_tanh,
    "tanh_shrink": tanh_shrink,
    "celu": celu,
}


# --------------------------------------------------------------------------- look-ups
def canonical_name(activation: ActivationLike, argument: str = "activation") -> str | None:
    """The built-in name of `activation` (None means "linear"), or None for a custom callable."""
    if activation is None:
        return "linear"
    if isinstance(activation, str):
        name = _ALIASES.get(activation, activation)
        if name not in _BY_NAME:
            choices = ", ".join(sorted([*_BY_NAME, *_ALIASES]))
            raise ValueError(
                f"Unknown `{argument}`: {activation!r}. Expected one of: {choices}, "
                "None, or a callable."
            )
        return name
    for name, function in _BY_NAME.items():
        if activation is function:
            return name
    if callable(activation):
        return None
    raise TypeError(f"`{argument}` must be a name, None or a callable. Received: {activation!r}")


def get(activation: ActivationLike) -> Callable[[np.ndarray], np.ndarray]:
    """The NumPy function for an activation name, None (linear) or a callable."""
    name = canonical_name(activation)
    return _BY_NAME[name] if name is not None else activation  # type: ignore[return-value]


def serialize(activation: ActivationLike) -> ActivationLike:
    """The name of a built-in activation, else the callable itself."""
    name = canonical_name(activation)
    return name if name is not None else activation


def layer_names() -> list[str]:
    """Every activation name Dense and Activation accept."""
    return sorted({*_BY_NAME, *_ALIASES, *_LAYER_ONLY})


def get_for_layer(activation: ActivationLike, argument: str = "activation") -> Callable:
    """The NumPy function for an activation of Dense/Activation: a name of either group, None
    or a callable."""
    if isinstance(activation, str) and activation in _LAYER_ONLY:
        return _LAYER_ONLY[activation]
    if isinstance(activation, str) and _ALIASES.get(activation, activation) not in _BY_NAME:
        raise ValueError(
            f"Unknown `{argument}`: {activation!r}. Expected one of: "
            f"{', '.join(layer_names())}, None, or a callable."
        )
    return get(activation)


def serialize_for_layer(activation: ActivationLike) -> ActivationLike:
    """The name of an activation of either group (given by name or function), else the
    callable itself."""
    for name, candidate in _LAYER_ONLY.items():
        if activation is candidate or activation == name:
            return name
    return serialize(activation)

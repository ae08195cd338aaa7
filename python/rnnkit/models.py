"""rnnkit.Sequential and the layers that surround recurrent layers in real models.

A trained Keras recurrent model is rarely a lone LSTM: an `InputLayer`, a `Masking` or an
`Embedding(mask_zero=True)` feeds it, `Dense` / `TimeDistributed(Dense)` read it, `Dropout`
sits in between. This module has those layers (NumPy, inference only) and the `Sequential`
container that runs them in order and propagates masks as Keras does:

* `Masking(mask_value)`: mask = any(x != mask_value, axis=-1); masked steps are zeroed.
* `Embedding(mask_zero=True)`: mask = ids != 0.
* a recurrent layer (RNN, SimpleRNN, LSTM, GRU, Bidirectional) consumes the mask; it passes it
  on when it returns sequences, and drops it otherwise.
* Dense, TimeDistributed, Activation and the dropout layers pass the mask on unchanged;
  Flatten, Reshape and RepeatVector drop it (as in Keras, where they do not support masking).

Every layer here takes Keras's configuration arguments (and ignores the training-only ones:
regularizers, constraints), so `layer.get_config()` reads like Keras's and `rnnkit.load_keras`
can build the layer from a Keras config.
"""

from __future__ import annotations

import math
from collections.abc import Sequence as SequenceABC
from typing import Any, Callable

import numpy as np

from . import activations as _activations
from ._arrays import as_float_array, as_mask, describe
from .cells import output_size as _cell_output_size
from .layer import Layer
from .layers import Bidirectional
from .rnn import RNN

__all__ = [
    "Activation",
    "AlphaDropout",
    "Dense",
    "Dropout",
    "Embedding",
    "Flatten",
    "GaussianDropout",
    "GaussianNoise",
    "InputLayer",
    "Masking",
    "RepeatVector",
    "Reshape",
    "Sequential",
    "SpatialDropout1D",
    "SpatialDropout2D",
    "SpatialDropout3D",
    "TimeDistributed",
]

Shape = tuple  # a shape with None for unknown dimensions

# Keras's training-only arguments: accepted, stored nowhere, as rnnkit is inference-only.
_TRAINING_ONLY = (
    "kernel_regularizer",
    "bias_regularizer",
    "activity_regularizer",
    "embeddings_regularizer",
    "kernel_constraint",
    "bias_constraint",
    "embeddings_constraint",
    "input_dim",  # tf.keras 2 shorthand for input_shape on the first layer
    "batch_input_shape",
    "batch_size",
    "input_length",  # tf.keras 2 Embedding
)


# --------------------------------------------------------------------------- activations
def _softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - np.max(x, axis=-1, keepdims=True))
    return e / np.sum(e, axis=-1, keepdims=True)


def _log_softmax(x: np.ndarray) -> np.ndarray:
    top = np.max(x, axis=-1, keepdims=True)
    return x - top - np.log(np.exp(x - top).sum(axis=-1, keepdims=True))


def _relu6(x: np.ndarray) -> np.ndarray:
    return np.minimum(np.maximum(x, x.dtype.type(0)), x.dtype.type(6))


def _leaky_relu(x: np.ndarray) -> np.ndarray:
    return np.maximum(x, x.dtype.type(0.2) * x)


def _mish(x: np.ndarray) -> np.ndarray:
    return x * np.tanh(_activations.softplus(x))


def _log_sigmoid(x: np.ndarray) -> np.ndarray:
    return -_activations.softplus(-x)


def _hard_tanh(x: np.ndarray) -> np.ndarray:
    return np.clip(x, x.dtype.type(-1), x.dtype.type(1))


def _tanh_shrink(x: np.ndarray) -> np.ndarray:
    return x - np.tanh(x)


def _celu(x: np.ndarray) -> np.ndarray:
    zero = x.dtype.type(0)
    return np.maximum(x, zero) + np.expm1(np.minimum(x, zero))


# Activations of Dense and Activation beyond the recurrent ones (formulas of Keras 3's NumPy
# backend, keras/src/backend/numpy/nn.py; softmax and log_softmax over the last axis).
_EXTRA_ACTIVATIONS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "softmax": _softmax,
    "log_softmax": _log_softmax,
    "relu6": _relu6,
    "leaky_relu": _leaky_relu,
    "mish": _mish,
    "log_sigmoid": _log_sigmoid,
    "hard_tanh": _hard_tanh,
    "tanh_shrink": _tanh_shrink,
    "celu": _celu,
}


def activation_names() -> list[str]:
    """Every activation name Dense and Activation accept."""
    return sorted({*_activations._BY_NAME, *_activations._ALIASES, *_EXTRA_ACTIVATIONS})


def get_activation(activation: Any, argument: str = "activation") -> Callable:
    """The NumPy function for an activation of Dense/Activation: a name, None or a callable."""
    if isinstance(activation, str) and activation in _EXTRA_ACTIVATIONS:
        return _EXTRA_ACTIVATIONS[activation]
    if isinstance(activation, str):
        name = _activations._ALIASES.get(activation, activation)
        if name not in _activations._BY_NAME:
            raise ValueError(
                f"Unknown `{argument}`: {activation!r}. Expected one of: "
                f"{', '.join(activation_names())}, None, or a callable."
            )
    return _activations.get(activation)


def activation_name(function: Callable) -> Any:
    """The name of a built-in activation function, else the function itself."""
    for name, candidate in _EXTRA_ACTIVATIONS.items():
        if candidate is function:
            return name
    return _activations.serialize(function)


# --------------------------------------------------------------------------- the base class
class ModelLayer(Layer):
    """A non-recurrent layer of a Sequential model: NumPy in, NumPy out, mask-aware.

    `__call__(inputs, mask=None, training=False)` returns the outputs; `compute_mask(inputs,
    mask)` the mask handed on to the next layer. Subclasses implement `_forward(inputs, mask)`
    returning both, so a Sequential model computes them once.
    """

    supports_masking = True  # pass the mask on unchanged (Keras: Dense, Dropout, Activation)

    def __init__(self, **kwargs: Any) -> None:
        for key in _TRAINING_ONLY:
            kwargs.pop(key, None)
        super().__init__(**kwargs)
        self._build_shape: Shape | None = None

    def build(self, input_shape: SequenceABC[int | None]) -> None:
        self._build_shape = tuple(input_shape)
        self.built = True

    def _convert(self, inputs: Any) -> np.ndarray:
        return as_float_array(inputs, self.dtype, "inputs")

    def _check_training(self, training: Any) -> None:
        rate = getattr(self, "rate", 0.0) or getattr(self, "stddev", 0.0)
        if training and rate:
            raise ValueError(
                f"`training=True` on {self.name} ({type(self).__name__} with rate/stddev "
                f"{rate}): rnnkit is inference-only and does not apply it. Call with "
                "training=False (the default)."
            )

    def __call__(self, inputs: Any, mask: Any = None, training: bool = False) -> Any:
        return self._run(inputs, mask, training)[0]

    def _run(self, inputs: Any, mask: Any, training: bool) -> tuple[Any, Any]:
        self._check_training(training)
        x = self._prepare_inputs(inputs)
        if not self.built:
            self.build(x.shape)
            self.built = True
        return self._forward(x, mask)

    def _prepare_inputs(self, inputs: Any) -> np.ndarray:
        return self._convert(inputs)

    def _forward(self, x: np.ndarray, mask: Any) -> tuple[np.ndarray, Any]:
        return self.call(x), (mask if self.supports_masking else None)

    def call(self, inputs: np.ndarray) -> np.ndarray:
        return inputs

    def compute_mask(self, inputs: Any, mask: Any = None) -> Any:
        """The mask this layer hands on for `inputs` arriving with `mask`."""
        return self._run(inputs, mask, False)[1]

    def compute_output_shape(self, input_shape: SequenceABC[int | None]) -> Shape:
        return tuple(input_shape)

    def count_params(self) -> int:
        return int(sum(w.size for w in self.weights))


def _check_rank_at_least(x: np.ndarray, rank: int, layer: Layer, expected: str) -> None:
    if x.ndim < rank:
        raise ValueError(
            f"Input 0 of layer {layer.name} is incompatible: expected rank >= {rank}, "
            f"{expected}. Received: inputs with shape {x.shape}"
        )


# --------------------------------------------------------------------------- input
class InputLayer(ModelLayer):
    """The model's input: its shape (without the batch) and dtype, as `keras.Input`.

    Calling it checks the rank and the last dimension of the inputs (other dimensions may
    differ, as Keras allows with a warning) and hands them on unchanged; `dtype` is the input
    dtype ("int32" for token ids), not a compute dtype.
    """

    def __init__(
        self,
        shape: SequenceABC[int | None] | None = None,
        batch_size: int | None = None,
        dtype: Any = None,
        batch_shape: SequenceABC[int | None] | None = None,
        name: str | None = None,
        **kwargs: Any,
    ) -> None:
        for key in ("sparse", "ragged", "optional", "input_tensor"):
            kwargs.pop(key, None)
        if batch_shape is None and "batch_input_shape" in kwargs:
            batch_shape = kwargs.pop("batch_input_shape")
        kwargs.pop("trainable", None)
        kwargs.pop("input_shape", None)
        if kwargs:
            raise TypeError(f"Unrecognized keyword arguments passed to InputLayer: {kwargs}")
        super().__init__(name=name)
        if batch_shape is not None:
            batch_shape = tuple(None if d is None else int(d) for d in batch_shape)
        elif shape is not None:
            batch_shape = (batch_size, *(None if d is None else int(d) for d in shape))
        else:
            raise ValueError("InputLayer needs `shape` or `batch_shape`.")
        self.batch_shape: Shape = batch_shape
        try:
            self.input_dtype = np.dtype(dtype or "float32").name
        except TypeError:
            raise ValueError(f"InputLayer: unknown dtype {dtype!r}") from None
        self.built = True

    @property
    def shape(self) -> Shape:
        return self.batch_shape[1:]

    def _prepare_inputs(self, inputs: Any) -> np.ndarray:
        x = inputs if isinstance(inputs, np.ndarray) else np.asarray(inputs)
        if x.ndim != len(self.batch_shape):
            raise ValueError(
                f"Input of the model is incompatible with its InputLayer {self.name}: expected "
                f"shape {self.batch_shape} (rank {len(self.batch_shape)}). Received: inputs with "
                f"shape {x.shape}"
            )
        last = self.batch_shape[-1]
        if len(self.batch_shape) > 1 and last is not None and x.shape[-1] != last:
            raise ValueError(
                f"Input of the model is incompatible with its InputLayer {self.name}: expected "
                f"shape {self.batch_shape}, last dimension {last}. Received: inputs with shape "
                f"{x.shape}"
            )
        return x

    def compute_output_shape(self, input_shape: SequenceABC[int | None]) -> Shape:
        return self.batch_shape

    def get_config(self) -> dict[str, Any]:
        return {"name": self.name, "batch_shape": list(self.batch_shape), "dtype": self.input_dtype}


# --------------------------------------------------------------------------- masking & embedding
class Masking(ModelLayer):
    """Masks timesteps whose features all equal `mask_value`, as `keras.layers.Masking`:
    mask = any(x != mask_value, axis=-1), and masked timesteps are set to zero."""

    def __init__(self, mask_value: float = 0.0, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.mask_value = float(mask_value)

    def _forward(self, x: np.ndarray, mask: Any) -> tuple[np.ndarray, Any]:
        _check_rank_at_least(x, 2, self, "(batch, ..., features)")
        keep = np.any(x != x.dtype.type(self.mask_value), axis=-1)
        return np.where(keep[..., None], x, x.dtype.type(0)), keep

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "mask_value": self.mask_value}


class Embedding(ModelLayer):
    """Turns integer ids into vectors, as `keras.layers.Embedding`: weight `embeddings` of
    shape (input_dim, output_dim). With `mask_zero=True` id 0 is padding: mask = ids != 0.

    Ids must be integers in [0, input_dim) (floats holding whole numbers are accepted); others
    are a ValueError (Keras's result for them depends on the backend).
    """

    supports_masking = False

    def __init__(
        self,
        input_dim: int,
        output_dim: int,
        embeddings_initializer: Any = "uniform",
        mask_zero: bool = False,
        **kwargs: Any,
    ) -> None:
        for key in ("sparse", "weights"):
            kwargs.pop(key, None)
        lora_rank = kwargs.pop("lora_rank", None)
        lora_alpha = kwargs.pop("lora_alpha", None)
        if lora_rank:
            raise ValueError(
                f"Embedding with lora_rank={lora_rank} (LoRA) is not supported by rnnkit: merge "
                "the LoRA weights into `embeddings` first (keras: layer.enable_lora is training "
                "only). lora_alpha=" + repr(lora_alpha)
            )
        kwargs.pop("quantization_config", None)
        super().__init__(**kwargs)
        self.input_dim = int(input_dim)
        self.output_dim = int(output_dim)
        self.embeddings_initializer = embeddings_initializer
        self.mask_zero = bool(mask_zero)

    def build(self, input_shape: SequenceABC[int | None] = ()) -> None:
        if not self._weights:
            init = self.embeddings_initializer
            self.embeddings = self.add_weight(
                (self.input_dim, self.output_dim),
                initializer=init if isinstance(init, str) or callable(init) else "uniform",
                name="embeddings",
            )
        super().build(input_shape)

    def _prepare_inputs(self, inputs: Any) -> np.ndarray:
        ids = inputs if isinstance(inputs, np.ndarray) else np.asarray(inputs)
        if ids.dtype.kind == "f":
            if not np.all(np.isfinite(ids)) or not np.all(ids == np.round(ids)):
                raise ValueError(
                    f"Ids given to {self.name} must be whole numbers. Received: {describe(ids)}"
                )
            ids = ids.astype(np.int64)
        elif ids.dtype.kind not in "biu":
            raise TypeError(
                f"Ids given to {self.name} must be integers. Received: {describe(ids)}"
            )
        if ids.size and (ids.min() < 0 or ids.max() >= self.input_dim):
            raise ValueError(
                f"Ids given to {self.name} must be in [0, {self.input_dim}) (input_dim="
                f"{self.input_dim}). Received ids from {ids.min()} to {ids.max()}."
            )
        return ids

    def _forward(self, ids: np.ndarray, mask: Any) -> tuple[np.ndarray, Any]:
        out = np.take(self.embeddings, ids, axis=0)
        return out, (ids != 0) if self.mask_zero else None

    def compute_output_shape(self, input_shape: SequenceABC[int | None]) -> Shape:
        return (*tuple(input_shape), self.output_dim)

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "input_dim": self.input_dim,
            "output_dim": self.output_dim,
            "mask_zero": self.mask_zero,
        }


# --------------------------------------------------------------------------- dense & activation
class Dense(ModelLayer):
    """`activation(inputs @ kernel + bias)` over the last axis, as `keras.layers.Dense`:
    weights kernel (input_dim, units) and bias (units,). Inputs of any rank >= 2 (a 3-D input is
    transformed at every timestep); the mask passes through."""

    def __init__(
        self,
        units: int,
        activation: Any = None,
        use_bias: bool = True,
        kernel_initializer: Any = "glorot_uniform",
        bias_initializer: Any = "zeros",
        **kwargs: Any,
    ) -> None:
        lora_rank = kwargs.pop("lora_rank", None)
        kwargs.pop("lora_alpha", None)
        quantization = kwargs.pop("quantization_config", None)
        if lora_rank or quantization:
            raise ValueError(
                "Dense with LoRA or quantization is not supported by rnnkit. Received: "
                f"lora_rank={lora_rank!r}, quantization_config={quantization!r}"
            )
        super().__init__(**kwargs)
        if isinstance(units, bool) or not isinstance(units, (int, np.integer)) or units <= 0:
            raise ValueError(
                f"Received an invalid value for argument `units`, expected a positive integer. "
                f"Received: units={units!r}"
            )
        self.units = int(units)
        self.activation = get_activation(activation)
        self.use_bias = bool(use_bias)
        self.kernel_initializer = kernel_initializer
        self.bias_initializer = bias_initializer

    def build(self, input_shape: SequenceABC[int | None]) -> None:
        input_dim = input_shape[-1]
        if input_dim is None:
            raise ValueError(f"{self.name} needs the last dimension of its input to build.")
        self.kernel = self.add_weight((int(input_dim), self.units), self.kernel_initializer,
                                      name="kernel")
        self.bias = (
            self.add_weight((self.units,), self.bias_initializer, name="bias")
            if self.use_bias
            else None
        )
        super().build(input_shape)

    def call(self, inputs: np.ndarray) -> np.ndarray:
        if inputs.ndim < 1 or inputs.shape[-1] != self.kernel.shape[0]:
            raise ValueError(
                f"Input 0 of layer {self.name} is incompatible: expected the last dimension "
                f"{self.kernel.shape[0]}. Received: inputs with shape {inputs.shape}"
            )
        y = inputs @ self.kernel
        if self.bias is not None:
            y += self.bias
        return np.asarray(self.activation(y), dtype=self.dtype)

    def compute_output_shape(self, input_shape: SequenceABC[int | None]) -> Shape:
        return (*tuple(input_shape)[:-1], self.units)

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "units": self.units,
            "activation": activation_name(self.activation),
            "use_bias": self.use_bias,
        }


class Activation(ModelLayer):
    """Applies an activation function by Keras name (or a callable), as
    `keras.layers.Activation`; softmax is over the last axis."""

    def __init__(self, activation: Any, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.activation = get_activation(activation)

    def call(self, inputs: np.ndarray) -> np.ndarray:
        return np.asarray(self.activation(inputs), dtype=self.dtype)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "activation": activation_name(self.activation)}


# --------------------------------------------------------------------------- identity layers
class Dropout(ModelLayer):
    """Dropout: the identity at inference (`training=True` with a nonzero rate raises)."""

    def __init__(
        self, rate: float = 0.0, noise_shape: Any = None, seed: int | None = None, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self.rate = float(rate)
        if not 0.0 <= self.rate <= 1.0:
            raise ValueError(f"`rate` must be in [0, 1]. Received: rate={rate!r}")
        self.noise_shape = noise_shape
        self.seed = seed

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "rate": self.rate,
            "noise_shape": self.noise_shape,
            "seed": self.seed,
        }


class SpatialDropout1D(Dropout):
    """SpatialDropout1D: the identity at inference."""

    def __init__(self, rate: float = 0.0, seed: int | None = None, **kwargs: Any) -> None:
        kwargs.pop("data_format", None)
        super().__init__(rate=rate, seed=seed, **kwargs)


class SpatialDropout2D(SpatialDropout1D):
    """SpatialDropout2D: the identity at inference."""


class SpatialDropout3D(SpatialDropout1D):
    """SpatialDropout3D: the identity at inference."""


class GaussianDropout(Dropout):
    """GaussianDropout: the identity at inference."""


class AlphaDropout(Dropout):
    """AlphaDropout: the identity at inference."""


class GaussianNoise(ModelLayer):
    """GaussianNoise: the identity at inference."""

    def __init__(self, stddev: float = 0.0, seed: int | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.stddev = float(stddev)
        self.seed = seed

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "stddev": self.stddev, "seed": self.seed}


# --------------------------------------------------------------------------- reshaping
class Flatten(ModelLayer):
    """(batch, d1, d2, ...) -> (batch, d1 * d2 * ...), as `keras.layers.Flatten`
    (`data_format="channels_first"` moves axis 1 last first). Drops the mask, as Keras does."""

    supports_masking = False

    def __init__(self, data_format: str | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if data_format not in (None, "channels_last", "channels_first"):
            raise ValueError(f"Invalid data_format for Flatten: {data_format!r}")
        self.data_format = data_format or "channels_last"

    def call(self, inputs: np.ndarray) -> np.ndarray:
        if self.data_format == "channels_first" and inputs.ndim > 1:
            inputs = np.transpose(inputs, (0, *range(2, inputs.ndim), 1))
        return np.ascontiguousarray(inputs).reshape(inputs.shape[0], -1)

    def compute_output_shape(self, input_shape: SequenceABC[int | None]) -> Shape:
        rest = tuple(input_shape)[1:]
        size = None if any(d is None for d in rest) else math.prod(rest)
        return (input_shape[0], size)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "data_format": self.data_format}


class Reshape(ModelLayer):
    """Reshapes the non-batch dimensions to `target_shape` (one entry may be -1), as
    `keras.layers.Reshape`. Drops the mask, as Keras does."""

    supports_masking = False

    def __init__(self, target_shape: SequenceABC[int], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.target_shape = tuple(-1 if d is None else int(d) for d in target_shape)
        if sum(d == -1 for d in self.target_shape) > 1:
            raise ValueError(
                f"`target_shape` may hold one unknown (-1). Received: {self.target_shape}"
            )

    def call(self, inputs: np.ndarray) -> np.ndarray:
        try:
            return np.ascontiguousarray(inputs).reshape((inputs.shape[0], *self.target_shape))
        except ValueError:
            raise ValueError(
                f"{self.name} cannot reshape inputs of shape {inputs.shape} to "
                f"(batch, *{self.target_shape})."
            ) from None

    def compute_output_shape(self, input_shape: SequenceABC[int | None]) -> Shape:
        rest = tuple(input_shape)[1:]
        shape = list(self.target_shape)
        if -1 in shape:
            known = math.prod(d for d in shape if d != -1)
            shape[shape.index(-1)] = (
                None if any(d is None for d in rest) or known == 0 else math.prod(rest) // known
            )
        return (input_shape[0], *shape)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "target_shape": list(self.target_shape)}


class RepeatVector(ModelLayer):
    """(batch, features) -> (batch, n, features), as `keras.layers.RepeatVector` (the bridge
    of recurrent sequence-to-sequence autoencoders)."""

    supports_masking = False

    def __init__(self, n: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.n = int(n)

    def call(self, inputs: np.ndarray) -> np.ndarray:
        if inputs.ndim != 2:
            raise ValueError(
                f"Input 0 of layer {self.name} is incompatible: expected rank 2, (batch, "
                f"features). Received: inputs with shape {inputs.shape}"
            )
        return np.repeat(inputs[:, None, :], self.n, axis=1)

    def compute_output_shape(self, input_shape: SequenceABC[int | None]) -> Shape:
        return (input_shape[0], self.n, input_shape[-1])

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "n": self.n}


# --------------------------------------------------------------------------- TimeDistributed
class TimeDistributed(ModelLayer):
    """Applies a per-sample layer (Dense, Activation, Flatten, Reshape, a dropout layer) to
    every timestep, as `keras.layers.TimeDistributed`; its weights are the wrapped layer's.
    The mask passes through."""

    def __init__(self, layer: ModelLayer, **kwargs: Any) -> None:
        if not isinstance(layer, ModelLayer) or isinstance(
            layer, (TimeDistributed, InputLayer, Embedding, Masking)
        ):
            raise ValueError(
                "rnnkit's TimeDistributed wraps Dense, Activation, Flatten, Reshape, "
                f"RepeatVector or a dropout layer. Received: {layer!r}"
            )
        kwargs.setdefault("dtype", layer.dtype)
        super().__init__(**kwargs)
        self.layer = layer

    def build(self, input_shape: SequenceABC[int | None]) -> None:
        shape = tuple(input_shape)
        if len(shape) < 3:
            raise ValueError(
                f"`TimeDistributed` needs inputs of rank >= 3, (batch, time, ...). Received "
                f"input_shape={shape}"
            )
        if not self.layer.built:
            self.layer.build((shape[0], *shape[2:]))
            self.layer.built = True
        super().build(shape)

    @property
    def weights(self) -> list[np.ndarray]:
        return self.layer.weights

    def _weight_labels(self) -> list[str]:
        return [f"layer.{n}" for n in self.layer._weight_labels()]

    def _on_weights_changed(self) -> None:
        super()._on_weights_changed()
        self.layer._on_weights_changed()

    def _forward(self, x: np.ndarray, mask: Any) -> tuple[np.ndarray, Any]:
        _check_rank_at_least(x, 3, self, "(batch, time, ...)")
        batch, steps = x.shape[:2]
        flat = x.reshape((batch * steps, *x.shape[2:]))
        y = self.layer._run(flat, None, False)[0]
        return y.reshape((batch, steps, *y.shape[1:])), mask

    def compute_output_shape(self, input_shape: SequenceABC[int | None]) -> Shape:
        shape = tuple(input_shape)
        inner = self.layer.compute_output_shape((shape[0], *shape[2:]))
        return (inner[0], shape[1], *inner[1:])

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "layer": self.layer}


# --------------------------------------------------------------------------- recurrent helpers
def is_recurrent(layer: Any) -> bool:
    return isinstance(layer, (RNN, Bidirectional))


def _recurrent_output_shape(layer: RNN | Bidirectional, input_shape: Shape) -> Any:
    if isinstance(layer, Bidirectional):
        forward = _recurrent_output_shape(layer.forward_layer, input_shape)
        backward = _recurrent_output_shape(layer.backward_layer, input_shape)
        out_f = forward[0] if layer.return_state else forward
        out_b = backward[0] if layer.return_state else backward
        if layer.merge_mode == "concat":
            merged: Any = (*out_f[:-1], out_f[-1] + out_b[-1])
        elif layer.merge_mode is None:
            merged = [out_f, out_b]
        else:
            merged = out_f
        if not layer.return_state:
            return merged
        return [*(merged if layer.merge_mode is None else [merged]), *forward[1:], *backward[1:]]
    shape = tuple(input_shape)
    batch_axis, time_axis = (1, 0) if layer.time_major else (0, 1)
    batch, steps = shape[batch_axis], shape[time_axis]
    units = _cell_output_size(layer.cell)
    if layer.return_sequences:
        out: Shape = (steps, batch, units) if layer.time_major else (batch, steps, units)
    else:
        out = (batch, units)
    if not layer.return_state:
        return out
    from .cells import state_sizes

    return [out, *((batch, s) for c in layer._cells for s in state_sizes(c))]


def output_shape(layer: Any, input_shape: Shape) -> Any:
    """The output shape of any layer a Sequential model may hold."""
    if is_recurrent(layer):
        return _recurrent_output_shape(layer, input_shape)
    if hasattr(layer, "compute_output_shape"):
        return layer.compute_output_shape(input_shape)
    raise ValueError(f"Cannot compute the output shape of {layer!r}")


def build_layer(layer: Any, input_shape: Shape) -> None:
    """Build `layer` for inputs of `input_shape` unless it is built."""
    if not getattr(layer, "built", False):
        layer.build(input_shape)
        layer.built = True


def apply_layer(
    layer: Any, x: Any, mask: Any, training: bool
) -> tuple[Any, Any]:
    """Run one layer of a model: (outputs, the mask for the next layer), as Keras does."""
    if is_recurrent(layer):
        y = layer(x, mask=mask, training=training)
        if not layer.return_sequences:
            return y, None
        if isinstance(layer, Bidirectional) and layer.merge_mode is None:
            return y, [mask, mask]
        return y, mask
    if isinstance(layer, (ModelLayer, Sequential)):
        return layer._run(x, mask, training)
    # Any other rnnkit layer (or callable object): called on the outputs, drops the mask.
    return layer(x), None


# --------------------------------------------------------------------------- Sequential
class Sequential(Layer):
    """A linear stack of layers, as `keras.Sequential`, for inference.

    Layers: any rnnkit recurrent layer (RNN, SimpleRNN, LSTM, GRU, Bidirectional) and the layers
    of this module; optionally an `InputLayer` first, which fixes the input shape (and so lets
    `summary()` show output shapes and `build()` create the weights before the first call).

    `model(x, mask=None)` runs the layers in order, handing each the mask the previous one
    produced (see the module docstring); `predict(x, batch_size=None)` does the same in
    batches. `get_weights()` / `set_weights()` are every layer's weights in order (Keras's
    `model.get_weights()` order), `load_weights(path)` reads a Keras weights file, and
    `summary()` prints the layers.
    """

    def __init__(
        self,
        layers: SequenceABC[Any] | None = None,
        name: str | None = None,
        **kwargs: Any,
    ) -> None:
        kwargs.pop("trainable", None)
        kwargs.pop("dtype", None)
        super().__init__(name=name, **kwargs)
        self._input_layer: InputLayer | None = None
        self._layers: list[Any] = []
        self._build_shape: Shape | None = None
        for layer in layers or []:
            self.add(layer)

    @property
    def dtype(self) -> str:  # type: ignore[override]
        """The first layer's dtype (float32 for an empty model)."""
        layers = self.__dict__.get("_layers") or []
        return str(getattr(layers[0], "dtype", "float32")) if layers else "float32"

    @dtype.setter
    def dtype(self, value: Any) -> None:
        pass  # a model computes in its layers' dtypes

    # ----------------------------------------------------------------- structure
    def add(self, layer: Any) -> None:
        """Append a layer (an `InputLayer` only first)."""
        if isinstance(layer, InputLayer):
            if self._layers or self._input_layer is not None:
                raise ValueError(
                    "An InputLayer can only be the first layer of a Sequential model."
                )
            self._input_layer = layer
            self._build_shape = layer.batch_shape
            return
        if not (callable(layer) and hasattr(layer, "get_weights")):
            raise TypeError(
                "Sequential holds rnnkit layers (recurrent layers, Dense, Embedding, ...). "
                f"Received: {describe(layer)}"
            )
        self._layers.append(layer)

    @property
    def layers(self) -> list[Any]:
        """The layers, in order (without the InputLayer, as in Keras)."""
        return list(self._layers)

    @property
    def input_layer(self) -> InputLayer | None:
        return self._input_layer

    def get_layer(self, name: str | None = None, index: int | None = None) -> Any:
        if index is not None:
            return self._layers[index]
        for layer in self._layers:
            if layer.name == name:
                return layer
        raise ValueError(
            f"No such layer: {name}. Existing layers are: {[lay.name for lay in self._layers]}."
        )

    @property
    def input_shape(self) -> Shape | None:
        return self._build_shape

    def build(self, input_shape: SequenceABC[int | None]) -> None:
        """Create every layer's weights for inputs of `input_shape` (batch may be None)."""
        self._build_shape = tuple(input_shape)
        self._build_layers(self._build_shape)

    def _build_layers(self, input_shape: SequenceABC[int | None]) -> None:
        shape: Any = tuple(input_shape)
        for layer in self._layers:
            build_layer(layer, shape)
            shape = output_shape(layer, shape)
            if isinstance(shape, list):
                shape = shape[0]
        self.built = True

    def compute_output_shape(self, input_shape: SequenceABC[int | None]) -> Any:
        shape: Any = tuple(input_shape)
        for layer in self._layers:
            shape = output_shape(layer, shape)
        return shape

    # ----------------------------------------------------------------- weights
    @property
    def weights(self) -> list[np.ndarray]:
        return [w for layer in self._layers for w in layer.weights]

    def _weight_labels(self) -> list[str]:
        labels = []
        for layer in self._layers:
            own = layer._weight_labels() if isinstance(layer, Layer) else [
                f"weight_{i}" for i in range(len(layer.weights))
            ]
            labels.extend(f"{layer.name}.{label}" for label in own)
        return labels

    def set_weights(self, weights: SequenceABC[Any]) -> None:
        """Set every layer's weights from one list in `get_weights()` order; everything is
        checked before anything is written."""
        if isinstance(weights, np.ndarray) or not isinstance(weights, (list, tuple)):
            raise TypeError(f"`weights` must be a list of arrays. Received: {describe(weights)}")
        expected = self.weights
        if len(weights) != len(expected):
            raise ValueError(
                f"{self.name} expects {len(expected)} weight arrays (build the model first if "
                f"it is not built), but `weights` has {len(weights)}."
            )
        labels = self._weight_labels()
        for label, target, value in zip(labels, expected, weights):
            shape = np.shape(value)
            if shape != target.shape:
                raise ValueError(
                    f"Weight `{label}` of {self.name} expected shape {target.shape}, received "
                    f"{shape}."
                )
        start = 0
        for layer in self._layers:
            count = len(layer.weights)
            if count:
                layer.set_weights(list(weights[start : start + count]))
            start += count

    def _on_weights_changed(self) -> None:
        super()._on_weights_changed()
        for layer in self._layers:
            if isinstance(layer, Layer):
                layer._on_weights_changed()

    def count_params(self) -> int:
        return int(sum(w.size for w in self.weights))

    def load_weights(self, path: Any) -> None:
        """Read a Keras weights file into this model (same architecture): a Keras 3
        `.weights.h5`, the weights of a `.keras` archive, or a legacy HDF5 `.h5` (weights only
        or a whole model). Needs h5py; Keras is not needed."""
        from .keras_io import load_weights

        load_weights(self, path)

    # ----------------------------------------------------------------- states
    def reset_states(self) -> None:
        """Zero the carried states of every stateful layer."""
        for layer in self._layers:
            if hasattr(layer, "reset_states"):
                layer.reset_states()

    reset_state = reset_states

    # ----------------------------------------------------------------- call
    def _run(self, inputs: Any, mask: Any, training: bool) -> tuple[Any, Any]:
        x = inputs
        if self._input_layer is not None:
            x = self._input_layer._prepare_inputs(x)
        if not self._layers:
            return x, mask
        if self._build_shape is None and np.ndim(x) > 0:
            self._build_shape = (None, *np.shape(x)[1:])
        if any(not getattr(layer, "built", False) for layer in self._layers):
            self._build_layers((None, *np.shape(x)[1:]))
        last = len(self._layers) - 1
        for index, layer in enumerate(self._layers):
            x, mask = apply_layer(layer, x, mask, training)
            if isinstance(x, tuple) and index != last:
                raise ValueError(
                    f"Layer {layer.name} returned several outputs (return_state=True or "
                    "merge_mode=None), so it can only be the last layer of a Sequential model."
                )
        return x, mask

    def __call__(self, inputs: Any, mask: Any = None, training: bool = False) -> Any:
        """Run the model on `inputs`; `mask` (optional, boolean (batch, timesteps)) is the
        input mask, combined as Keras does with the masks the layers make."""
        if mask is not None:
            shape = np.shape(inputs)
            mask = as_mask(mask, tuple(shape[:2]))
        return self._run(inputs, mask, training)[0]

    def call(self, inputs: Any, mask: Any = None, training: bool = False) -> Any:
        return self(inputs, mask=mask, training=training)

    def predict(
        self, x: Any, batch_size: int | None = None, verbose: Any = 0, **unused: Any
    ) -> Any:
        """The outputs for `x`, computed `batch_size` rows at a time (all at once by default)."""
        if batch_size is None or np.shape(x)[0] <= batch_size:
            return self(x)
        if isinstance(batch_size, bool) or int(batch_size) <= 0:
            raise ValueError(f"`batch_size` must be a positive integer. Received: {batch_size!r}")
        parts = [self(x[i : i + batch_size]) for i in range(0, np.shape(x)[0], batch_size)]
        if isinstance(parts[0], tuple):
            return tuple(np.concatenate(p, axis=0) for p in zip(*parts))
        return np.concatenate(parts, axis=0)

    # ----------------------------------------------------------------- describe
    def summary(self, print_fn: Callable[[str], Any] | None = None, line_length: int = 80) -> str:
        """Print (with `print_fn`, default print) and return a table of the layers: name and
        type, output shape (when the input shape is known) and number of weights."""
        rows = [("Layer (type)", "Output Shape", "Param #")]
        shape: Any = self._build_shape
        for layer in self._layers:
            if shape is not None:
                try:
                    shape = output_shape(layer, shape)
                except Exception:  # a summary shows "?" rather than failing
                    shape = None
            shown = "?" if shape is None else _format_shape(shape)
            if isinstance(shape, list):
                shape = shape[0]
            params = sum(int(w.size) for w in layer.weights)
            rows.append((f"{layer.name} ({_type_name(layer)})", shown, f"{params:,}"))
        width_1 = max(len(r[0]) for r in rows) + 2
        width_2 = max(len(r[1]) for r in rows) + 2
        width = max(line_length, width_1 + width_2 + 12)
        lines = [f'Model: "{self.name}"', "=" * width]
        for i, (a, b, c) in enumerate(rows):
            lines.append(f"{a:<{width_1}}{b:<{width_2}}{c:>10}")
            lines.append(("=" if i == 0 else "-") * width)
        total = self.count_params()
        lines[-1] = "=" * width
        lines.append(f"Total params: {total:,}")
        text = "\n".join(lines)
        (print_fn or print)(text)
        return text

    def get_config(self) -> dict[str, Any]:
        layers = ([self._input_layer] if self._input_layer is not None else []) + self._layers
        return {"name": self.name, "layers": layers, "build_input_shape": self._build_shape}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Sequential:
        model = cls(name=config.get("name"))
        for layer in config.get("layers", []):
            model.add(layer)
        if config.get("build_input_shape") is not None and not model.built:
            model.build(config["build_input_shape"])
        return model

    def __repr__(self) -> str:
        return f"<Sequential name={self.name}, layers={[lay.name for lay in self._layers]}>"


def _type_name(layer: Any) -> str:
    if isinstance(layer, (Bidirectional, TimeDistributed)):
        inner = layer.forward_layer if isinstance(layer, Bidirectional) else layer.layer
        return f"{type(layer).__name__}({type(inner).__name__})"
    return type(layer).__name__


def _format_shape(shape: Any) -> str:
    if isinstance(shape, list):
        return "[" + ", ".join(_format_shape(s) for s in shape) + "]"
    return "(" + ", ".join("None" if d is None else str(d) for d in shape) + (
        ",)" if len(shape) == 1 else ")"
    )

"""The non-recurrent layers that surround recurrent ones in real models (NumPy, inference only):
InputLayer, Masking, Embedding, Dense, Activation, Flatten, Reshape, RepeatVector and
TimeDistributed, on the `ModelLayer` base that makes them mask-aware.

Masks are handed on as Keras hands them on:

* `Masking(mask_value)`: mask = any(x != mask_value, axis=-1); masked steps are zeroed.
* `Embedding(mask_zero=True)`: mask = ids != 0.
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

from .. import activations as _activations
from .._arrays import as_float_array, describe
from .base import Layer
from .symbolic import Node, SymbolicTensor, is_symbolic, symbolic_call

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


# --------------------------------------------------------------------------- the base class
_LAYER_CLASSES: dict[str, type[ModelLayer]] = {}


def layer_classes() -> dict[str, type[ModelLayer]]:
    """Every non-recurrent layer class by Keras class name (registered on definition)."""
    return dict(_LAYER_CLASSES)


class ModelLayer(Layer):
    """A non-recurrent layer of a model: NumPy in, NumPy out, mask-aware.

    `__call__(inputs, mask=None, training=False)` returns the outputs; `compute_mask(inputs,
    mask)` the mask handed on to the next layer. Subclasses implement `_forward(inputs, mask)`
    returning both, so a model computes them once. A layer whose Keras `call` takes more than
    `inputs`, `mask` and `training` (attention, for instance) overrides `_invoke`, the one entry
    point of functional models.

    Subclasses register by class name (`layer_classes()`): the Keras importer builds a layer
    from a Keras config by passing the config's arguments to the constructor, so a constructor
    takes Keras's arguments, with Keras's names and defaults.
    """

    supports_masking = True  # pass the mask on unchanged (Keras: Dense, Dropout, Activation)

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if not cls.__name__.startswith("_"):
            _LAYER_CLASSES[cls.__name__] = cls

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
        if is_symbolic(inputs, mask):  # building a functional model
            return symbolic_call(self, (inputs,), {"mask": mask})
        return self._run(inputs, mask, training)[0]

    def _run(self, inputs: Any, mask: Any, training: bool) -> tuple[Any, Any]:
        self._check_training(training)
        x = self._prepare_inputs(inputs)
        if not self.built:
            self.build(x.shape)
            self.built = True
        return self._forward(x, mask)

    def _invoke(
        self,
        args: SequenceABC[Any],
        kwargs: dict[str, Any],
        mask_of: Callable[[Any], Any],
        training: bool,
    ) -> tuple[Any, Any]:
        """Call the layer as a functional model's node does: `args` and `kwargs` are the
        arguments of Keras's `call` (arrays in place of tensors), `mask_of(value)` the masks
        the model carries for a value (same structure). Returns (outputs, their masks).

        As Keras's `Layer.__call__`: a `mask` not given is the mask of the one tensor argument,
        and the output mask is `compute_mask(inputs, mask)` for a layer supporting masks.
        """
        kwargs = dict(kwargs)
        if args:
            inputs, rest = args[0], list(args[1:])
        elif "inputs" in kwargs:
            inputs, rest = kwargs.pop("inputs"), []
        else:
            raise ValueError(f"Layer {self.name} was called without inputs.")
        mask = kwargs.pop("mask", None)
        kwargs.pop("training", None)
        if rest or kwargs:
            raise ValueError(
                f"Layer {self.name} ({type(self).__name__}) is called with arguments rnnkit "
                f"does not support: {[*(['positional'] if rest else []), *sorted(kwargs)]}."
            )
        if mask is None:
            mask = mask_of(inputs)
        return self._run(inputs, mask, training)

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
        node = Node(self, (), {})
        node.outputs = SymbolicTensor(batch_shape, self.input_dtype, node, 0, name=self.name)
        self.output = node.outputs  # what rnnkit.Input returns

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
        self.activation = _activations.get_for_layer(activation)
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
            "activation": _activations.serialize_for_layer(self.activation),
            "use_bias": self.use_bias,
        }


class Activation(ModelLayer):
    """Applies an activation function by Keras name (or a callable), as
    `keras.layers.Activation`; softmax is over the last axis."""

    def __init__(self, activation: Any, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.activation = _activations.get_for_layer(activation)

    def call(self, inputs: np.ndarray) -> np.ndarray:
        return np.asarray(self.activation(inputs), dtype=self.dtype)

    def get_config(self) -> dict[str, Any]:
        activation = _activations.serialize_for_layer(self.activation)
        return {**super().get_config(), "activation": activation}


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



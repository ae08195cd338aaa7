"""Attention layers (NumPy, inference only): `Attention` (Luong) and `AdditiveAttention`
(Bahdanau), computed and masked as Keras 3 computes them, and the helpers they share with
`MultiHeadAttention` (multi_head_attention.py). They take several inputs: besides `__call__` with
Keras's call signature they implement `_invoke`, the entry point of functional models, which
fills in the inputs' masks as Keras's `Layer.__call__` does."""

from __future__ import annotations

from collections.abc import Sequence as SequenceABC
from typing import Any, Callable

import numpy as np

from .._arrays import as_float_array, describe
from .core import ModelLayer, Shape
from .symbolic import is_symbolic, symbolic_call

__all__ = ["AdditiveAttention", "Attention"]

# Keras's Attention subtracts 1e9 from masked scores; its Softmax layer (MultiHeadAttention)
# puts -1e9 in their place. Either way a masked score weighs exactly 0 after the softmax.
_LARGE = 1.0e9


# --------------------------------------------------------------------------- helpers
def _softmax(x: np.ndarray, axis: int | tuple[int, ...]) -> np.ndarray:
    """exp(x - max) / sum over `axis`, as Keras's NumPy backend (all equal: uniform)."""
    e = np.exp(x - np.max(x, axis=axis, keepdims=True))
    return e / np.sum(e, axis=axis, keepdims=True)


def _is_tensor_argument(value: Any) -> bool:
    """Whether Keras's `Layer.__call__` counts a call argument as a tensor argument: an array,
    or a non-empty list/tuple whose leaves are all arrays or None."""
    if isinstance(value, (list, tuple)):
        return bool(value) and all(v is None or _is_tensor_argument(v) for v in value)
    return isinstance(value, np.ndarray)


def _bind(layer: ModelLayer, signature: dict[str, Any], args: SequenceABC[Any],
          kwargs: dict[str, Any]) -> dict[str, Any]:
    """The arguments of a recorded Keras call by name, defaults filled in."""
    names = list(signature)
    unknown = sorted(set(kwargs) - set(names)) + sorted(set(kwargs) & set(names[: len(args)]))
    if len(args) > len(names) or unknown:
        raise ValueError(
            f"Layer {layer.name} ({type(layer).__name__}) is called with arguments rnnkit does "
            f"not support: {len(args)} positional (at most {len(names)}: {', '.join(names)}), "
            f"unknown or repeated keywords {unknown}.")
    return {**signature, **dict(zip(names, args)), **kwargs}


def _as_bool(mask: Any, layer: ModelLayer, what: str,
             shape: tuple[int, ...] | None = None) -> np.ndarray | None:
    """A mask as a boolean array (Keras casts masks to bool: nonzero is True)."""
    if mask is None:
        return None
    array = np.asarray(mask)
    if array.dtype.kind not in "biuf":
        raise TypeError(f"`{what}` of {layer.name} must be a boolean array. "
                        f"Received: {describe(mask)}")
    array = array if array.dtype == np.bool_ else array != 0
    if shape is not None and array.shape != tuple(shape):
        raise ValueError(f"`{what}` of layer {layer.name} must have shape {tuple(shape)}. "
                         f"Received: {what} with shape {array.shape}")
    return array


def _is_int(value: Any) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def _positive_int(value: Any, arg: str, allow_none: bool = False) -> int | None:
    if value is None and allow_none:
        return None
    if not _is_int(value) or value <= 0:
        raise ValueError(
            f"Received an invalid value for argument `{arg}`, expected a positive integer"
            f"{' or `None`' if allow_none else ''}. Received: {arg}={value!r}")
    return int(value)


def _check_dropout(dropout: Any) -> float:
    number = isinstance(dropout, (int, float, np.number)) and not isinstance(dropout, bool)
    if not number or not 0 <= dropout <= 1:
        raise ValueError("Invalid value received for argument `dropout`. Expected a float value "
                         f"between 0 and 1. Received: dropout={dropout!r}")
    return float(dropout)


def _check_no_training(layer: Any, training: Any) -> None:
    if training and layer.dropout:
        raise ValueError(
            f"`training=True` on {layer.name} ({type(layer).__name__} with dropout="
            f"{layer.dropout}): rnnkit is inference-only and does not apply dropout. Call with "
            "training=False (the default).")


def _is_shape_list(value: Any) -> bool:
    lists = (list, tuple)
    return isinstance(value, lists) and len(value) in (2, 3) and all(
        isinstance(s, lists) for s in value)


# --------------------------------------------------------------------------- Attention
_ATTENTION_CALL = {"inputs": None, "mask": None, "training": None,
                   "return_attention_scores": False, "use_causal_mask": False}


class Attention(ModelLayer):
    """Dot-product (Luong-style) attention, as `keras.layers.Attention`:
    softmax(query @ key^T) @ value over inputs [query, value] or [query, value, key]
    (score_mode="concat": scores sum(tanh(query + key)))."""

    def __init__(self, use_scale: bool = False, score_mode: str = "dot", dropout: float = 0.0,
                 seed: int | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if score_mode not in ("dot", "concat"):
            raise ValueError(
                "Invalid value for argument score_mode. Expected one of {'dot', 'concat'}. "
                f"Received: score_mode={score_mode}")
        self.use_scale = bool(use_scale)
        self.score_mode = score_mode
        self.dropout = _check_dropout(dropout)
        self.seed = seed
        self.scale: np.ndarray | None = None
        self.concat_score_weight: np.ndarray | None = None

    def _shapes(self, input_shape: Any) -> list[tuple]:
        if not _is_shape_list(input_shape):
            raise ValueError(
                f"{type(self).__name__} layer {self.name} takes a list of 2 or 3 shapes, "
                "[query_shape, value_shape] or [query_shape, value_shape, key_shape]. "
                f"Received: input_shape={input_shape}")
        return [tuple(s) for s in input_shape]

    def build(self, input_shape: SequenceABC[SequenceABC[int | None]]) -> None:
        shapes = self._shapes(input_shape)
        if not self._weights:
            self._create_weights(shapes[0])
        super().build(shapes)

    def _create_weights(self, query_shape: tuple) -> None:
        if self.use_scale:
            self.scale = self.add_weight((), "ones", name="scale")
        if self.score_mode == "concat":
            self.concat_score_weight = self.add_weight((), "ones", name="concat_score_weight")

    # ----------------------------------------------------------------- calling
    def __call__(self, inputs: SequenceABC[Any], mask: SequenceABC[Any] | None = None,
                 training: bool = False, return_attention_scores: bool = False,
                 use_causal_mask: bool = False) -> Any:
        if is_symbolic(inputs, mask):  # building a functional model
            return symbolic_call(self, (inputs,), {
                "mask": mask, "return_attention_scores": return_attention_scores or None,
                "use_causal_mask": use_causal_mask or None})
        return self._compute(inputs, mask, training, return_attention_scores, use_causal_mask)[0]

    def _run(self, inputs: Any, mask: Any, training: bool) -> tuple[Any, Any]:
        return self._compute(inputs, mask, training, False, False)

    def _invoke(self, args: SequenceABC[Any], kwargs: dict[str, Any],
                mask_of: Callable[[Any], Any], training: bool) -> tuple[Any, Any]:
        """As Keras's `Layer.__call__`: with `inputs` the one tensor argument and no `mask`
        given, `mask` is the masks the inputs carry (one per input)."""
        bound = _bind(self, _ATTENTION_CALL, args, kwargs)
        tensors = [n for n in _ATTENTION_CALL if _is_tensor_argument(bound[n])]
        if len(tensors) == 1 and bound["mask"] is None:
            bound["mask"] = mask_of(bound[tensors[0]])
        training = training if bound["training"] is None else bound["training"]
        return self._compute(bound["inputs"], bound["mask"], training,
                             bound["return_attention_scores"], bound["use_causal_mask"])

    def _split_inputs(self, inputs: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        if not isinstance(inputs, (list, tuple)) or len(inputs) not in (2, 3):
            raise ValueError(
                f"{type(self).__name__} layer {self.name} must be called on a list of 2 or 3 "
                "inputs, namely [query, value] or [query, value, key]. Received: inputs="
                f"{describe(inputs)}.")
        arrays = [as_float_array(x, self.dtype, n)
                  for x, n in zip(inputs, ("query", "value", "key"))]
        return arrays[0], arrays[1], arrays[-1]

    def _split_masks(self, mask: Any, q_shape: tuple | None = None,
                     v_shape: tuple | None = None) -> tuple[Any, Any]:
        """(query mask, value mask) of shapes `q_shape`, `v_shape` when given."""
        if mask is None:
            return None, None
        if not isinstance(mask, (list, tuple)) or len(mask) not in (2, 3):
            raise ValueError(
                f"{type(self).__name__} layer {self.name}: mask must be a list of length 2 or "
                f"3, namely [query_mask, value_mask]. Received: mask={describe(mask)}.")
        # A third (key) mask is accepted and ignored, as in Keras.
        return (_as_bool(mask[0], self, "query_mask", q_shape),
                _as_bool(mask[1], self, "value_mask", v_shape))

    def _check_inputs(self, q: np.ndarray, v: np.ndarray, k: np.ndarray) -> None:
        if not (q.ndim >= 3 and q.ndim == v.ndim == k.ndim and k.shape[-1] == q.shape[-1]
                and q.shape[:-2] == v.shape[:-2] == k.shape[:-2] and k.shape[-2] == v.shape[-2]):
            raise ValueError(
                f"Inputs of layer {self.name} are incompatible: expected query (batch, ..., Tq, "
                "dim), value (batch, ..., Tv, value_dim) and key (batch, ..., Tv, dim) of the "
                f"same rank >= 3. Received: query with shape {q.shape}, value with shape "
                f"{v.shape}, key with shape {k.shape}")

    def _compute(self, inputs: Any, mask: Any, training: Any, return_attention_scores: bool,
                 use_causal_mask: bool) -> tuple[Any, Any]:
        _check_no_training(self, training)
        q, v, k = self._split_inputs(inputs)
        if not self.built:
            self.build([q.shape, v.shape] + ([k.shape] if len(inputs) == 3 else []))
        self._check_inputs(q, v, k)
        q_mask, v_mask = self._split_masks(mask, q.shape[:-1], v.shape[:-1])

        scores = self._calculate_scores(q, k)
        score_mask = None if v_mask is None else v_mask[..., None, :]
        if use_causal_mask:
            causal = np.tri(scores.shape[-2], scores.shape[-1], dtype=bool)  # key <= query
            score_mask = causal if score_mask is None else score_mask & causal
        if score_mask is not None:
            scores = np.where(score_mask, scores, scores - scores.dtype.type(_LARGE))
        weights = _softmax(scores, -1)
        outputs = weights @ v
        if q_mask is not None:
            outputs = np.where(q_mask[..., None], outputs, outputs.dtype.type(0))
        # The output mask (compute_mask) is the query mask.
        if return_attention_scores:
            return (outputs, weights), (q_mask, None)
        return outputs, q_mask

    def _calculate_scores(self, q: np.ndarray, k: np.ndarray) -> np.ndarray:
        if self.score_mode == "dot":
            scores = q @ np.swapaxes(k, -1, -2)
            return scores * self.scale if self.scale is not None else scores
        pairs = q[..., :, None, :] + k[..., None, :, :]  # (..., Tq, Tv, dim)
        pairs = pairs if self.scale is None else self.scale * pairs
        return self.concat_score_weight * np.sum(np.tanh(pairs), axis=-1)

    # ----------------------------------------------------------------- shapes & config
    def compute_mask(self, inputs: Any, mask: Any = None) -> Any:
        """The query mask (`mask[0]`), as Keras."""
        return self._split_masks(mask)[0]

    def compute_output_shape(self, input_shape: SequenceABC[Any]) -> Shape:
        shapes = self._shapes(input_shape)
        return (*shapes[0][:-1], shapes[1][-1])

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "use_scale": self.use_scale,
                "score_mode": self.score_mode, "dropout": self.dropout, "seed": self.seed}


class AdditiveAttention(Attention):
    """Additive (Bahdanau-style) attention, as `keras.layers.AdditiveAttention`:
    scores sum(scale * tanh(query + key)) over the features, softmax, then @ value."""

    def __init__(self, use_scale: bool = True, dropout: float = 0.0, **kwargs: Any) -> None:
        super().__init__(use_scale=use_scale, dropout=dropout, **kwargs)

    def _create_weights(self, query_shape: tuple) -> None:
        if self.use_scale:
            if query_shape[-1] is None:
                raise ValueError(f"{self.name} needs the last dimension of the query to build. "
                                 f"Received: query_shape={query_shape}")
            self.scale = self.add_weight((int(query_shape[-1]),), "glorot_uniform", name="scale")

    def _check_inputs(self, q: np.ndarray, v: np.ndarray, k: np.ndarray) -> None:
        super()._check_inputs(q, v, k)
        if self.scale is not None and q.shape[-1] != self.scale.shape[0]:
            raise ValueError(
                f"Input 0 of layer {self.name} is incompatible: expected the last dimension "
                f"{self.scale.shape[0]}. Received: query with shape {q.shape}")

    def _calculate_scores(self, q: np.ndarray, k: np.ndarray) -> np.ndarray:
        pairs = np.tanh(q[..., :, None, :] + k[..., None, :, :])  # (..., Tq, Tv, dim)
        return pairs @ self.scale if self.scale is not None else np.sum(pairs, axis=-1)

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        del config["score_mode"]
        return config


# --------------------------------------------------------------------------- MultiHeadAttention

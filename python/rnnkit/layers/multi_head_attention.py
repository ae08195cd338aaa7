"""MultiHeadAttention (NumPy, inference only), computed and masked as Keras 3 computes it: the
query, key and value projections, the scaled dot products over the attention axes with masks
(query, value, key, explicit and causal), and the output projection."""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence as SequenceABC
from typing import Any, Callable

import numpy as np

from .. import activations as _activations
from .._arrays import as_float_array, describe
from .attention import (
    _LARGE,
    _as_bool,
    _bind,
    _check_dropout,
    _check_no_training,
    _is_int,
    _is_shape_list,
    _is_tensor_argument,
    _positive_int,
    _softmax,
)
from .core import ModelLayer, Shape
from .symbolic import is_symbolic, symbolic_call

__all__ = ["MultiHeadAttention"]


_MHA_CALL = {"query": None, "value": None, "key": None, "query_mask": None, "value_mask": None,
             "key_mask": None, "attention_mask": None, "return_attention_scores": False,
             "training": None, "use_causal_mask": False}


def _attention_equations(rank: int, axes: tuple[int, ...]) -> tuple[str, str]:
    """The query-key and weights-value einsum equations for inputs of `rank`, attending over
    `axes`. Projected tensors are (input axes but the last, heads, channels); every axis but the
    attention axes and the channels is a batch axis of the product (heads included), and the
    scores are (batch axes, query attention axes, key attention axes)."""
    letters = "abcdefghijklmnopqrstuvwxyz"
    target = letters[: rank + 1]
    source = list(target)
    for axis, letter in zip(axes, letters[rank + 1 :]):
        source[axis] = letter
    batch = [target[i] for i in range(rank) if i not in axes]
    scores = "".join(batch + [target[a] for a in axes] + [source[a] for a in axes])
    source_str = "".join(source)
    return f"{target},{source_str}->{scores}", f"{scores},{source_str}->{target}"


class MultiHeadAttention(ModelLayer):
    """Multi-head attention, as `keras.layers.MultiHeadAttention`: query, key and value projected
    to `num_heads` heads, scaled dot-product attention in each, the heads projected back to the
    query's features (or `output_shape`).

    Masks as in Keras: the query's mask, `value_mask`, `key_mask`, `attention_mask`, the causal
    and sliding-window masks are and-ed. Keras reads the query's mask from the query tensor
    itself, so `query_mask` given to `__call__` stands for the mask the query carries in Keras
    (Keras ignores an explicit `query_mask` on a tensor without one; `_invoke` does too). As in
    Keras, a fully masked query row attends uniformly to every key when Keras takes its fused
    path (3-D inputs, no dropout, no scores returned) and to none (weights 0) otherwise.
    """

    def __init__(
        self, num_heads: int, key_dim: int, value_dim: int | None = None, dropout: float = 0.0,
        use_bias: bool = True, output_shape: int | SequenceABC[int] | None = None,
        attention_axes: int | SequenceABC[int] | None = None, sliding_window: int | None = None,
        flash_attention: bool | None = None, kernel_initializer: Any = "glorot_uniform",
        bias_initializer: Any = "zeros", kernel_regularizer: Any = None,
        bias_regularizer: Any = None, activity_regularizer: Any = None,
        kernel_constraint: Any = None, bias_constraint: Any = None, use_gate: bool = False,
        seed: int | None = None, **kwargs: Any,
    ) -> None:
        # Regularizers and constraints are training-only: accepted, not kept.
        super().__init__(**kwargs)
        self.num_heads = _positive_int(num_heads, "num_heads")
        self.key_dim = _positive_int(key_dim, "key_dim")
        self.value_dim = _positive_int(value_dim, "value_dim", True) or self.key_dim
        self.dropout = _check_dropout(dropout)
        self.use_bias = bool(use_bias)
        self.use_gate = bool(use_gate)
        if output_shape and not isinstance(output_shape, (list, tuple)):
            output_shape = (output_shape,)
        self._output_shape: tuple[int, ...] | None = tuple(
            _positive_int(d, "output_shape") for d in output_shape) if output_shape else None
        axes = (attention_axes,) if _is_int(attention_axes) else attention_axes
        if axes is not None and (not isinstance(axes, (list, tuple)) or not axes
                                 or not all(_is_int(a) for a in axes)):
            raise ValueError("`attention_axes` must be an int, list, or tuple of ints. "
                             f"Received: attention_axes={attention_axes!r}")
        self.attention_axes = None if axes is None else tuple(int(a) for a in axes)
        self.sliding_window = _positive_int(sliding_window, "sliding_window", True)
        self.flash_attention = flash_attention  # a kernel choice: the same numbers here
        if flash_attention and self.dropout > 0.0:
            raise ValueError("Dropout is not supported when flash attention is enabled. Please "
                             "set dropout to 0.0 to use flash attention.")
        self.kernel_initializer = kernel_initializer
        self.bias_initializer = bias_initializer
        self.seed = seed

    # ----------------------------------------------------------------- building
    def _resolve_axes(self, rank: int) -> tuple[int, ...]:
        if self.attention_axes is None:
            return tuple(range(1, rank - 1))
        axes = tuple(a if a >= 0 else rank + a for a in self.attention_axes)
        if len(set(axes)) != len(axes) or not all(1 <= a <= rank - 2 for a in axes):
            raise ValueError(
                f"`attention_axes` of {self.name} must be distinct axes of the inputs but the "
                f"batch and feature axes: 1 to {rank - 2} (or {1 - rank} to -2) for inputs of "
                f"rank {rank}. Received: attention_axes={self.attention_axes}")
        return axes

    def _shapes(self, query_shape: Any, value_shape: Any, key_shape: Any,
                what: str) -> tuple[tuple, tuple, tuple]:
        """Keras's (query_shape, value_shape, key_shape=None), or one list of 2 or 3 shapes."""
        if value_shape is None:
            if not _is_shape_list(query_shape):
                raise ValueError(
                    f"{what} of {self.name} takes query_shape, value_shape and optionally "
                    f"key_shape. Received: query_shape={query_shape}, value_shape=None")
            query_shape, value_shape, key_shape = (*query_shape, None)[:3]
        value_shape = tuple(value_shape)
        key_shape = value_shape if key_shape is None else tuple(key_shape)
        if value_shape[1:-1] != key_shape[1:-1]:
            raise ValueError(
                "All dimensions of `value` and `key`, except the last one, must be equal. "
                f"Received: value_shape={value_shape} and key_shape={key_shape}")
        return tuple(query_shape), value_shape, key_shape

    def build(self, query_shape: SequenceABC[Any],
              value_shape: SequenceABC[int | None] | None = None,
              key_shape: SequenceABC[int | None] | None = None) -> None:
        """Keras's signature; `build([query_shape, value_shape(, key_shape)])` also works."""
        shapes = self._shapes(query_shape, value_shape, key_shape, "build")
        rank = len(shapes[0])
        if rank < 3 or any(len(s) != rank or s[-1] is None for s in shapes):
            raise ValueError(
                f"{self.name} takes query, value and key of the same rank >= 3, (batch, ..., "
                f"features), the features known. Received: query_shape={shapes[0]}, "
                f"value_shape={shapes[1]}, key_shape={shapes[2]}")
        self._axes = self._resolve_axes(rank)
        self._rank = rank
        self._dot_equation, self._combine_equation = _attention_equations(rank, self._axes)
        if not self._weights:
            self._create_weights(*(int(s[-1]) for s in shapes))
        super().build(shapes[0])

    def _create_weights(self, query_dim: int, value_dim: int, key_dim: int) -> None:
        # An initializer from a Keras config (a dict) gives way to Keras's default.
        kernel, bias = (i if isinstance(i, str) or callable(i) else d for i, d in (
            (self.kernel_initializer, "glorot_uniform"), (self.bias_initializer, "zeros")))

        def dense(name: str, kernel_shape: tuple, bias_shape: tuple) -> tuple[Any, Any]:
            w = self.add_weight(kernel_shape, kernel, name=f"{name}/kernel")
            b = self.add_weight(bias_shape, bias, name=f"{name}/bias") if self.use_bias else None
            return w, b

        # Keras's order and weights-file names (EinsumDense sublayers _query_dense, ...).
        head_k, head_v = (self.num_heads, self.key_dim), (self.num_heads, self.value_dim)
        self.query_kernel, self.query_bias = dense("query_dense", (query_dim, *head_k), head_k)
        self.key_kernel, self.key_bias = dense("key_dense", (key_dim, *head_k), head_k)
        self.gate_kernel = self.gate_bias = None
        if self.use_gate:
            self.gate_kernel, self.gate_bias = dense("gate_dense", (query_dim, *head_v), head_v)
        self.value_kernel, self.value_bias = dense("value_dense", (value_dim, *head_v), head_v)
        out = self._output_shape or (query_dim,)
        self.output_kernel, self.output_bias = dense("output_dense", (*head_v, *out), out)

    # ----------------------------------------------------------------- calling
    def __call__(
        self, query: Any, value: Any, key: Any = None, query_mask: Any = None,
        value_mask: Any = None, key_mask: Any = None, attention_mask: Any = None,
        return_attention_scores: bool = False, training: bool | None = None,
        use_causal_mask: bool = False,
    ) -> Any:
        if is_symbolic(query, value, key, query_mask, value_mask, key_mask, attention_mask):
            return symbolic_call(self, (query, value), {
                "key": key, "query_mask": query_mask, "value_mask": value_mask,
                "key_mask": key_mask, "attention_mask": attention_mask,
                "return_attention_scores": return_attention_scores or None,
                "use_causal_mask": use_causal_mask or None})
        return self._compute(query, value, key, query_mask, value_mask, key_mask,
                             attention_mask, return_attention_scores, training,
                             use_causal_mask)[0]

    def _run(self, inputs: Any, mask: Any, training: bool) -> tuple[Any, Any]:
        """`inputs` [query, value(, key)], `mask` the masks they carry (a list, or the query's
        mask alone); returns (outputs, the query's mask)."""
        if not isinstance(inputs, (list, tuple)) or len(inputs) not in (2, 3):
            raise ValueError(f"{self.name} (MultiHeadAttention) takes inputs [query, value] or "
                             f"[query, value, key]. Received: inputs={describe(inputs)}")
        masks = [*mask, None, None][:3] if isinstance(mask, (list, tuple)) else [mask, None, None]
        key = inputs[2] if len(inputs) == 3 else None
        outputs = self._compute(inputs[0], inputs[1], key, *masks, None, False, training,
                                False)[0]
        return outputs, _as_bool(masks[0], self, "query_mask")

    def _invoke(self, args: SequenceABC[Any], kwargs: dict[str, Any],
                mask_of: Callable[[Any], Any], training: bool) -> tuple[Any, Any]:
        """As Keras's `Layer.__call__` then `MultiHeadAttention.call`: each of query, value, key
        passed as a tensor gives its `<name>_mask` when that is not given; the query's mask is
        the query's own whatever `query_mask` says, and it is the output mask. Returned scores
        carry the attention mask their softmax saw (Keras's Softmax layer sets it on them)."""
        bound = _bind(self, _MHA_CALL, args, kwargs)
        tensors = [n for n in _MHA_CALL if _is_tensor_argument(bound[n])]
        for name in tensors if len(tensors) > 1 else ():
            if bound.get(f"{name}_mask", False) is None:
                bound[f"{name}_mask"] = mask_of(bound[name])
        query_mask = mask_of(bound["query"]) if "query" in tensors else None
        training = training if bound["training"] is None else bound["training"]
        scores = bound["return_attention_scores"]
        outputs, scores_mask = self._compute(
            bound["query"], bound["value"], bound["key"], query_mask, bound["value_mask"],
            bound["key_mask"], bound["attention_mask"], scores, training,
            bound["use_causal_mask"])
        output_mask = _as_bool(query_mask, self, "query_mask")
        return outputs, (output_mask, scores_mask) if scores else output_mask

    def _check_inputs(self, q: np.ndarray, v: np.ndarray, k: np.ndarray) -> None:
        rank, axes = self._rank, self._axes
        dims = (self.query_kernel.shape[0], self.value_kernel.shape[0],
                self.key_kernel.shape[0])
        if not (
            q.ndim == v.ndim == k.ndim == rank
            and (q.shape[-1], v.shape[-1], k.shape[-1]) == dims
            and v.shape[:-1] == k.shape[:-1]
            and all(q.shape[i] == k.shape[i] for i in range(rank - 1) if i not in axes)
        ):
            raise ValueError(
                f"Inputs of layer {self.name} are incompatible: expected query, value and key "
                f"of rank {rank} with last dimensions {dims}, value and key alike but for the "
                f"last dimension, and query like key on the non-attention axes. Received: query "
                f"with shape {q.shape}, value with shape {v.shape}, key with shape {k.shape}")

    @staticmethod
    def _project(x: np.ndarray, kernel: np.ndarray, bias: np.ndarray | None,
                 bound: int = 1) -> np.ndarray:
        """Keras's EinsumDense: contract the last `bound` axes of x with the first of kernel."""
        y = np.tensordot(x, kernel, axes=(list(range(-bound, 0)), list(range(bound))))
        return y if bias is None else y + bias

    def _compute(
        self, query: Any, value: Any, key: Any, query_mask: Any, value_mask: Any, key_mask: Any,
        attention_mask: Any, return_attention_scores: bool, training: Any, use_causal_mask: bool,
    ) -> tuple[Any, np.ndarray | None]:
        """(outputs or (outputs, scores), the mask the scores' softmax took)."""
        _check_no_training(self, training)
        if self.flash_attention and return_attention_scores:
            raise ValueError("Returning attention scores is not supported when flash attention "
                             "is enabled. Please disable flash attention to access attention "
                             "scores.")
        q = as_float_array(query, self.dtype, "query")
        v = as_float_array(value, self.dtype, "value")
        k = v if key is None else as_float_array(key, self.dtype, "key")
        if not self.built:
            self.build(q.shape, v.shape, None if key is None else k.shape)
        self._check_inputs(q, v, k)
        mask = self._attention_mask(q, v, query_mask, value_mask, key_mask, attention_mask,
                                    use_causal_mask)

        scale = q.dtype.type(1.0 / math.sqrt(float(self.key_dim)))
        queries = self._project(q, self.query_kernel, self.query_bias) * scale
        keys = self._project(k, self.key_kernel, self.key_bias)
        values = self._project(v, self.value_kernel, self.value_bias)
        scores = np.einsum(self._dot_equation, queries, keys, optimize=True)
        # Keras's fused dot_product_attention path leaves a fully masked row uniform; its
        # Softmax layer path (dropout, scores returned, inputs of rank > 3) zeroes it.
        fused = not (self.dropout > 0.0 or return_attention_scores or q.ndim != 3)
        weights, mask = self._masked_softmax(scores, mask, zero_masked=not fused)
        heads = np.einsum(self._combine_equation, weights, values, optimize=True)
        if self.use_gate:
            heads = heads * _activations.sigmoid(
                self._project(q, self.gate_kernel, self.gate_bias))
        outputs = self._project(heads, self.output_kernel, self.output_bias, 2)
        return ((outputs, weights) if return_attention_scores else outputs), mask

    def _attention_mask(
        self, q: np.ndarray, v: np.ndarray, query_mask: Any, value_mask: Any, key_mask: Any,
        attention_mask: Any, use_causal_mask: bool,
    ) -> np.ndarray | None:
        """Keras's `_compute_attention_mask`: the query mask (..., T, 1), the value and key
        masks (..., 1, S), the causal and sliding-window masks (1, T, S), and-ed together and
        with `attention_mask`."""
        parts = [] if attention_mask is None else [
            _as_bool(attention_mask, self, "attention_mask")]
        if query_mask is not None:
            parts.append(_as_bool(query_mask, self, "query_mask")[..., None])
        for name, m in (("value_mask", value_mask), ("key_mask", key_mask)):
            if m is not None:
                parts.append(_as_bool(m, self, name)[..., None, :])
        rows, cols = np.arange(q.shape[1])[:, None], np.arange(v.shape[1])[None, :]
        if use_causal_mask:
            parts.append((rows >= cols)[None])
        if self.sliding_window is not None:
            parts.append((np.abs(rows - cols) < self.sliding_window)[None])
        try:
            return functools.reduce(np.logical_and, parts) if parts else None
        except ValueError:
            raise ValueError(
                f"The masks of layer {self.name} cannot be combined: shapes "
                f"{[p.shape for p in parts]} (query mask (..., T, 1), value/key masks "
                f"(..., 1, S), causal/sliding-window (1, T, S)) do not broadcast. Received: "
                f"query with shape {q.shape}, value with shape {v.shape}") from None

    def _masked_softmax(self, scores: np.ndarray, mask: np.ndarray | None,
                        zero_masked: bool) -> tuple[np.ndarray, np.ndarray | None]:
        """Keras's Softmax over the attention axes with `mask` expanded from before the heads
        axis: masked scores become -1e9, and with `zero_masked` their weights 0 afterwards."""
        n = len(self._axes)
        axes = tuple(range(scores.ndim - n, scores.ndim))
        if mask is None:
            return _softmax(scores, axes), None
        shape = mask.shape
        try:
            while mask.ndim < scores.ndim:
                mask = np.expand_dims(mask, -2 * n - 1)
        except ValueError:  # numpy's AxisError: Keras fails there too
            mask = None
        if mask is None or mask.ndim > scores.ndim or any(
            m not in (1, s) for m, s in zip(mask.shape[::-1], scores.shape[::-1])
        ):
            raise ValueError(
                f"The attention mask of layer {self.name} (shape {shape}) does not broadcast "
                f"to its attention scores (shape {scores.shape}): it must be (batch, query "
                "attention dims, key attention dims).")
        weights = _softmax(np.where(mask, scores, scores.dtype.type(-_LARGE)), axes)
        return np.where(mask, weights, weights.dtype.type(0)) if zero_masked else weights, mask

    # ----------------------------------------------------------------- shapes & config
    def compute_mask(self, inputs: Any, mask: Any = None) -> Any:
        """The query's mask, as Keras (of a list of masks, the first)."""
        if isinstance(mask, (list, tuple)):
            mask = mask[0] if mask else None
        return _as_bool(mask, self, "query_mask")

    def compute_output_shape(self, query_shape: SequenceABC[Any],
                             value_shape: SequenceABC[int | None] | None = None,
                             key_shape: SequenceABC[int | None] | None = None) -> Shape:
        query_shape = self._shapes(query_shape, value_shape, key_shape,
                                   "compute_output_shape")[0]
        return query_shape[:-1] + self._output_shape if self._output_shape else query_shape

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(), "num_heads": self.num_heads, "key_dim": self.key_dim,
            "value_dim": self.value_dim, "dropout": self.dropout, "use_bias": self.use_bias,
            "use_gate": self.use_gate, "output_shape": self._output_shape,
            "attention_axes": self.attention_axes, "sliding_window": self.sliding_window,
            "flash_attention": self.flash_attention,
            "kernel_initializer": self.kernel_initializer,
            "bias_initializer": self.bias_initializer, "seed": self.seed,
        }

"""rnnkit.Layer: the base class of cells and layers, with Keras 3's weight API on NumPy arrays."""

from __future__ import annotations

import contextlib
import contextvars
import itertools
import math
import threading
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from .. import _core, initializers
from .._arrays import describe, standardize_dtype

_layer_ids = itertools.count(1)


class Layer:
    """Base class for cells and layers, as `keras.layers.Layer` for inference.

    Subclasses create weights in `build(input_shape)` with `add_weight`, and compute in `call`.
    Weights are NumPy arrays. They are read-only so that the compiled kernels, which pack a copy
    of them, can never silently disagree with them: change them with `set_weights`, which writes
    into the same arrays (so `self.kernel` stays valid) after checking every shape.
    """

    def __init__(
        self,
        *,
        name: str | None = None,
        dtype: Any = None,
        trainable: bool = True,
        **kwargs: Any,
    ) -> None:
        kwargs.pop("input_shape", None)  # accepted for Keras compatibility; rnnkit builds lazily
        kwargs.pop("autocast", None)
        if kwargs:
            raise TypeError(
                f"Unrecognized keyword arguments passed to {type(self).__name__}: {kwargs}"
            )
        self.name = name or f"{type(self).__name__.lower()}_{next(_layer_ids)}"
        self.dtype = standardize_dtype(dtype)
        self.trainable = trainable
        self.built = False
        self._weights: list[np.ndarray] = []
        self._weight_names: list[str] = []
        self._weights_version = 0  # bumped by set_weights: compiled kernels compare it

    @property
    def compute_dtype(self) -> str:
        return self.dtype

    def build(self, input_shape: Sequence[int | None]) -> None:
        """Create the weights for inputs of `input_shape`; the base class has none."""
        self.built = True

    def add_weight(
        self,
        shape: Sequence[int] | None = None,
        initializer: Any = None,
        dtype: Any = None,
        trainable: bool = True,
        name: str | None = None,
        **unused: Any,
    ) -> np.ndarray:
        """Create, register and return a weight array (read-only; see the class docstring).

        `initializer` is a name ("glorot_uniform", "orthogonal", "zeros", ...), an initializer
        or a callable `(shape, dtype) -> array`; the default is "glorot_uniform", as in Keras.
        Keras's `regularizer`, `constraint` and similar training arguments are accepted and
        ignored.
        """
        shape = tuple(int(d) for d in (shape or ()))
        dtype = standardize_dtype(dtype or self.dtype)
        _charge_weight_budget(self, name, shape, dtype)
        init = initializers.get("glorot_uniform" if initializer is None else initializer)
        value = np.array(init(shape, dtype=dtype), dtype=dtype, order="C", copy=True)
        if value.shape != shape:
            raise ValueError(
                f"The initializer of weight {name!r} returned shape {value.shape}; "
                f"expected {shape}."
            )
        value.flags.writeable = False
        self._weights.append(value)
        self._weight_names.append(name or f"weight_{len(self._weights) - 1}")
        if not trainable:  # BatchNormalization's moving statistics
            self.__dict__.setdefault("_frozen_weights", set()).add(len(self._weights) - 1)
        return value

    @property
    def weights(self) -> list[np.ndarray]:
        """The weight arrays themselves, in creation order (read-only arrays)."""
        return list(self._weights)

    @property
    def trainable_weights(self) -> list[np.ndarray]:
        frozen = self.__dict__.get("_frozen_weights", ())  # indices into _weights
        if not self.trainable:
            return []
        own = [w for i, w in enumerate(self._weights) if i not in frozen]
        return own if len(self.weights) == len(self._weights) else self.weights

    @property
    def non_trainable_weights(self) -> list[np.ndarray]:
        trainable = {id(w) for w in self.trainable_weights}
        return [w for w in self.weights if id(w) not in trainable]

    def _weight_labels(self) -> list[str]:
        return list(self._weight_names)

    def get_weights(self) -> list[np.ndarray]:
        """Copies of the weights, in Keras order."""
        return [np.array(w) for w in self.weights]

    def set_weights(self, weights: Sequence[Any]) -> None:
        """Set every weight from a list in `get_weights()` order and shapes.

        Everything is checked before anything is written, so on error the weights are
        unchanged.
        """
        targets = self.weights
        labels = self._weight_labels()
        if isinstance(weights, np.ndarray) or not isinstance(weights, (list, tuple)):
            raise TypeError(f"`weights` must be a list of arrays. Received: {describe(weights)}")
        if len(weights) != len(targets):
            raise ValueError(
                f"{self.name} expects {len(targets)} weight arrays "
                f"({', '.join(labels) or 'none'}; build the layer first if it is not built), "
                f"but `weights` has {len(weights)}."
            )
        values = []
        for label, target, value in zip(labels, targets, weights):
            try:
                array = np.asarray(value)
            except (ValueError, TypeError) as error:
                raise ValueError(
                    f"Weight `{label}` of {self.name} must be an array of shape "
                    f"{target.shape}; received {type(value).__name__} ({error})"
                ) from None
            if array.dtype.kind not in "biuf":
                raise TypeError(
                    f"Weight `{label}` of {self.name} must be real numbers. "
                    f"Received: {describe(array)}"
                )
            if array.shape != target.shape:
                raise ValueError(
                    f"Weight `{label}` of {self.name} expected shape {target.shape}, "
                    f"received {array.shape}."
                )
            values.append(array)
        for target, array in zip(targets, values):
            target.flags.writeable = True
            try:
                np.copyto(target, array, casting="unsafe")
            finally:
                target.flags.writeable = False
        self._on_weights_changed()

    def _on_weights_changed(self) -> None:
        self._weights_version += 1

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if not self.built and args:
            self.build(np.shape(args[0]))
            self.built = True
        return self.call(*args, **kwargs)

    def call(self, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError(f"{type(self).__name__} must implement call()")

    def get_config(self) -> dict[str, Any]:
        return {"name": self.name, "dtype": self.dtype, "trainable": self.trainable}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Layer:
        return cls(**config)

    # Pickling (and copy.deepcopy): weights and stateful states travel; the compiled C++ state
    # (an RNN's fast-path `_plan`, a built-in cell's `_compiled` kernel) cannot be pickled and
    # is dropped, to be rebuilt lazily on the next call; locks are replaced by fresh ones.
    _UNPICKLABLE = ("_plan", "_plan_call", "_compiled")

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        for key in self._UNPICKLABLE:
            if key in state:
                state[key] = None
        locks = {}
        for key, value in list(state.items()):
            kind = _LOCK_TYPES.get(type(value))
            if kind is not None:
                locks[key] = kind
                del state[key]
        if locks:
            state["__rnnkit_locks__"] = locks
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        # Unpickled arrays carry a fresh (equal, not identical) dtype object, which the C++
        # kernels' dtype check refuses: rebuild them with the canonical dtype, keeping shared
        # references shared (`self.kernel is self._weights[0]`).
        state = dict(state)
        locks = state.pop("__rnnkit_locks__", {})
        memo: dict[int, Any] = {}
        state = {key: _canonical_arrays(value, memo) for key, value in state.items()}
        self.__dict__.update(state)
        for key, kind in locks.items():
            self.__dict__[key] = _LOCK_FACTORIES[kind]()
        for weight in state.get("_weights", ()):
            weight.flags.writeable = False  # read-only, as add_weight made them

    def __repr__(self) -> str:
        return f"<{type(self).__name__} name={self.name}, built={self.built}>"


# While a file from elsewhere is loaded, the weights its configuration declares may take at most
# what the file can hold (see weight_budget): a hostile config cannot make rnnkit allocate more.
_weight_budget: contextvars.ContextVar[list[Any] | None] = contextvars.ContextVar(
    "rnnkit_weight_budget", default=None
)


@contextlib.contextmanager
def weight_budget(nbytes: int, source: str) -> Iterator[None]:
    """Within the block, weights created by add_weight may total at most `nbytes`; past that,
    a ValueError naming `source` (the file whose configuration declared them)."""
    token = _weight_budget.set([int(nbytes), source])
    try:
        yield
    finally:
        _weight_budget.reset(token)


def _charge_weight_budget(layer: Layer, name: str | None, shape: tuple[int, ...],
                          dtype: str) -> None:
    budget = _weight_budget.get()
    if budget is None:
        return
    if any(d < 0 for d in shape):
        raise ValueError(f"{layer.name}: weight {name!r} has a negative dimension {shape}.")
    budget[0] -= math.prod(shape) * np.dtype(dtype).itemsize
    if budget[0] < 0:
        raise ValueError(
            f"{budget[1]}: its configuration declares more weights than the file holds (layer "
            f"{layer.name!r}, weight {name!r} of shape {shape}); refusing to allocate them."
        )


# Locks cannot be pickled: they are left out and made afresh on unpickling, by name.
_LOCK_FACTORIES = {"Lock": threading.Lock, "RLock": threading.RLock, "StateLock": _core.StateLock}
_LOCK_TYPES = {type(factory()): name for name, factory in _LOCK_FACTORIES.items()}


def _canonical_arrays(value: Any, memo: dict[int, Any]) -> Any:
    """`value` with every NumPy array in it (also inside lists and tuples) copied to an array
    of the canonical dtype object; the same array is copied once (see Layer.__setstate__)."""
    if isinstance(value, np.ndarray):
        if id(value) not in memo:
            copy = np.empty(value.shape, dtype=np.dtype(value.dtype.str))
            np.copyto(copy, value)
            memo[id(value)] = copy
        return memo[id(value)]
    if isinstance(value, list):
        return [_canonical_arrays(v, memo) for v in value]
    if isinstance(value, tuple) and type(value) is tuple:
        return tuple(_canonical_arrays(v, memo) for v in value)
    return value

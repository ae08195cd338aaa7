"""Built-in cells (SimpleRNNCell, LSTMCell, GRUCell) and StackedRNNCells.

A built-in cell holds its weights in Keras layout and order. Over a whole sequence it runs in C++
(a `_core` kernel made from the weights once, and again only after `set_weights`); its `call` is
the same step in NumPy, for the NumPy loop and for stacks that mix in custom cells.
"""

from __future__ import annotations

import inspect
import threading
from collections.abc import Sequence
from typing import Any

import numpy as np

from . import _core, activations, initializers
from ._arrays import as_float_array, describe
from .layer import Layer


def _positive_int(value: Any, name: str) -> int:
    if (
        isinstance(value, (bool, np.bool_))
        or not isinstance(value, (int, np.integer))
        or value <= 0
    ):
        raise ValueError(
            f"Received an invalid value for argument `{name}`, expected a positive integer. "
            f"Received: {name}={value!r}"
        )
    return int(value)


def _rate(value: Any, name: str) -> float:
    try:
        rate = float(value)
    except (TypeError, ValueError):
        rate = -1.0
    if not 0.0 <= rate <= 1.0:
        raise ValueError(f"`{name}` must be a float in [0, 1]. Received: {name}={value!r}")
    return rate


# Weight precisions of built-in cells: "bfloat16" (opt-in, float32 layers only) rounds every
# weight to bfloat16 and streams the recurrent weights at half the bytes; arithmetic stays
# float32. See docs/bfloat16.md for its error against float32.
PRECISIONS = ("float32", "bfloat16")


def round_to_bfloat16(array: np.ndarray) -> np.ndarray:
    """float32 values rounded to the nearest bfloat16 (ties to even), as float32."""
    values = np.ascontiguousarray(array, dtype=np.float32)
    bits = values.view(np.uint32).astype(np.uint64)
    rounded = (((bits + 0x7FFF + ((bits >> 16) & 1)) >> 16) << 16) & 0xFFFFFFFF
    out = rounded.astype(np.uint32).view(np.float32).reshape(values.shape)
    return np.where(np.isnan(values), values, out)


def state_sizes(cell: Any) -> list[int]:
    """A cell's state sizes as a flat list (Keras allows an int or a list)."""
    size = cell.state_size
    try:
        sizes = [int(size)] if isinstance(size, (int, np.integer)) else [int(s) for s in size]
    except (TypeError, ValueError):
        sizes = None
    if sizes is None or any(s < 0 for s in sizes):
        raise ValueError(
            "The `state_size` of an RNN cell must be a non-negative integer or a list of them "
            f"(one per state). Received: state_size={size!r} of {describe_cell(cell)}"
        )
    return sizes


def output_size(cell: Any) -> int:
    """What a cell outputs per step: `output_size` if it says, else its first state's size."""
    size = getattr(cell, "output_size", None)
    return int(size) if size is not None else state_sizes(cell)[0]


class _BuiltinCell(Layer):
    """What SimpleRNNCell, LSTMCell and GRUCell share: arguments, weights and the C++ kernel."""

    _CELL = ""  # the _core cell name
    _GATES = 1

    def __init__(
        self,
        units: int,
        activation: activations.ActivationLike = "tanh",
        recurrent_activation: activations.ActivationLike = "sigmoid",
        use_bias: bool = True,
        kernel_initializer: Any = "glorot_uniform",
        recurrent_initializer: Any = "orthogonal",
        bias_initializer: Any = "zeros",
        dropout: float = 0.0,
        recurrent_dropout: float = 0.0,
        seed: int | None = None,
        precision: str = "float32",
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if precision not in PRECISIONS:
            raise ValueError(
                f"`precision` must be one of {PRECISIONS}. Received: precision={precision!r}"
            )
        if precision == "bfloat16" and self.dtype != "float32":
            raise ValueError(
                "`precision='bfloat16'` (bfloat16 weights) needs dtype float32. "
                f"Received: dtype={self.dtype!r}"
            )
        self.precision = precision
        self.units = _positive_int(units, "units")
        if self._GATES * self.units**2 * 8 > np.iinfo(np.intp).max:
            raise ValueError(
                f"Received an invalid value for argument `units`: its recurrent kernel "
                f"({self.units} x {self._GATES * self.units} values) would exceed the address "
                f"space. Received: units={units!r}"
            )
        activations.canonical_name(activation, "activation")
        activations.canonical_name(recurrent_activation, "recurrent_activation")
        self.activation = activations.get(activation)
        self.recurrent_activation = activations.get(recurrent_activation)
        self.use_bias = bool(use_bias)
        self.kernel_initializer = kernel_initializer
        self.recurrent_initializer = recurrent_initializer
        self.bias_initializer = bias_initializer
        self.dropout = _rate(dropout, "dropout")
        self.recurrent_dropout = _rate(recurrent_dropout, "recurrent_dropout")
        if seed is not None and not isinstance(seed, (int, np.integer)):
            raise TypeError(f"`seed` must be an int or None. Received: seed={seed!r}")
        self.seed = seed
        self.state_size: int | list[int] = self.units
        self.output_size = self.units
        self._compiled: tuple[Any, Any] | None = None  # (cache key, _core kernel)
        self._compile_lock = threading.Lock()

    # ----------------------------------------------------------------- weights
    def _initializer(self, identifier: Any, offset: int) -> Any:
        """Initializers named by string draw from the cell's seed (when given), so a seeded
        cell is reproducible; each weight gets its own stream."""
        init = initializers.get(identifier)
        if self.seed is not None and isinstance(identifier, str) and hasattr(init, "seed"):
            init = type(init)(**{**init.get_config(), "seed": self.seed + offset})
        return init

    def _bias_shape(self) -> tuple[int, ...]:
        return (self._GATES * self.units,)

    def _bias_initializer(self) -> Any:
        return self._initializer(self.bias_initializer, 2)

    def build(self, input_shape: Sequence[int | None]) -> None:
        input_dim = input_shape[-1]
        _positive_int(input_dim, "input_shape[-1]")
        width = self._GATES * self.units
        # Weights past the address space: MemoryError (NumPy would say ValueError "array is too
        # big"), as for any other allocation too large to make.
        itemsize = np.dtype(self.dtype).itemsize
        if (input_dim + self.units + 2) * width * itemsize > np.iinfo(np.intp).max:
            raise MemoryError(
                f"Unable to allocate the weights of {self!r} (units={self.units}, "
                f"input_dim={input_dim}): {(input_dim + self.units) * width} {self.dtype} "
                "values exceed the address space."
            )
        created = len(self._weights)
        try:
            self.kernel = self.add_weight(
                (input_dim, width), self._initializer(self.kernel_initializer, 0), name="kernel"
            )
            self.recurrent_kernel = self.add_weight(
                (self.units, width),
                self._initializer(self.recurrent_initializer, 1),
                name="recurrent_kernel",
            )
            self.bias = (
                self.add_weight(self._bias_shape(), self._bias_initializer(), name="bias")
                if self.use_bias
                else None
            )
        except BaseException:  # e.g. MemoryError: no half-made weights stay behind
            del self._weights[created:]
            del self._weight_names[created:]
            raise
        self.built = True

    def _on_weights_changed(self) -> None:
        super()._on_weights_changed()
        compiled, self._compiled = self._compiled, None
        if compiled is not None:
            compiled[1].invalidate()  # fast-path plans holding it fall back to the slow path

    @property
    def input_dim(self) -> int | None:
        return self.kernel.shape[0] if self.built else None

    # ----------------------------------------------------------------- C++ path
    def _reset_after(self) -> bool:
        return False

    def compiled_kernel(self) -> Any | None:
        """The `_core` kernel of the current weights, or None when an activation is a Python
        callable (then only the NumPy step can run this cell)."""
        names = (
            activations.canonical_name(self.activation),
            activations.canonical_name(self.recurrent_activation),
        )
        if None in names:
            return None
        key = (self._weights_version, _core.active_isa())
        compiled = self._compiled
        if compiled is not None and compiled[0] == key:
            return compiled[1]
        with self._compile_lock:
            kernel_class = _core.Kernel64 if self.dtype == "float64" else _core.Kernel32
            kernel = kernel_class(
                self._CELL,
                self.units,
                self.kernel.shape[0],
                names[0],
                names[1],
                self.use_bias,
                self._reset_after(),
                weights=self.weights,  # get_weights() order: the C++ cell table's
                bf16_weights=self.precision == "bfloat16",
            )
            self._compiled = (key, kernel)
        return kernel

    # ----------------------------------------------------------------- NumPy path
    def _step_weights(self) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """kernel, recurrent_kernel, bias as the step computes with them: the weights, or with
        precision='bfloat16' the weights rounded to bfloat16, as the C++ kernels round them."""
        weights = (self.kernel, self.recurrent_kernel, self.bias)
        if self.precision != "bfloat16":
            return weights
        cached = getattr(self, "_rounded", None)
        if cached is None or cached[0] != self._weights_version:
            rounded = tuple(None if w is None else round_to_bfloat16(w) for w in weights)
            cached = self._rounded = (self._weights_version, rounded)
        return cached[1]

    def get_initial_state(self, batch_size: int) -> list[np.ndarray]:
        return [np.zeros((batch_size, s), dtype=self.dtype) for s in state_sizes(self)]

    def __call__(self, inputs: Any, states: Any, training: bool = False) -> Any:
        """One step, as `keras_cell(inputs, states)`: arrays are converted to the cell's dtype."""
        inputs = as_float_array(inputs, self.dtype, "inputs")
        if inputs.ndim != 2:
            raise ValueError(
                f"{self!r} runs one timestep: `inputs` must have shape (batch, features). "
                f"Received: inputs with shape {inputs.shape}"
            )
        if isinstance(states, np.ndarray) or not isinstance(states, (list, tuple)):
            states = [states]
        states = [as_float_array(s, self.dtype, "states") for s in states]
        if self.built and inputs.shape[1] != self.kernel.shape[0]:
            raise ValueError(
                f"{self!r} was built for {self.kernel.shape[0]} features. "
                f"Received: inputs with shape {inputs.shape}"
            )
        expected = [(inputs.shape[0], size) for size in state_sizes(self)]
        # As Keras: states past the cell's own are ignored; a state of one row broadcasts.
        if len(states) < len(expected) or any(
            s.ndim != 2 or s.shape[1] != size or s.shape[0] not in (1, batch)
            for s, (batch, size) in zip(states, expected)
        ):
            raise ValueError(
                f"`states` of {self!r} must be {len(expected)} array(s) of shapes {expected}. "
                f"Received: states of shapes {[s.shape for s in states]}"
            )
        if not self.built:
            self.build(inputs.shape)
        return self.call(inputs, states, training=training)

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "units": self.units,
            "activation": activations.serialize(self.activation),
            "recurrent_activation": activations.serialize(self.recurrent_activation),
            "use_bias": self.use_bias,
            "kernel_initializer": self.kernel_initializer,
            "recurrent_initializer": self.recurrent_initializer,
            "bias_initializer": self.bias_initializer,
            "dropout": self.dropout,
            "recurrent_dropout": self.recurrent_dropout,
            "seed": self.seed,
            "precision": self.precision,
        }

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.units})"


class SimpleRNNCell(_BuiltinCell):
    """Fully connected RNN cell, as `keras.layers.SimpleRNNCell`:
    h_t = activation(x_t · kernel + bias + h_{t-1} · recurrent_kernel).

    Weights: kernel (input_dim, units), recurrent_kernel (units, units), bias (units,).
    """

    _CELL = "simple_rnn"
    _GATES = 1

    def __init__(
        self, units: int, activation: activations.ActivationLike = "tanh", **kwargs: Any
    ) -> None:
        super().__init__(units, activation=activation, **kwargs)

    def call(
        self, inputs: np.ndarray, states: Sequence[np.ndarray], training: bool = False
    ) -> tuple[np.ndarray, list[np.ndarray]]:
        kernel, recurrent_kernel, bias = self._step_weights()
        h = inputs @ kernel
        if self.use_bias:
            h = h + bias
        h = self.activation(h + states[0] @ recurrent_kernel)
        return h, [h]

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        del config["recurrent_activation"]
        return config


class LSTMCell(_BuiltinCell):
    """Long Short-Term Memory cell, as `keras.layers.LSTMCell`; gates i, f, c, o.

    Weights: kernel (input_dim, 4*units), recurrent_kernel (units, 4*units), bias (4*units,).
    States: [h, c]. With `unit_forget_bias` the forget gate's bias starts at one.
    """

    _CELL = "lstm"
    _GATES = 4

    def __init__(self, units: int, unit_forget_bias: bool = True, **kwargs: Any) -> None:
        super().__init__(units, **kwargs)
        self.unit_forget_bias = bool(unit_forget_bias)
        self.state_size = [self.units, self.units]

    def _bias_initializer(self) -> Any:
        init = super()._bias_initializer()
        if not self.unit_forget_bias:
            return init
        units = self.units

        def forget_gate_ones(shape: Sequence[int], dtype: str = "float32") -> np.ndarray:
            return np.concatenate(
                [init((units,), dtype), np.ones(units, dtype), init((2 * units,), dtype)]
            )

        return forget_gate_ones

    def call(
        self, inputs: np.ndarray, states: Sequence[np.ndarray], training: bool = False
    ) -> tuple[np.ndarray, list[np.ndarray]]:
        h_prev, c_prev = states[0], states[1]
        kernel, recurrent_kernel, bias = self._step_weights()
        z = inputs @ kernel
        if self.use_bias:
            z = z + bias
        z = z + h_prev @ recurrent_kernel
        z_i, z_f, z_c, z_o = np.split(z, 4, axis=-1)
        i = self.recurrent_activation(z_i)
        f = self.recurrent_activation(z_f)
        c = f * c_prev + i * self.activation(z_c)
        o = self.recurrent_activation(z_o)
        h = o * self.activation(c)
        return h, [h, c]

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "unit_forget_bias": self.unit_forget_bias}


class GRUCell(_BuiltinCell):
    """Gated Recurrent Unit cell, as `keras.layers.GRUCell`; gates z, r, h.

    Weights: kernel (input_dim, 3*units), recurrent_kernel (units, 3*units), bias (2, 3*units)
    when `reset_after` (input bias, recurrent bias: the CuDNN/PyTorch convention) else
    (3*units,).
    """

    _CELL = "gru"
    _GATES = 3

    def __init__(self, units: int, reset_after: bool = True, **kwargs: Any) -> None:
        super().__init__(units, **kwargs)
        self.reset_after = bool(reset_after)

    def _reset_after(self) -> bool:
        return self.reset_after

    def _bias_shape(self) -> tuple[int, ...]:
        width = 3 * self.units
        return (2, width) if self.reset_after else (width,)

    def call(
        self, inputs: np.ndarray, states: Sequence[np.ndarray], training: bool = False
    ) -> tuple[np.ndarray, list[np.ndarray]]:
        h_prev = states[0]
        units = self.units
        kernel, u, bias = self._step_weights()
        if self.use_bias:
            input_bias, recurrent_bias = (bias[0], bias[1]) if self.reset_after else (bias, None)
        else:
            input_bias = recurrent_bias = None
        x = inputs @ kernel
        if input_bias is not None:
            x = x + input_bias
        x_z, x_r, x_h = x[:, :units], x[:, units : 2 * units], x[:, 2 * units :]
        if self.reset_after:
            m = h_prev @ u
            if recurrent_bias is not None:
                m = m + recurrent_bias
            z = self.recurrent_activation(x_z + m[:, :units])
            r = self.recurrent_activation(x_r + m[:, units : 2 * units])
            hh = self.activation(x_h + r * m[:, 2 * units :])
        else:
            z = self.recurrent_activation(x_z + h_prev @ u[:, :units])
            r = self.recurrent_activation(x_r + h_prev @ u[:, units : 2 * units])
            hh = self.activation(x_h + (r * h_prev) @ u[:, 2 * units :])
        h = z * h_prev + (1 - z) * hh
        return h, [h]

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "reset_after": self.reset_after}


BUILTIN_CELLS = (SimpleRNNCell, LSTMCell, GRUCell)


def check_cell(cell: Any, argument: str = "cell") -> None:
    """A cell is anything with `call` and `state_size`, as in Keras."""
    if not callable(getattr(cell, "call", None)):
        raise ValueError(f"Argument `{argument}` should have a `call` method. Received: {cell!r}")
    if getattr(cell, "state_size", None) is None:
        raise ValueError(
            "The RNN cell should have a `state_size` attribute (single integer or list of "
            f"integers, one integer per RNN state). Received: {argument}={cell!r}"
        )


def build_cell(cell: Any, input_shape: tuple[int | None, ...]) -> None:
    if not getattr(cell, "built", False):
        cell.build(input_shape)
        cell.built = True


class StackedRNNCells(Layer):
    """A stack of cells run as one: each cell's output is the next one's input; the stack
    outputs the last cell's output. States are nested per cell, as in Keras 3."""

    def __init__(self, cells: Sequence[Any], **kwargs: Any) -> None:
        if isinstance(cells, Layer) or not isinstance(cells, (list, tuple)) or not cells:
            raise ValueError(f"`cells` must be a non-empty list of cells. Received: {cells!r}")
        for i, cell in enumerate(cells):
            check_cell(cell, f"cells[{i}]")
        super().__init__(**kwargs)
        self.cells = list(cells)

    @property
    def state_size(self) -> list[Any]:
        return [cell.state_size for cell in self.cells]

    @property
    def output_size(self) -> int:
        return output_size(self.cells[-1])

    def build(self, input_shape: Sequence[int | None]) -> None:
        shape = tuple(input_shape)
        for cell in self.cells:
            build_cell(cell, shape)
            shape = (*shape[:-1], output_size(cell))
        self.built = True

    def get_initial_state(self, batch_size: int) -> list[list[np.ndarray]]:
        return [
            [
                np.zeros((batch_size, s), dtype=getattr(cell, "dtype", "float32"))
                for s in state_sizes(cell)
            ]
            for cell in self.cells
        ]

    def call(
        self,
        inputs: np.ndarray,
        states: Sequence[Any],
        training: bool = False,
        constants: Sequence[np.ndarray] | None = None,
    ) -> tuple[np.ndarray, list[Any]]:
        """One step of every cell in turn; `constants` go to the cells whose `call` takes them."""
        new_states = []
        for cell, cell_states in zip(self.cells, states):
            kwargs = (
                {"constants": constants}
                if constants is not None and accepts(cell, "constants")
                else {}
            )
            group = list(cell_states) if isinstance(cell_states, (list, tuple)) else [cell_states]
            inputs, cell_new = call_cell(cell, inputs, group, training, **kwargs)
            new_states.append(cell_new)
        return inputs, new_states

    @property
    def weights(self) -> list[np.ndarray]:
        return [w for cell in self.cells for w in getattr(cell, "weights", [])]

    def _weight_labels(self) -> list[str]:
        return [
            f"cells[{i}].{label}" for i, cell in enumerate(self.cells) for label in _labels(cell)
        ]

    def _on_weights_changed(self) -> None:
        super()._on_weights_changed()
        for cell in self.cells:
            if isinstance(cell, Layer):
                cell._on_weights_changed()

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "cells": self.cells}

    def __repr__(self) -> str:
        return f"StackedRNNCells({self.cells!r})"


def _labels(layer: Any) -> list[str]:
    if isinstance(layer, Layer):
        return layer._weight_labels()
    return [f"weight_{i}" for i in range(len(getattr(layer, "weights", [])))]


def accepts(cell: Any, argument: str) -> bool:
    """Whether `cell.call` takes `argument` (cached per class: the NumPy loop asks every step)."""
    key = (type(cell), argument)
    if key not in _ACCEPTS:
        try:
            _ACCEPTS[key] = argument in inspect.signature(cell.call).parameters
        except (TypeError, ValueError):
            _ACCEPTS[key] = False
    return _ACCEPTS[key]


_ACCEPTS: dict[tuple[type, str], bool] = {}


def call_cell(
    cell: Any, inputs: np.ndarray, states: list[Any], training: bool = False, **kwargs: Any
) -> tuple[np.ndarray, list[Any]]:
    """One step of any cell, the result normalised as Keras does (new states as a list)."""
    if training and accepts(cell, "training"):
        kwargs["training"] = training
    output, new_states = cell.call(inputs, states, **kwargs)
    if isinstance(new_states, np.ndarray) or not isinstance(new_states, (list, tuple)):
        new_states = [new_states]
    return np.asarray(output), list(new_states)


def describe_cell(cell: Any) -> str:
    return repr(cell) if isinstance(cell, Layer) else describe(cell)

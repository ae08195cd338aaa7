"""What every built-in cell shares: its Keras arguments, its weights and its C++ kernel.

A built-in cell holds its weights in Keras layout and order. Over a whole sequence it runs in C++
(a `_core` kernel made from the weights once, and again only after `set_weights`); its `call` is
the same step in NumPy, for the NumPy loop and for stacks that mix in custom cells.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

import numpy as np

from ... import _core, activations, initializers
from ..._arrays import as_float_array
from ..base import Layer
from . import registry
from .cell_protocol import state_sizes


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

def insert_argument(
    arguments: dict[str, Any], name: str, default: Any, after: str
) -> dict[str, Any]:
    """`arguments` with `name` added after `after` (Keras's order, which positional binding
    follows)."""
    items = list(arguments.items())
    index = [key for key, _ in items].index(after) + 1
    return dict([*items[:index], (name, default), *items[index:]])


class BuiltinCell(Layer):
    """What the built-in cells share: their Keras arguments, weights and C++ kernel.

    A subclass describes itself once (see registry.py): `CORE_NAME`, its row of the C++ cell
    table, and `ARGUMENTS`, its Keras arguments with defaults. The constructor binds those
    (positionally in that order, or by name), `get_config` returns every one of them, and the
    importers and `rnnkit.save` read the same list.
    """

    CORE_NAME = ""  # the C++ cell table's name of this cell ("lstm", ...)
    GATES = 1  # from the C++ cell table
    STATES = 1  # from the C++ cell table
    ARGUMENTS: dict[str, Any] = {
        "units": registry.REQUIRED,
        "activation": "tanh",
        "recurrent_activation": "sigmoid",
        "use_bias": True,
        "kernel_initializer": "glorot_uniform",
        "recurrent_initializer": "orthogonal",
        "bias_initializer": "zeros",
        "dropout": 0.0,
        "recurrent_dropout": 0.0,
        "seed": None,
        "precision": "float32",
    }

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls.__signature__ = registry.signature(cls.ARGUMENTS)
        if cls.CORE_NAME:
            (row,) = [row for row in _core.CELLS if row["name"] == cls.CORE_NAME]
            cls.GATES, cls.STATES = row["gates"], row["states"]
            registry.register_cell(cls)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        values, layer_kwargs = registry.bind(type(self).__name__, self.ARGUMENTS, args, kwargs)
        super().__init__(**layer_kwargs)
        self._set_arguments(values)
        self.state_size: int | list[int] = (
            self.units if self.STATES == 1 else [self.units] * self.STATES
        )
        self.output_size = self.units
        self._compiled: tuple[Any, Any] | None = None  # (cache key, _core kernel)
        self._compile_lock = threading.Lock()

    def _set_arguments(self, values: dict[str, Any]) -> None:
        """Check every argument, then keep it as an attribute of its name."""
        precision = values["precision"]
        if precision not in PRECISIONS:
            raise ValueError(
                f"`precision` must be one of {PRECISIONS}. Received: precision={precision!r}"
            )
        if precision == "bfloat16" and self.dtype != "float32":
            raise ValueError(
                "`precision='bfloat16'` (bfloat16 weights) needs dtype float32. "
                f"Received: dtype={self.dtype!r}"
            )
        units = _positive_int(values["units"], "units")
        if self.GATES * units**2 * 8 > np.iinfo(np.intp).max:
            raise ValueError(
                f"Received an invalid value for argument `units`: its recurrent kernel "
                f"({units} x {self.GATES * units} values) would exceed the address "
                f"space. Received: units={values['units']!r}"
            )
        seed = values["seed"]
        if seed is not None and not isinstance(seed, (int, np.integer)):
            raise TypeError(f"`seed` must be an int or None. Received: seed={seed!r}")
        for name, value in values.items():
            if name in ("activation", "recurrent_activation"):
                activations.canonical_name(value, name)
                value = activations.get(value)
            elif name in ("dropout", "recurrent_dropout"):
                value = _rate(value, name)
            elif isinstance(self.ARGUMENTS[name], bool):
                value = bool(value)
            elif name == "units":
                value = units
            setattr(self, name, value)
        if "recurrent_activation" not in values:  # a one-gate cell: unused by the kernel
            self.recurrent_activation = activations.sigmoid

    # ----------------------------------------------------------------- weights
    def _initializer(self, identifier: Any, offset: int) -> Any:
        """Initializers named by string draw from the cell's seed (when given), so a seeded
        cell is reproducible; each weight gets its own stream."""
        init = initializers.get(identifier)
        if self.seed is not None and isinstance(identifier, str) and hasattr(init, "seed"):
            init = type(init)(**{**init.get_config(), "seed": self.seed + offset})
        return init

    # The argument that initializes each weight, and the offset of its seed stream; any other
    # weight (a cell's extra weights) is drawn with kernel_initializer, as tf.keras 2 does.
    _INITIALIZED_BY = {
        "kernel": ("kernel_initializer", 0),
        "recurrent_kernel": ("recurrent_initializer", 1),
        "bias": ("bias_initializer", 2),
    }

    def _weight_initializer(self, name: str, index: int) -> Any:
        argument, offset = self._INITIALIZED_BY.get(name, ("kernel_initializer", index))
        return self._initializer(getattr(self, argument), offset)

    def weight_shapes(self, input_dim: int) -> list[tuple[str, tuple[int, ...]]]:
        """Each weight's name and shape, in get_weights() order: the C++ cell table's."""
        return _core.weight_shapes(
            self.CORE_NAME, self.units, input_dim, self.use_bias, self._flag("reset_after")
        )

    def _flag(self, name: str) -> bool:
        """A flag of the C++ cell description that only some cells have (GRU's reset_after)."""
        return bool(getattr(self, name, False))

    def build(self, input_shape: Sequence[int | None]) -> None:
        input_dim = _positive_int(input_shape[-1], "input_shape[-1]")
        width = self.GATES * self.units
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
            for index, (name, shape) in enumerate(self.weight_shapes(input_dim)):
                initializer = self._weight_initializer(name, index)
                setattr(self, name, self.add_weight(shape, initializer, name=name))
        except BaseException:  # e.g. MemoryError: no half-made weights stay behind
            del self._weights[created:]
            del self._weight_names[created:]
            raise
        if not self.use_bias:
            self.bias = None
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
                self.CORE_NAME,
                self.units,
                self.kernel.shape[0],
                names[0],
                names[1],
                self.use_bias,
                self._flag("reset_after"),
                weights=self.weights,  # get_weights() order: the C++ cell table's
                bf16_weights=self.precision == "bfloat16",
            )
            self._compiled = (key, kernel)
        return kernel

    # ----------------------------------------------------------------- NumPy path
    def _step_weights(self) -> dict[str, np.ndarray]:
        """The weights by name as the step computes with them: as they are, or with
        precision='bfloat16' rounded to bfloat16, as the C++ kernels round them."""
        names = self._weight_names
        if self.precision != "bfloat16":
            return dict(zip(names, self._weights))
        cached = getattr(self, "_rounded", None)
        if cached is None or cached[0] != self._weights_version:
            rounded = dict(zip(names, (round_to_bfloat16(w) for w in self._weights)))
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
        config = super().get_config()
        for name in self.ARGUMENTS:
            value = getattr(self, name)
            config[name] = activations.serialize(value) if name.endswith("activation") else value
        return config

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.units})"

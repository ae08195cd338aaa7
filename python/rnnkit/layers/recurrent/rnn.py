"""rnnkit.RNN: the recurrent layer, argument for argument `keras.layers.RNN` (plus tf.keras 2's
`time_major` and `constants`).

A call is validated completely before anything changes (weights, states, built shape), then runs
one of two paths with the same semantics: built-in cells and stacks of them go through the
layer's C++ plan (cpp/bindings/plan.hpp: the whole stack in one C++ call; a plain repeated call
reaches it with no Python validation at all); any other cell, or `constants`, goes to the
NumPy loop (`loop.py`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

import numpy as np

from ... import _core, _runtime
from ..._arrays import as_float_array, as_mask, describe, standardize_dtype
from ..base import Layer
from ..symbolic import first_mask, is_symbolic, symbolic_call
from . import registry
from .builtin import BuiltinCell
from .calling import RecurrentNode
from .cell_protocol import accepts, build_cell, check_cell, output_size, state_sizes
from .loop import run_loop
from .stacked import StackedRNNCells

# Attributes a fast-path plan depends on: setting one drops the plan.
_PLAN_INPUTS = frozenset({
    "cell", "return_sequences", "return_state", "go_backwards", "stateful", "unroll",
    "time_major", "zero_output_for_mask", "dtype", "_states",
})


class _Call(NamedTuple):
    """A validated call: converted inputs, fresh initial states (nested per cell), mask."""

    x: np.ndarray
    states: list[list[np.ndarray]]
    mask: np.ndarray | None
    constants: list[np.ndarray] | None
    training: bool


class RNN(RecurrentNode, Layer):
    """Base class for recurrent layers.

    Args:
        cell: a cell, or a list of cells (run as `StackedRNNCells`). A cell is any object with
            `call(input_at_t, states_at_t)` returning `(output_at_t, states_at_t_plus_1)`
            (optionally taking `constants=`, `training=`) and a `state_size` attribute (an int,
            or a list with one int per state); `output_size` is optional. Built-in cells
            (`SimpleRNNCell`, `LSTMCell`, `GRUCell`) and stacks of them run in C++.
        return_sequences: return every step's output, not only the last one.
        return_state: also return the final states: `(output, *states)`.
        go_backwards: process the sequence from the last step to the first; a returned sequence
            is in that processed (reversed) order, as in Keras.
        stateful: the final states of a call are the initial states of the next one, row by
            row; the batch size is fixed by the first call. `reset_states()` zeroes them.
        unroll: True computes the input projection of all steps in one matrix product (fastest;
            memory grows with the sequence); False does it in chunks, with working memory
            independent of the sequence length. The numbers are the same either way.
        time_major: inputs, masks and returned sequences are (timesteps, batch, ...), as in
            tf.keras 2.
        zero_output_for_mask: masked steps output zeros instead of the previous output.

    Call arguments: `inputs` (batch, timesteps, features); `initial_state` a list of arrays, one
    per state (for stacked cells nested per cell, or flat); `mask` boolean (batch, timesteps);
    `constants` a list of arrays passed to the cell's `call(..., constants=...)` at every step
    (tf.keras 2); `training` (dropout is inference-only: True with a nonzero dropout raises).
    """

    _plan_call: Any = None  # the plan's call as a bare C function (see __setattr__)

    def __init__(
        self,
        cell: Any,
        return_sequences: bool = False,
        return_state: bool = False,
        go_backwards: bool = False,
        stateful: bool = False,
        unroll: bool = False,
        time_major: bool = False,
        zero_output_for_mask: bool = False,
        **kwargs: Any,
    ) -> None:
        if isinstance(cell, (list, tuple)):
            cell = StackedRNNCells(cell)
        check_cell(cell)
        cells = cell.cells if isinstance(cell, StackedRNNCells) else [cell]
        dtypes = {standardize_dtype(getattr(c, "dtype", None)) for c in cells}
        if len(dtypes) > 1:
            raise ValueError(f"All cells must have one dtype. Received cells with {sorted(dtypes)}")
        (cell_dtype,) = dtypes
        if kwargs.get("dtype") is not None and standardize_dtype(kwargs["dtype"]) != cell_dtype:
            raise ValueError(
                f"`dtype`={kwargs['dtype']!r} differs from the cell's dtype {cell_dtype!r}; "
                "give the cell the dtype (or use SimpleRNN/LSTM/GRU(..., dtype=...))."
            )
        kwargs["dtype"] = cell_dtype
        super().__init__(**kwargs)
        self.cell = cell
        self.return_sequences = bool(return_sequences)
        self.return_state = bool(return_state)
        self.go_backwards = bool(go_backwards)
        self.stateful = bool(stateful)
        self.unroll = bool(unroll)
        self.time_major = bool(time_major)
        self.zero_output_for_mask = bool(zero_output_for_mask)
        self._states: list[list[np.ndarray]] | None = None  # stateful: nested per cell
        self._plan: Any = None  # the C++ plan of the last input shape (_plan_for)
        # (and its fast path as a bare C function, set with it by __setattr__)
        self._plan_key: Any = None  # the kernels and thread count it was made with
        # Stateful calls, reset_states and `states` take turns: a call reads the carried states
        # and replaces them, so two at once would lose one's update (docs/reliability.md). A
        # reentrant lock that a stateful plan takes in C++ (cpp/bindings/state_lock.hpp).
        self._state_lock = _core.StateLock()

    # ----------------------------------------------------------------- structure
    @property
    def _stacked(self) -> bool:
        return isinstance(self.cell, StackedRNNCells)

    @property
    def _cells(self) -> list[Any]:
        """The cells in order (read from `cell` each time: a layer's cell may be replaced)."""
        return self.cell.cells if self._stacked else [self.cell]

    @property
    def state_size(self) -> Any:
        return self.cell.state_size

    def _groups(self) -> list[list[int]]:
        return [state_sizes(c) for c in self._cells]

    def _axes(self) -> tuple[int, int]:
        """(batch axis, time axis) of inputs and masks."""
        return (1, 0) if self.time_major else (0, 1)

    def build(self, input_shape: Sequence[int | None]) -> None:
        shape = tuple(input_shape)
        if len(shape) != 3:
            raise ValueError(
                f"{self.name} expects inputs of rank 3, (batch, timesteps, features). "
                f"Received input_shape={shape}"
            )
        build_cell(self.cell, (shape[self._axes()[0]], shape[-1]))
        self._built_input_dim = shape[-1]
        self.built = True

    def _expected_input_dim(self) -> int | None:
        """The feature size this layer (or its first cell, if built on its own) was built for."""
        if self.built:
            return self._built_input_dim
        kernel = getattr(self._cells[0], "kernel", None)
        if getattr(self._cells[0], "built", False) and isinstance(kernel, np.ndarray):
            return kernel.shape[0]
        return None

    # ----------------------------------------------------------------- weights
    @property
    def weights(self) -> list[np.ndarray]:
        return self.cell.weights if hasattr(self.cell, "weights") else []

    def _weight_labels(self) -> list[str]:
        if isinstance(self.cell, Layer):
            return self.cell._weight_labels()
        return super()._weight_labels()

    def _on_weights_changed(self) -> None:
        super()._on_weights_changed()
        self._plan = None
        if isinstance(self.cell, Layer):
            self.cell._on_weights_changed()

    # ----------------------------------------------------------------- states
    def _format_states(self, groups: list[list[np.ndarray]]) -> list[Any]:
        """States as Keras 3 returns them (the C++ plan's formatter): flat for one cell, nested
        for a stack (a bare array for a cell without `get_initial_state` and an int
        `state_size`)."""
        bare = [
            isinstance(c.state_size, (int, np.integer)) and not hasattr(c, "get_initial_state")
            for c in self._cells
        ]
        return list(_core.format_states(None, groups, self._stacked, bare)[1:])

    def _normalize_states(
        self, states: Any, batch: int | None, argument: str
    ) -> list[list[np.ndarray]]:
        """Accept states nested per cell or flat (or one array for a one-state layer); check
        count and shapes; return fresh C-contiguous arrays of the layer's dtype, nested."""
        groups = self._groups()
        total = sum(len(g) for g in groups)
        if isinstance(states, np.ndarray) or not isinstance(states, (list, tuple)):
            states = [states]
        states = list(states)
        is_flat = len(states) == total and all(not isinstance(s, (list, tuple)) for s in states)
        if is_flat:
            nested, start = [], 0
            for g in groups:
                nested.append(states[start : start + len(g)])
                start += len(g)
        elif len(states) == len(groups):
            nested = [list(s) if isinstance(s, (list, tuple)) else [s] for s in states]
        else:
            nested = None
        expected = ", ".join(
            f"({batch if batch is not None else 'batch'}, {size})" for g in groups for size in g
        )
        if nested is None or [len(n) for n in nested] != [len(g) for g in groups]:
            raise ValueError(
                f"`{argument}` of {self.name} expected {total} state array(s) of shapes "
                f"[{expected}] for {self.cell!r}; received {_describe_states(states)}."
            )
        result = []
        for g, n in zip(groups, nested):
            group = []
            for size, value in zip(g, n):
                array = as_float_array(value, self.dtype, argument)
                if (
                    array.ndim != 2
                    or array.shape[1] != size
                    or (batch is not None and array.shape[0] != batch)
                ):
                    raise ValueError(
                        f"`{argument}` of {self.name} expected state arrays of shapes "
                        f"[{expected}]; received {_describe_states(states)}."
                    )
                if batch is None:
                    batch = array.shape[0]
                group.append(np.array(array, order="C", copy=True))
            result.append(group)
        if len({a.shape[0] for group in result for a in group}) > 1:
            raise ValueError(
                f"`{argument}` of {self.name}: every state must have the same batch size. "
                f"Received {_describe_states(states)}."
            )
        return result

    @property
    def states(self) -> list[Any] | None:
        """The carried states of a stateful layer (None before its first call)."""
        with self._state_lock:
            if self._states is None:
                return None
            return self._format_states([[s.copy() for s in g] for g in self._states])

    def reset_states(self, states: Any = None) -> None:
        """Zero the carried states, or set them to `states` (same forms as `initial_state`)."""
        with self._state_lock:
            self._reset_states(states)

    def _reset_states(self, states: Any) -> None:
        if states is None:  # as Keras 3: a layer without carried states has nothing to reset
            for group in self._states or []:
                for state in group:
                    state[...] = 0  # in place: the fast path writes into these same arrays
            return
        if not self.stateful:
            raise ValueError(
                f"`states` given to reset_states of {self.name}, which is not stateful: only a "
                "layer made with stateful=True carries states between calls."
            )
        batch = None if self._states is None else self._states[0][0].shape[0]
        self._states = self._normalize_states(states, batch, "states")

    reset_state = reset_states

    # ----------------------------------------------------------------- call
    def __call__(
        self,
        inputs: Any,
        initial_state: Any = None,
        mask: Any = None,
        constants: Any = None,
        training: bool = False,
    ) -> Any:
        plain = (
            initial_state is None
            and mask is None
            and constants is None
            and (training is False or training is None)  # anything else: _check_training
        )
        call = self._plan_call
        if call is not None and plain:  # the fast path: one C++ call (plan.hpp)
            result = call(inputs)  # a stateful plan takes _state_lock itself
            if result is not None:  # None unless `inputs` is exactly what the plan was made for
                return result
        if is_symbolic(inputs, initial_state, mask, constants):  # building a functional model
            return symbolic_call(
                self, (inputs,), {"initial_state": initial_state, "mask": mask,
                                  "constants": constants}
            )
        if self.stateful:
            with self._state_lock:
                return self._call(inputs, initial_state, mask, constants, training)
        return self._call(inputs, initial_state, mask, constants, training)

    def _call(
        self, inputs: Any, initial_state: Any, mask: Any, constants: Any, training: Any
    ) -> Any:
        """The validating path."""
        return self._run(self._prepare(inputs, initial_state, mask, constants, training))

    def _plan_for(self, x: np.ndarray, constants: list[np.ndarray] | None) -> Any | None:
        """The C++ plan for inputs of x's shape: the layer's current one, or a new one (which
        also becomes the fast path of plain calls of that shape); None when the call runs the
        NumPy loop (a cell that is not built in, a custom activation, constants, or
        rnnkit.testing.python_loop)."""
        if _runtime.force_python_loop or constants is not None:
            return None
        kernels = [
            cell.compiled_kernel() if isinstance(cell, BuiltinCell) else None
            for cell in self._cells
        ]
        if None in kernels:
            return None
        key = (*(id(k) for k in kernels), _core.get_num_threads())
        plan = self._plan
        if plan is not None and self._plan_key == key and plan.input_shape == list(x.shape):
            return plan
        plan_class = _core.Plan64 if self.dtype == "float64" else _core.Plan32
        plan = plan_class(
            kernels,
            list(x.shape),
            self.time_major,
            self.go_backwards,
            self.zero_output_for_mask,
            self.return_sequences,
            self.return_state,
            self._chunk_steps(),
            self._states if self.stateful else None,
            self._state_lock if self.stateful else None,
            self._stacked,
        )
        self._plan = plan
        self.__dict__["_plan_key"] = key
        _runtime.layers_with_plans.add(self)
        return plan

    def __setattr__(self, name: str, value: Any) -> None:
        if name == "_plan" or name in _PLAN_INPUTS:
            # A dropped plan answers None from now on, also to a call that fetched it before
            # and is waiting for _state_lock (the holder may be replacing the carried states).
            old = self.__dict__.get("_plan")
            if old is not None and old is not value:
                old.invalidate()
        object.__setattr__(self, name, value)
        if name == "_plan":
            self.__dict__["_plan_call"] = None if value is None else value.function()
        elif name in _PLAN_INPUTS:  # the fast path was made for the old value
            self.__dict__["_plan"] = self.__dict__["_plan_call"] = None

    def _prepare(
        self, inputs: Any, initial_state: Any, mask: Any, constants: Any, training: Any
    ) -> _Call:
        """Check and convert every argument of a call; changes nothing."""
        x = as_float_array(inputs, self.dtype, "inputs")
        if x.ndim != 3:
            axes = "(timesteps, batch, features)" if self.time_major else "(batch, steps, features)"
            raise ValueError(
                f"Input 0 of layer {self.name} is incompatible: expected rank 3, {axes}. "
                f"Received: inputs with shape {x.shape}"
            )
        batch_axis, time_axis = self._axes()
        batch, steps, features = x.shape[batch_axis], x.shape[time_axis], x.shape[2]
        if steps == 0:
            raise ValueError(
                f"`inputs` of {self.name} must have at least one timestep. Received shape {x.shape}"
            )
        if features == 0:
            raise ValueError(
                f"`inputs` of {self.name} must have at least one feature. Received shape {x.shape}"
            )
        expected_dim = self._expected_input_dim()
        if expected_dim is not None and features != expected_dim:
            raise ValueError(
                f"Input 0 of layer {self.name} is incompatible: the layer was built for "
                f"{expected_dim} features; received inputs with shape {x.shape} "
                f"({features} features)."
            )
        mask_array = None
        if mask is not None:
            shape = (steps, batch) if self.time_major else (batch, steps)
            mask_array = as_mask(mask, shape)
        constant_arrays = self._check_constants(constants)
        self._check_training(training)
        if self.stateful and self._states is not None:
            expected_batch = self._states[0][0].shape[0]
            if batch != expected_batch:
                raise ValueError(
                    f"If an RNN is stateful, the batch size of the input sequences must be the "
                    f"same as the batch size of the states (fixed by the first call or "
                    f"reset_states). Expected batch size: {expected_batch}. "
                    f"Received batch size: {batch}."
                )
        if initial_state is not None:
            states = self._normalize_states(initial_state, batch, "initial_state")
        elif self.stateful and self._states is not None:
            states = [[s.copy() for s in g] for g in self._states]
        else:
            states = [[np.zeros((batch, s), dtype=self.dtype) for s in g] for g in self._groups()]
        return _Call(x, states, mask_array, constant_arrays, bool(training))

    def _run(self, call: _Call) -> Any:
        """Build if needed, run a prepared call, keep stateful states, shape the result."""
        if not self.built:
            self.build(call.x.shape)
        plan = self._plan_for(call.x, call.constants)
        if plan is not None:
            result = plan.run(call.x, call.states, call.mask)
            self._keep_states(call.states)
            return result
        last, sequence, final = self._run_python(
            call.x, call.states, call.mask, call.constants, call.training
        )
        self._keep_states(final)
        output = sequence if self.return_sequences else last
        if not self.return_state:
            return output
        if self.stateful:  # the caller must not be able to write into the carried states
            final = [[s.copy() for s in group] for group in final]
        return (output, *self._format_states(final))

    def _keep_states(self, final: list[list[np.ndarray]]) -> None:
        """A stateful layer carries a call's final states: copied into the carried arrays (which
        the fast path writes in place), or they become the carried arrays on the first call."""
        if not self.stateful:
            return
        if self._states is None or self._states[0][0].shape != final[0][0].shape:
            self._states = [[s.copy() for s in group] for group in final]
            return
        for carried, new in zip(self._states, final):
            for c, n in zip(carried, new):
                c[...] = n

    def _check_constants(self, constants: Any) -> list[np.ndarray] | None:
        if constants is None:
            return None
        if isinstance(constants, np.ndarray) or not isinstance(constants, (list, tuple)):
            constants = [constants]
        takes = [c for c in self._cells if accepts(c, "constants")]
        if not takes:
            raise ValueError(
                f"`constants` were given, but no cell of {self.name} takes them: a cell's "
                f"`call` must accept a `constants` argument. Cell: {self.cell!r}"
            )
        return [as_float_array(c, self.dtype, "constants") for c in constants]

    def _check_training(self, training: Any) -> None:
        try:
            training = bool(training)
        except (TypeError, ValueError):  # e.g. an array of several flags
            raise TypeError(
                f"`training` must be a bool. Received: training={describe(training)}"
            ) from None
        if not training:
            return
        rates = [
            (name, getattr(c, name, 0.0))
            for c in self._cells
            for name in ("dropout", "recurrent_dropout")
        ]
        active = [f"{name}={rate}" for name, rate in rates if rate]
        if active:
            raise ValueError(
                f"`training=True` with {', '.join(active)}: rnnkit is inference-only and does "
                "not apply dropout. Call with training=False (the default)."
            )

    # ----------------------------------------------------------------- the two paths
    def _chunk_steps(self) -> int:
        """The C++ driver's chunk argument: -1 = every step at once (unroll), 0 = automatic."""
        return -1 if self.unroll else (_runtime.chunk_steps or 0)

    def _run_python(
        self,
        x: np.ndarray,
        states: list[list[np.ndarray]],
        mask: np.ndarray | None,
        constants: list[np.ndarray] | None,
        training: bool,
    ) -> tuple[np.ndarray, np.ndarray, list[list[np.ndarray]]]:
        initial = states if self._stacked else states[0]
        last, sequence, final = run_loop(
            self.cell,
            x,
            initial,
            mask=mask,
            constants=constants,
            go_backwards=self.go_backwards,
            zero_output_for_mask=self.zero_output_for_mask,
            time_major=self.time_major,
            training=training,
            dtype=self.dtype,
        )
        groups = final if self._stacked else [final]
        # np.array copies: a returned state never shares memory with an output.
        nested = [[np.array(s, dtype=self.dtype, order="C") for s in _as_list(g)] for g in groups]
        return np.array(last, dtype=self.dtype, order="C"), sequence, nested

    # ----------------------------------------------------------------- config
    def get_config(self) -> dict[str, Any]:
        arguments = {name: getattr(self, name) for name in RNN_ARGUMENTS}
        return {**super().get_config(), "cell": self.cell, **arguments}

    @property
    def output_size(self) -> int:
        return output_size(self.cell)

    def compute_output_shape(self, input_shape: Sequence[int | None]) -> Any:
        """The output shape (a list with the states' shapes after it, with `return_state`)."""
        shape = tuple(input_shape)
        batch_axis, time_axis = self._axes()
        batch, steps = shape[batch_axis], shape[time_axis]
        units = self.output_size
        if self.return_sequences:
            out: tuple = (steps, batch, units) if self.time_major else (batch, steps, units)
        else:
            out = (batch, units)
        if not self.return_state:
            return out
        return [out, *((batch, s) for c in self._cells for s in state_sizes(c))]

    def get_initial_state(self, batch_size: int) -> list[Any]:
        """Zero states for `batch_size` rows, as Keras's `RNN.get_initial_state`: the cell's
        own `get_initial_state` when it has one (a nested list for stacked cells)."""
        own = getattr(self.cell, "get_initial_state", None)
        if own is not None:
            return own(batch_size)
        return [np.zeros((int(batch_size), s), dtype=self.dtype) for s in state_sizes(self.cell)]

    def compute_mask(self, inputs: Any, mask: Any = None) -> Any:
        """The output mask, as Keras: the input mask with return_sequences (else None), then
        None for each state with return_state."""
        output_mask = first_mask(mask) if self.return_sequences else None
        if self.return_state:
            return [output_mask] + [None] * sum(len(state_sizes(c)) for c in self._cells)
        return output_mask

    def __repr__(self) -> str:
        return f"<{type(self).__name__} name={self.name}, cell={self.cell!r}>"


def _describe_states(states: Any) -> str:
    if isinstance(states, (list, tuple)):
        return "[" + ", ".join(_describe_states(s) for s in states) + "]"
    return describe(states)


def _as_list(group: Any) -> list[Any]:
    return list(group) if isinstance(group, (list, tuple)) else [group]


# The RNN's own arguments (its constructor's, but `cell`): what get_config returns, what the
# convenience layers take besides their cell's arguments, and what the importers read.
RNN_ARGUMENTS = registry.keyword_arguments(RNN.__init__, skip=("cell",))

"""Bidirectional: a recurrent layer run forwards and a copy of it backwards, outputs merged."""

from __future__ import annotations

import copy
from typing import Any

import numpy as np

from ... import _core
from ..base import Layer
from ..symbolic import first_mask, is_symbolic, symbolic_call
from .calling import RecurrentNode, state_count
from .rnn import RNN

_MERGE_MODES = ("concat", "sum", "mul", "ave", None)


def _copy_going_backwards(layer: RNN) -> RNN:
    config = layer.get_config()
    config["go_backwards"] = True
    config["name"] = f"backward_{layer.name}"
    if "cell" in config:  # an RNN over a cell: a fresh cell of the same configuration
        config["cell"] = _fresh(config["cell"])
    return type(layer).from_config(config)


def _fresh(cell: Any) -> Any:
    if isinstance(cell, (list, tuple)):
        return [_fresh(c) for c in cell]
    if hasattr(cell, "cells"):
        return type(cell)([_fresh(c) for c in cell.cells])
    if hasattr(cell, "get_config") and hasattr(type(cell), "from_config"):
        try:
            return type(cell).from_config(cell.get_config())
        except TypeError:
            pass
    return copy.deepcopy(cell)


class Bidirectional(RecurrentNode, Layer):
    """Runs a recurrent layer forwards and a copy of it backwards, and merges the outputs.

    `layer` itself becomes the forward layer; the backward layer is a fresh copy with
    `go_backwards=True` unless `backward_layer` is given. As in Keras, both layers output zeros
    at masked steps when they return sequences, the backward sequence is reversed back to time
    order before merging, `initial_state` is the forward states then the backward states, and
    weights are the forward layer's then the backward layer's. `merge_mode` is "concat", "sum",
    "mul", "ave" or None (a pair of outputs).
    """

    def __init__(
        self,
        layer: RNN,
        merge_mode: str | None = "concat",
        weights: Any = None,
        backward_layer: RNN | None = None,
        **kwargs: Any,
    ) -> None:
        if not isinstance(layer, RNN):
            raise ValueError(
                "Please initialize `Bidirectional` with an rnnkit recurrent layer. "
                f"Received: {layer!r}"
            )
        if backward_layer is not None and not isinstance(backward_layer, RNN):
            raise ValueError(
                f"`backward_layer` must be an rnnkit recurrent layer. Received: {backward_layer!r}"
            )
        if merge_mode not in _MERGE_MODES:
            raise ValueError(
                f"Invalid merge mode. Received: merge_mode={merge_mode!r}. "
                'Merge mode should be one of {"sum", "mul", "ave", "concat", None}'
            )
        kwargs.setdefault("dtype", layer.dtype)
        super().__init__(**kwargs)
        self.forward_layer = layer
        self.backward_layer = backward_layer or _copy_going_backwards(layer)
        forward, backward = self.forward_layer, self.backward_layer
        if forward.go_backwards == backward.go_backwards:
            raise ValueError(
                "Forward layer and backward layer should have different `go_backwards` value. "
                f"Received: forward_layer.go_backwards={forward.go_backwards}, "
                f"backward_layer.go_backwards={backward.go_backwards}"
            )
        for attribute in ("stateful", "return_sequences", "return_state", "time_major"):
            if getattr(forward, attribute) != getattr(backward, attribute):
                raise ValueError(
                    "Forward layer and backward layer are expected to have the same value for "
                    f"attribute {attribute!r}, got {getattr(forward, attribute)} for the forward "
                    f"layer and {getattr(backward, attribute)} for the backward layer"
                )
        if forward.dtype != backward.dtype:
            raise ValueError(
                "Forward layer and backward layer must have the same dtype, got "
                f"{forward.dtype!r} and {backward.dtype!r}"
            )
        sizes = (forward.output_size, backward.output_size)
        if merge_mode in ("sum", "mul", "ave") and sizes[0] != sizes[1]:
            raise ValueError(
                f"merge_mode={merge_mode!r} needs forward and backward outputs of one size; "
                f"received {sizes[0]} (forward) and {sizes[1]} (backward). Use 'concat' or None."
            )
        for sub in (forward, backward):
            sub.zero_output_for_mask = sub.return_sequences
        self.merge_mode = merge_mode
        self.stateful = forward.stateful
        self.return_sequences = forward.return_sequences
        self.return_state = forward.return_state
        self._pending_weights = list(weights) if weights else None

    # ----------------------------------------------------------------- weights and states
    @property
    def weights(self) -> list[np.ndarray]:
        return self.forward_layer.weights + self.backward_layer.weights

    def _weight_labels(self) -> list[str]:
        return [f"forward.{n}" for n in self.forward_layer._weight_labels()] + [
            f"backward.{n}" for n in self.backward_layer._weight_labels()
        ]

    def _on_weights_changed(self) -> None:
        super()._on_weights_changed()
        self.forward_layer._on_weights_changed()
        self.backward_layer._on_weights_changed()

    def build(self, input_shape: Any) -> None:
        self.forward_layer.build(input_shape)
        self.backward_layer.build(input_shape)
        self.built = True
        if self._pending_weights is not None:
            weights, self._pending_weights = self._pending_weights, None
            self.set_weights(weights)

    @property
    def states(self) -> list[Any] | None:
        forward, backward = self.forward_layer.states, self.backward_layer.states
        return None if forward is None else forward + backward

    def reset_states(self, states: Any = None) -> None:
        """Zero both directions' states, or set them: forward states then backward states."""
        if states is not None and (
            isinstance(states, np.ndarray) or not isinstance(states, (list, tuple))
        ):
            raise ValueError(
                "`states` of Bidirectional must be a list: the forward layer's states then the "
                f"backward layer's. Received: {type(states).__name__}"
            )
        with self.forward_layer._state_lock, self.backward_layer._state_lock:
            if states is None:
                self.forward_layer.reset_states()
                self.backward_layer.reset_states()
                return
            half = len(states) // 2
            saved = (self.forward_layer._states, self.backward_layer._states)
            try:
                self.forward_layer.reset_states(states[:half])
                self.backward_layer.reset_states(states[half:])
            except Exception:
                self.forward_layer._states, self.backward_layer._states = saved
                raise

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
        if is_symbolic(inputs, initial_state, mask, constants):  # building a functional model
            return symbolic_call(
                self, (inputs,), {"initial_state": initial_state, "mask": mask,
                                  "constants": constants}
            )
        if self.stateful:  # as RNN.__call__: one call at a time on the carried states
            with self.forward_layer._state_lock, self.backward_layer._state_lock:
                return self._call(inputs, initial_state, mask, constants, training)
        return self._call(inputs, initial_state, mask, constants, training)

    def _call(
        self, inputs: Any, initial_state: Any, mask: Any, constants: Any, training: Any
    ) -> Any:
        forward_state = backward_state = None
        if initial_state is not None:
            if isinstance(initial_state, np.ndarray) or not isinstance(
                initial_state, (list, tuple)
            ):
                raise ValueError(
                    "`initial_state` of Bidirectional must be a list: the forward layer's states "
                    f"then the backward layer's. Received: {type(initial_state).__name__}"
                )
            half = len(initial_state) // 2
            forward_state, backward_state = initial_state[:half], initial_state[half:]
        if not self.built and self._pending_weights is not None and np.ndim(inputs) == 3:
            self.build(np.shape(inputs))  # the weights given to the constructor apply now
        # Both directions are checked before either runs, so a bad call changes nothing.
        forward_call = self.forward_layer._prepare(
            inputs, forward_state, mask, constants, training
        )
        backward_call = self.backward_layer._prepare(
            inputs, backward_state, mask, constants, training
        )
        forward, backward = self.forward_layer, self.backward_layer
        for layer, call in ((forward, forward_call), (backward, backward_call)):
            if not layer.built:
                layer.build(call.x.shape)
        forward_plan = forward._plan_for(forward_call.x, constants)
        backward_plan = backward._plan_for(backward_call.x, constants)
        if forward_plan is not None and backward_plan is not None:
            result = _core.run_bidirectional(  # both directions, merged in place, in C++
                forward_plan, backward_plan, forward_call.x, forward_call.states,
                backward_call.states, forward_call.mask, self.merge_mode,
            )
            forward._keep_states(forward_call.states)
            backward._keep_states(backward_call.states)
            self.built = True
            return result
        # Custom cells: each direction through the NumPy loop, merged here.
        y = forward._run(forward_call)
        y_rev = backward._run(backward_call)
        self.built = True
        states: tuple = ()
        if self.return_state:
            states = tuple(y[1:]) + tuple(y_rev[1:])
            y, y_rev = y[0], y_rev[0]
        if self.return_sequences:
            y_rev = np.flip(y_rev, axis=0 if self.forward_layer.time_major else 1)
        output = self._merge(y, y_rev)
        if not self.return_state:
            return output
        return (*output, *states) if self.merge_mode is None else (output, *states)

    def _merge(self, y: np.ndarray, y_rev: np.ndarray) -> Any:
        if self.merge_mode == "concat":
            return np.concatenate([y, y_rev], axis=-1)
        if self.merge_mode == "sum":
            return y + y_rev
        if self.merge_mode == "ave":
            return (y + y_rev) / np.asarray(2, dtype=y.dtype)
        if self.merge_mode == "mul":
            return y * y_rev
        return (y, np.ascontiguousarray(y_rev))

    def compute_output_shape(self, input_shape: Any) -> Any:
        """The merged output shape (then both directions' states' shapes, with return_state)."""
        forward = self.forward_layer.compute_output_shape(input_shape)
        backward = self.backward_layer.compute_output_shape(input_shape)
        out_f = forward[0] if self.return_state else forward
        out_b = backward[0] if self.return_state else backward
        if self.merge_mode == "concat":
            merged: Any = (*out_f[:-1], out_f[-1] + out_b[-1])
        elif self.merge_mode is None:
            merged = [out_f, out_b]
        else:
            merged = out_f
        if not self.return_state:
            return merged
        return [*(merged if self.merge_mode is None else [merged]), *forward[1:], *backward[1:]]

    def compute_mask(self, inputs: Any, mask: Any = None) -> Any:
        """The output masks, as Keras: the input mask for each output sequence, None for
        the states."""
        mask = first_mask(mask)
        if self.return_sequences:
            output_mask: Any = [mask, mask] if self.merge_mode is None else mask
        else:
            output_mask = [None, None] if self.merge_mode is None else None
        if not self.return_state:
            return output_mask
        states = [None] * (2 * state_count(self.forward_layer))
        return (output_mask if self.merge_mode is None else [output_mask]) + states

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "layer": self.forward_layer,
            "merge_mode": self.merge_mode,
            "backward_layer": self.backward_layer,
        }

    def __repr__(self) -> str:
        return f"<Bidirectional name={self.name}, layer={self.forward_layer!r}>"

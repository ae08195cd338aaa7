"""The cell contract, as Keras states it: any object with `call(inputs, states)` returning
`(output, new_states)` and a `state_size` is a cell. These helpers read any cell, built-in or
not."""

from __future__ import annotations

import contextlib
import inspect
from typing import Any

import numpy as np

from ..._arrays import describe
from ..base import Layer


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
    """Build a cell once; a plain object without `build` (only `call` and `state_size`, as
    Keras allows) needs none. An object that refuses the `built` attribute stays as it is."""
    if getattr(cell, "built", False):
        return
    build = getattr(cell, "build", None)
    if callable(build):
        build(input_shape)
    # __slots__ or a read-only property: nothing to remember it on (build() ran, if any)
    with contextlib.suppress(AttributeError):
        cell.built = True


def labels(layer: Any) -> list[str]:
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

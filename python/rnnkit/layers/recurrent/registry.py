"""The registry of built-in cells and their layers: the one place every path reads them from.

A built-in cell class describes itself once: `CORE_NAME` (its row in the C++ cell table, which
also gives its gates, states and weight shapes: `_core.CELLS`, `_core.weight_shapes`) and
`ARGUMENTS` (its Keras arguments with their defaults, in Keras's order). Defining the class
registers it (`BuiltinCell.__init_subclass__`), and defining its convenience layer registers
that. The constructors, `get_config`, `rnnkit.save`/`load`, pickling, and the Keras and PyTorch
importers all read these entries, so an argument or a cell cannot be forgotten on one path.

This module imports no cell: the cells import it.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from typing import Any

# The default of an argument that has none (`units`).
REQUIRED = inspect.Parameter.empty

_CELLS: dict[str, type] = {}  # Keras class name -> cell class
_LAYERS: dict[str, type] = {}  # Keras class name -> layer class
_LAYER_OF_CELL: dict[type, type] = {}


def register_cell(cell_class: type) -> None:
    _CELLS[cell_class.__name__] = cell_class


def register_layer(layer_class: type, cell_class: type) -> None:
    _LAYERS[layer_class.__name__] = layer_class
    _LAYER_OF_CELL[cell_class] = layer_class


def cell_classes() -> dict[str, type]:
    """Every built-in cell class by its (Keras) class name."""
    return dict(_CELLS)


def layer_classes() -> dict[str, type]:
    """Every convenience layer class (SimpleRNN, LSTM, ...) by its (Keras) class name."""
    return dict(_LAYERS)


def layer_of(cell_class: type) -> type:
    """The convenience layer of a built-in cell class."""
    return _LAYER_OF_CELL[cell_class]


def cell_named(core_name: str) -> type:
    """The built-in cell class of a C++ cell table name ("lstm", "gru", ...)."""
    for cell_class in _CELLS.values():
        if core_name == cell_class.CORE_NAME:
            return cell_class
    raise KeyError(core_name)


def signature(arguments: Mapping[str, Any]) -> inspect.Signature:
    """The constructor signature help() and IDEs show for described arguments, then **kwargs
    (the base Layer's name, dtype, trainable)."""
    kind = inspect.Parameter.POSITIONAL_OR_KEYWORD
    parameters = [inspect.Parameter(name, kind, default=d) for name, d in arguments.items()]
    parameters.append(inspect.Parameter("kwargs", inspect.Parameter.VAR_KEYWORD))
    return inspect.Signature(parameters)


def bind(
    owner: str, arguments: Mapping[str, Any], args: tuple, kwargs: dict[str, Any]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Split a constructor call into (the described arguments with defaults filled in, the
    rest). Positional arguments bind in the description's order, as a Python signature would."""
    names = list(arguments)
    if len(args) > len(names):
        raise TypeError(
            f"{owner} takes at most {len(names)} positional arguments ({len(args)} given)"
        )
    values = dict(zip(names, args))
    for name in list(kwargs):
        if name in arguments:
            if name in values:
                raise TypeError(f"{owner} got multiple values for argument {name!r}")
            values[name] = kwargs.pop(name)
    for name, default in arguments.items():
        if name not in values:
            if default is REQUIRED:
                raise TypeError(f"{owner} missing required argument: {name!r}")
            values[name] = default
    return values, kwargs


def keyword_arguments(function: Callable[..., Any], skip: tuple[str, ...] = ()) -> dict[str, Any]:
    """The named parameters of a plain Python signature with their defaults."""
    return {
        name: parameter.default
        for name, parameter in inspect.signature(function).parameters.items()
        if name != "self"
        and name not in skip
        and parameter.kind not in (parameter.VAR_POSITIONAL, parameter.VAR_KEYWORD)
    }

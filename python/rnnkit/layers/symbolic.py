"""Symbolic tensors: what `rnnkit.Input` returns and what calling a layer on one returns, so a
functional model can be written as in Keras (`y = rnnkit.LSTM(8)(rnnkit.Input((None, 3)))`).

A `SymbolicTensor` knows its shape (None for unknown sizes), its dtype and the `Node` that made
it: the layer called, the call's arguments (symbolic tensors among them) and its outputs.
`rnnkit.Model(inputs, outputs)` walks these nodes back from the outputs to build its graph.

The output shapes of a call come from running the layer once on small zero inputs of the
symbolic shapes, twice with different sizes for the unknown dimensions: a dimension that differs
between the two runs is unknown. This works the same for every layer (several outputs, attention
scores, custom layers) and checks the call as Keras does when a model is built. Recurrent
layers, whose stateful states a run would change, use their `compute_output_shape`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

# The sizes given to unknown dimensions in the two shape-finding runs: large enough for kernels
# and pools; the batch dimension gets small ones.
_PROBE_SIZES = ((16, 2), (17, 3))
_MAX_PROBE_ELEMENTS = 1 << 26  # fixed sizes of real inputs are far below (an image: ~1e6)


class SymbolicTensor:
    """A placeholder for an array in a functional model: `shape` (batch first, None where
    unknown), `dtype`, and the node (layer call) that produces it."""

    __slots__ = ("shape", "dtype", "node", "index", "name")

    def __init__(
        self, shape: tuple[int | None, ...], dtype: str, node: Node | None = None,
        index: int = 0, name: str | None = None,
    ) -> None:
        self.shape = tuple(None if d is None else int(d) for d in shape)
        self.dtype = str(dtype)
        self.node = node
        self.index = index
        self.name = name

    @property
    def ndim(self) -> int:
        return len(self.shape)

    def __repr__(self) -> str:
        made_by = f", made by {self.node.layer.name}" if self.node is not None else ""
        return f"<SymbolicTensor shape={self.shape}, dtype={self.dtype}{made_by}>"

    def __array__(self, *args: Any, **kwargs: Any) -> Any:
        raise TypeError(
            "A symbolic tensor (from rnnkit.Input or a layer called on one) has no values: "
            "build a model with rnnkit.Model(inputs, outputs) and call the model on arrays."
        )


class Node:
    """One call of a layer in a functional graph: `args` and `kwargs` as given (symbolic tensors
    among them) and `outputs` (a structure of symbolic tensors)."""

    __slots__ = ("layer", "args", "kwargs", "outputs", "mask_from_first_input")

    def __init__(self, layer: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        self.layer = layer
        self.args = args
        self.kwargs = kwargs
        self.outputs: Any = None
        # tf.keras 2's rule, for its files: a call without `mask` gets the mask of its first
        # input even beside other tensors (Keras 3 gives none then, e.g. with initial_state).
        self.mask_from_first_input = False

    @property
    def inputs(self) -> list[SymbolicTensor]:
        """The symbolic tensors the call reads, in argument order."""
        return [t for t in flatten((self.args, self.kwargs)) if isinstance(t, SymbolicTensor)]


# --------------------------------------------------------------------------- structures
def flatten(value: Any) -> list[Any]:
    """The leaves of nested lists, tuples and dicts (dicts in key order as given)."""
    if isinstance(value, (list, tuple)):
        return [leaf for item in value for leaf in flatten(item)]
    if isinstance(value, dict):
        return [leaf for item in value.values() for leaf in flatten(item)]
    return [value]


def map_structure(function: Callable[[Any], Any], value: Any) -> Any:
    """`value` with `function` applied to every leaf, lists, tuples and dicts kept."""
    if isinstance(value, list):
        return [map_structure(function, item) for item in value]
    if isinstance(value, tuple):
        return tuple(map_structure(function, item) for item in value)
    if isinstance(value, dict):
        return {key: map_structure(function, item) for key, item in value.items()}
    return function(value)


def is_symbolic(*values: Any) -> bool:
    """Whether any of `values` is or holds a symbolic tensor."""
    for value in values:
        if isinstance(value, SymbolicTensor):
            return True
        if isinstance(value, (list, tuple, dict)) and any(
            isinstance(leaf, SymbolicTensor) for leaf in flatten(value)
        ):
            return True
    return False


# --------------------------------------------------------------------------- calling a layer
def symbolic_call(layer: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """Record a call of `layer` on symbolic tensors; return its symbolic outputs."""
    kwargs = {key: value for key, value in kwargs.items() if value is not None}
    node = Node(layer, tuple(args), kwargs)
    shapes, dtypes = _output_shapes(layer, node)
    leaves = iter(range(len(flatten(shapes))))

    def make(shape: Any) -> SymbolicTensor:
        index = next(leaves)
        return SymbolicTensor(shape, dtypes[index], node, index)

    node.outputs = _map_shapes(make, shapes)
    return node.outputs


def _map_shapes(function: Callable[[Any], Any], shapes: Any) -> Any:
    """Apply `function` to each shape (a tuple of dims) in a structure of shapes."""
    if isinstance(shapes, tuple) and all(d is None or isinstance(d, int) for d in shapes):
        return function(shapes)
    if isinstance(shapes, (list, tuple)):
        return type(shapes)(_map_shapes(function, s) for s in shapes)
    if isinstance(shapes, dict):
        return {key: _map_shapes(function, s) for key, s in shapes.items()}
    raise TypeError(f"Not a structure of shapes: {shapes!r}")


def _output_shapes(layer: Any, node: Node) -> tuple[Any, list[str]]:
    """The structure of output shapes of `node` and the dtype of each output."""
    shapes_of = getattr(layer, "_symbolic_output_shapes", None)
    if shapes_of is not None:  # layers whose run would change carried states
        shapes = shapes_of([t.shape for t in node.inputs])
        return shapes, [layer.dtype] * len(_shape_leaves(shapes))
    runs = []
    for known, batch in _PROBE_SIZES:
        def fill(value: Any, known: int = known, batch: int = batch) -> Any:
            if not isinstance(value, SymbolicTensor):
                return value
            shape = [batch if i == 0 and d is None else (known if d is None else d)
                     for i, d in enumerate(value.shape)]
            if math.prod(shape) > _MAX_PROBE_ELEMENTS:
                raise ValueError(
                    f"The inputs of layer {layer.name} are too large to infer its output "
                    f"shape: {value.shape} (more than {_MAX_PROBE_ELEMENTS:,} elements)."
                )
            return np.zeros(shape, dtype=value.dtype)

        args = map_structure(fill, node.args)
        kwargs = map_structure(fill, node.kwargs)
        outputs, _ = layer._invoke(args, kwargs, no_masks, False)
        runs.append(outputs)
    first, second = (flatten(r) for r in runs)
    shapes = [
        tuple(a if a == b else None for a, b in zip(np.shape(x), np.shape(y)))
        for x, y in zip(first, second)
    ]
    dtypes = [np.asarray(x).dtype.name for x in first]
    leaves = iter(shapes)
    return map_structure(lambda _: next(leaves), runs[0]), dtypes


def _shape_leaves(shapes: Any) -> list[Any]:
    if isinstance(shapes, tuple) and all(d is None or isinstance(d, int) for d in shapes):
        return [shapes]
    return [leaf for s in shapes for leaf in _shape_leaves(s)]


# --------------------------------------------------------------------------- Keras's mask rules
def no_masks(value: Any) -> Any:
    """`mask_of` for values that carry no masks."""
    return map_structure(lambda _: None, value)


def implicit_mask(tensor_arguments: list[Any], mask_of: Callable[[Any], Any]) -> Any:
    """The `mask` Keras's `Layer.__call__` fills in when the call does not give one: the masks
    of the call's tensor argument when it has exactly one (`tensor_arguments` lists the
    arguments holding arrays, None omitted), else none (so an RNN called with
    `initial_state` gets no mask in Keras 3)."""
    present = [a for a in tensor_arguments if a is not None]
    return mask_of(present[0]) if len(present) == 1 else None


def first_mask(mask: Any) -> Any:
    """The first mask of a structure of masks (Keras's `tree.flatten(mask)[0]`)."""
    leaves = flatten(mask)
    return leaves[0] if leaves else None

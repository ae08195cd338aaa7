"""rnnkit.Model: functional models, as `keras.Model(inputs, outputs)`, for inference.

    x = rnnkit.Input((None, 8))
    y = rnnkit.Dense(4)(rnnkit.LSTM(16)(x))
    model = rnnkit.Model(x, y)

Any directed acyclic graph of layer calls: several inputs and outputs (single, list or dict),
merge layers, shared layers called several times, nested models, a recurrent layer's states
wired into another's `initial_state`, explicit masks (`layer(x, mask=m)`). Masks travel with
the values as in Keras: each call's `_invoke` fills in the mask Keras would and returns the
masks of its outputs (layers/symbolic.py states the rules).

The graph is laid out as Keras lays it out (`keras/src/ops/function.py`): nodes by decreasing
depth from the outputs, layers in that order (so `layers` and `get_weights()` follow Keras's
order and Keras's weights copy across).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Callable

import numpy as np

from .._arrays import as_mask, describe
from ..layers.core import InputLayer
from ..layers.operations import Operation
from ..layers.symbolic import (
    Node,
    SymbolicTensor,
    flatten,
    is_symbolic,
    map_structure,
    symbolic_call,
)
from .blas_threads import single_threaded_blas
from .container import LayerContainer
from .functional_config import model_config, model_from_config
from .profiling import Profiled
from .progress import batches_with_progress
from .summary import format_shape, summary_table


def Input(  # noqa: N802 -- Keras's name
    shape: Sequence[int | None] | None = None,
    batch_size: int | None = None,
    dtype: Any = None,
    sparse: bool | None = None,
    batch_shape: Sequence[int | None] | None = None,
    name: str | None = None,
    tensor: Any = None,
    optional: bool = False,
) -> SymbolicTensor:
    """A model input, as `keras.Input`: `shape` without the batch dimension (None for unknown
    sizes), or `batch_shape` with it; `dtype` "float32" by default ("int32" for token ids)."""
    if sparse or tensor is not None or optional:
        raise ValueError("rnnkit.Input does not support `sparse`, `tensor` or `optional`.")
    layer = InputLayer(shape=shape, batch_size=batch_size, dtype=dtype, batch_shape=batch_shape,
                       name=name)
    return layer.output


class Model(Profiled, LayerContainer):
    """A functional model: `Model(inputs, outputs)` with the symbolic tensors of `rnnkit.Input`
    and of layer calls. Call it on arrays as Keras: one array, a list (in input order) or a
    dict by input name; several outputs come back as they were given (list or dict).
    `with model.profile() as times:` times each layer's calls (models/profiling.py)."""

    def __init__(self, inputs: Any, outputs: Any, name: str | None = None, **kwargs: Any) -> None:
        kwargs.pop("trainable", None)
        kwargs.pop("dtype", None)
        super().__init__(name=name, **kwargs)
        for what, value in (("inputs", inputs), ("outputs", outputs)):
            leaves = flatten(value)
            if not leaves or not all(isinstance(t, SymbolicTensor) for t in leaves):
                raise TypeError(
                    f"Model `{what}` must be symbolic tensors (from rnnkit.Input and layer "
                    f"calls), a list or a dict of them. Received: {describe(value)}"
                )
        self._inputs_struct = inputs
        self._outputs_struct = outputs
        self._inputs = flatten(inputs)
        self._outputs = flatten(outputs)
        for tensor in self._inputs:
            if tensor.node is None or not isinstance(tensor.node.layer, InputLayer):
                raise ValueError(
                    f"Model inputs must come from rnnkit.Input (or an InputLayer). Received: "
                    f"{tensor!r}"
                )
        self._nodes, self._operations = _map_graph(self._inputs, self._outputs)
        self._layers = [op for op in self._operations if not isinstance(op, Operation)]
        self.built = True

    # ----------------------------------------------------------------- structure
    @property
    def layers(self) -> list[Any]:
        """The layers, in Keras's order (input layers included, as in Keras's functional
        models)."""
        return list(self._layers)

    @property
    def inputs(self) -> list[SymbolicTensor]:
        return list(self._inputs)

    @property
    def outputs(self) -> list[SymbolicTensor]:
        return list(self._outputs)

    @property
    def input_names(self) -> list[str]:
        return [t.node.layer.name for t in self._inputs]

    @property
    def dtype(self) -> str:  # type: ignore[override]
        """The first computing layer's dtype."""
        for layer in self.__dict__.get("_layers") or []:
            if not isinstance(layer, InputLayer):
                return str(getattr(layer, "dtype", "float32"))
        return "float32"

    @dtype.setter
    def dtype(self, value: Any) -> None:
        pass  # a model computes in its layers' dtypes

    @property
    def input_shape(self) -> Any:
        shapes = [t.shape for t in self._inputs]
        return shapes[0] if len(shapes) == 1 else shapes

    @property
    def output_shape(self) -> Any:
        if isinstance(self._outputs_struct, SymbolicTensor) or _is_singleton(
                self._outputs_struct):
            return self._outputs[0].shape
        return [t.shape for t in self._outputs]  # a list for dict outputs too, as Keras

    def compute_output_shape(self, input_shape: Any) -> Any:
        """The output shapes for inputs of `input_shape` (the model's own, up to the batch)."""
        shapes = [input_shape] if len(self._inputs) == 1 else list(input_shape)
        batch = shapes[0][0] if shapes and len(shapes[0]) else None
        return self._shapes_with_batch(batch)

    def _shapes_with_batch(self, batch: int | None) -> Any:
        shapes = [(batch, *t.shape[1:]) for t in self._outputs]
        if _is_singleton(self._outputs_struct):
            return shapes[0]
        return _restructure(self._outputs_struct, shapes)

    def build(self, input_shape: Any) -> None:
        self.built = True  # a functional model is built by its layer calls

    # ----------------------------------------------------------------- call
    def __call__(self, inputs: Any, training: bool = False, mask: Any = None) -> Any:
        if is_symbolic(inputs, mask):  # a nested model in another functional model
            return symbolic_call(self, (inputs,), {"mask": mask})
        with single_threaded_blas():
            return self._run(inputs, mask, training)[0]

    def call(self, inputs: Any, training: bool = False, mask: Any = None) -> Any:
        return self(inputs, training=training, mask=mask)

    def _invoke(self, args: Any, kwargs: dict[str, Any], mask_of: Callable[[Any], Any],
                training: bool) -> tuple[Any, Any]:
        kwargs = dict(kwargs)
        inputs = args[0] if args else kwargs.pop("inputs")
        mask = kwargs.pop("mask", None)
        if mask is None:
            mask = mask_of(inputs)
        return self._run(inputs, mask, bool(kwargs.pop("training", None) or training))

    def _symbolic_output_shapes(self, input_shapes: list[Any]) -> Any:
        batch = input_shapes[0][0] if input_shapes and len(input_shapes[0]) else None
        return self._shapes_with_batch(batch)

    def _run(self, inputs: Any, mask: Any, training: bool) -> tuple[Any, Any]:
        """(outputs, their masks) for arrays `inputs` with input masks `mask`."""
        arrays = self._input_arrays(inputs)
        masks = self._input_masks(mask, arrays)
        values: dict[int, tuple[Any, Any]] = {}
        for tensor, array, input_mask in zip(self._inputs, arrays, masks):
            layer = tensor.node.layer
            values[id(tensor)] = (layer._prepare_inputs(array), input_mask)
        for node in self._nodes:
            if isinstance(node.layer, InputLayer):
                continue
            self._run_node(node, values, training)
        outputs = [values[id(t)] for t in self._outputs]
        if _is_singleton(self._outputs_struct):  # Keras unpacks a one-output list
            return outputs[0]
        return (
            _restructure(self._outputs_struct, [value for value, _ in outputs]),
            _restructure(self._outputs_struct, [m for _, m in outputs]),
        )

    def _run_node(self, node: Node, values: dict[int, tuple[Any, Any]], training: bool) -> None:
        known: dict[int, Any] = {}

        def resolve(value: Any) -> Any:
            if isinstance(value, SymbolicTensor):
                array, array_mask = values[id(value)]
                known.setdefault(id(array), array_mask)
                return array
            return value

        args = map_structure(resolve, node.args)
        kwargs = map_structure(resolve, node.kwargs)
        if node.mask_from_first_input and kwargs.get("mask") is None and args:
            kwargs["mask"] = map_structure(lambda v: known.get(id(v)), args[0])

        def mask_of(value: Any) -> Any:
            return map_structure(lambda v: known.get(id(v)), value)

        outputs, output_masks = self._timed_call(node.layer, node.layer._invoke, args, kwargs,
                                                 mask_of, training)
        tensors = flatten(node.outputs)
        arrays = flatten(outputs)
        if len(arrays) != len(tensors):
            raise ValueError(
                f"Layer {node.layer.name} returned {len(arrays)} outputs where the model "
                f"expects {len(tensors)}."
            )
        masks = flatten(output_masks) if isinstance(output_masks, (list, tuple)) else [
            output_masks]
        masks = masks + [None] * (len(arrays) - len(masks))
        for tensor, array, array_mask in zip(tensors, arrays, masks):
            values[id(tensor)] = (array, array_mask)

    def _input_arrays(self, inputs: Any) -> list[Any]:
        count = len(self._inputs)
        if isinstance(inputs, dict):
            names = self.input_names
            missing = [n for n in names if n not in inputs]
            if missing:
                raise ValueError(
                    f"{self.name} expects inputs {names}; missing {missing}. Received keys: "
                    f"{sorted(inputs)}"
                )
            return [inputs[n] for n in names]
        if isinstance(inputs, (list, tuple)) and count > 1:
            if len(inputs) != count:
                raise ValueError(
                    f"{self.name} expects {count} inputs ({self.input_names}). Received "
                    f"{len(inputs)}."
                )
            return list(inputs)
        if (count == 1 and isinstance(inputs, (list, tuple)) and len(inputs) == 1
                and isinstance(inputs[0], np.ndarray)):
            return [inputs[0]]
        if count != 1:
            raise ValueError(
                f"{self.name} expects {count} inputs ({self.input_names}): give a list or a "
                f"dict. Received: {describe(inputs)}"
            )
        return [inputs]

    def _input_masks(self, mask: Any, arrays: list[Any]) -> list[Any]:
        if mask is None:
            return [None] * len(arrays)
        masks = [mask] if len(arrays) == 1 else list(mask)
        if len(masks) != len(arrays):
            raise ValueError(f"{self.name}: give one mask (or None) per input.")
        return [
            None if m is None else as_mask(m, tuple(np.shape(a)[:2]))
            for m, a in zip(masks, arrays)
        ]

    def compute_mask(self, inputs: Any, mask: Any = None) -> Any:
        """The masks of the outputs for `inputs` with input masks `mask`."""
        return self._run(inputs, mask, False)[1]

    def predict(self, x: Any, batch_size: int | None = None, verbose: Any = 0,
                **unused: Any) -> Any:
        """The outputs for `x`, `batch_size` rows at a time (all at once by default);
        `verbose=1` shows a progress bar."""
        arrays = self._input_arrays(x)
        with single_threaded_blas():
            parts = [
                self._run(chunk if len(arrays) > 1 else chunk[0], None, False)[0]
                for chunk in batches_with_progress(arrays, batch_size, verbose)
            ]
        if len(parts) == 1:
            return parts[0]
        joined = [np.concatenate(p, axis=0) for p in zip(*(flatten(p) for p in parts))]
        return joined[0] if _is_singleton(self._outputs_struct) else _restructure(
            self._outputs_struct, joined)

    # ----------------------------------------------------------------- describe
    def summary(self, print_fn: Callable[[str], Any] | None = None,
                line_length: int = 100) -> str:
        """Print (with `print_fn`, default print) and return a table of the layers: name and
        type, output shape, number of weights and the layers each call reads."""
        rows = []
        for layer in self._layers:
            nodes = [n for n in self._nodes if n.layer is layer]
            shapes = [format_shape([t.shape for t in flatten(n.outputs)]
                                   if len(flatten(n.outputs)) > 1
                                   else flatten(n.outputs)[0].shape) for n in nodes]
            sources = sorted({t.node.layer.name for n in nodes for t in n.inputs})
            rows.append((layer, ", ".join(shapes) or "?", ", ".join(sources) or "-"))
        return summary_table(self, rows, print_fn, line_length)

    def get_config(self) -> dict[str, Any]:
        return model_config(self)

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Model:
        return model_from_config(config, cls)

    def __repr__(self) -> str:
        return f"<Model name={self.name}, layers={[lay.name for lay in self._layers]}>"


def _is_singleton(structure: Any) -> bool:
    return isinstance(structure, (list, tuple)) and len(structure) == 1

def _restructure(structure: Any, leaves: list[Any]) -> Any:
    """`leaves` in the structure of `structure` (a tensor, list, tuple or dict of them)."""
    iterator = iter(leaves)
    return map_structure(lambda _: next(iterator), structure)


# --------------------------------------------------------------------------- the graph
def _map_graph(inputs: list[SymbolicTensor], outputs: list[SymbolicTensor]) -> tuple[
        list[Node], list[Any]]:
    """The nodes from the inputs to the outputs by decreasing depth, and the layers in Keras's
    order (by decreasing depth, ties in the order a walk from the outputs meets them)."""
    input_ids = {id(t) for t in inputs}
    finished: list[Node] = []
    done: set[int] = set()
    in_progress: set[int] = set()
    layer_index: dict[int, int] = {}

    def visit(tensor: SymbolicTensor) -> None:
        node = tensor.node
        if node is None:
            raise ValueError(f"{tensor!r} was not made by rnnkit.Input or a layer call.")
        if id(node) in done:
            return
        if id(node) in in_progress:
            raise ValueError("The graph of the model has a cycle.")
        layer_index.setdefault(id(node.layer), len(layer_index))
        in_progress.add(id(node))
        if id(tensor) not in input_ids:
            if isinstance(node.layer, InputLayer):
                raise ValueError(
                    f"Graph disconnected: the output needs input {node.layer.name!r}, which is "
                    f"not among the model's inputs {[t.node.layer.name for t in inputs]}."
                )
            for source in node.inputs:
                visit(source)
        in_progress.discard(id(node))
        done.add(id(node))
        finished.append(node)

    for tensor in outputs:
        visit(tensor)
    depth: dict[int, int] = {}
    layer_depth: dict[int, int] = {}
    for node in reversed(finished):
        level = max(depth.setdefault(id(node), 0), layer_depth.get(id(node.layer), 0))
        layer_depth[id(node.layer)] = depth[id(node)] = level
        for source in node.inputs:
            parent = source.node
            depth[id(parent)] = max(level + 1, depth.get(id(parent), 0))
    for tensor in inputs:  # inputs the outputs do not need still come first
        layer = tensor.node.layer
        if id(layer) not in layer_depth:
            layer_depth[id(layer)] = 0
            layer_index[id(layer)] = -1
            depth[id(tensor.node)] = 0
            finished.append(tensor.node)
    nodes = sorted(finished, key=lambda n: -depth[id(n)])
    layers = {id(n.layer): n.layer for n in finished}
    order = sorted(layers, key=lambda key: (-layer_depth[key], layer_index[key]))
    return nodes, [layers[key] for key in order]

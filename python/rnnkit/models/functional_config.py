"""A functional model's configuration: its layers (objects, serialized by whoever stores
them) and its nodes, each naming its layer by index and reading earlier nodes' outputs as
`{"__tensor__": [node, output]}`; and the model rebuilt from it by calling the layers again."""

from __future__ import annotations

from typing import Any

from ..layers.core import InputLayer
from ..layers.symbolic import SymbolicTensor, flatten, map_structure, symbolic_call


def model_config(model: Any) -> dict[str, Any]:
    """`{"name", "layers", "nodes", "inputs", "outputs"}` for a functional model."""
    layer_index = {id(layer): i for i, layer in enumerate(model._operations)}
    where: dict[int, list[int]] = {}
    nodes = []
    for position, node in enumerate(model._nodes):
        for output, tensor in enumerate(flatten(node.outputs)):
            where[id(tensor)] = [position, output]

        def reference(value: Any) -> Any:
            return {"__tensor__": where[id(value)]} if isinstance(value, SymbolicTensor) else value

        entry: dict[str, Any] = {"layer": layer_index[id(node.layer)]}
        if not isinstance(node.layer, InputLayer):
            entry["args"] = map_structure(reference, list(node.args))
            entry["kwargs"] = map_structure(reference, dict(node.kwargs))
            if node.mask_from_first_input:
                entry["mask_from_first_input"] = True
        nodes.append(entry)
    return {
        "name": model.name,
        "layers": list(model._operations),
        "nodes": nodes,
        "inputs": map_structure(lambda t: where[id(t)], model._inputs_struct),
        "outputs": map_structure(lambda t: where[id(t)], model._outputs_struct),
    }


def model_from_config(config: dict[str, Any], model_class: type) -> Any:
    """The model `model_config` describes (its layers given as objects), made by
    `model_class(inputs, outputs, name=...)`."""
    layers = config["layers"]
    produced: list[list[SymbolicTensor]] = []

    def tensor(reference: Any) -> SymbolicTensor:
        node, output = (int(i) for i in reference)
        return produced[node][output]

    def resolve(value: Any) -> Any:
        if isinstance(value, dict) and set(value) == {"__tensor__"}:
            return tensor(value["__tensor__"])
        return value

    for entry in config["nodes"]:
        layer = layers[int(entry["layer"])]
        if isinstance(layer, InputLayer):
            produced.append([layer.output])
            continue
        args = [_resolve_all(resolve, a) for a in entry.get("args", [])]
        kwargs = {k: _resolve_all(resolve, v) for k, v in entry.get("kwargs", {}).items()}
        outputs = symbolic_call(layer, tuple(args), kwargs)
        node = flatten(outputs)[0].node
        node.mask_from_first_input = bool(entry.get("mask_from_first_input"))
        produced.append(flatten(outputs))
    is_reference = _is_reference

    def to_tensors(structure: Any) -> Any:
        if is_reference(structure):
            return tensor(structure)
        if isinstance(structure, dict):
            return {k: to_tensors(v) for k, v in structure.items()}
        return [to_tensors(v) for v in structure]

    return model_class(to_tensors(config["inputs"]), to_tensors(config["outputs"]),
                 name=config.get("name"))


def _is_reference(value: Any) -> bool:
    return (isinstance(value, (list, tuple)) and len(value) == 2
            and all(isinstance(i, int) for i in value))


def _resolve_all(resolve: Any, value: Any) -> Any:
    if isinstance(value, dict) and set(value) != {"__tensor__"}:
        return {k: _resolve_all(resolve, v) for k, v in value.items()}
    if isinstance(value, list):
        return [_resolve_all(resolve, v) for v in value]
    return resolve(value)

"""Functional Keras models as chains: the layers of a functional model's graph in call order,
after checking that the graph is a chain (one input, one output, each layer called once on the
previous layer's output) and that every mask it records is the mask rnnkit propagates itself
(from `Masking` and `Embedding(mask_zero=True)`, through the `NotEqual`/`Any` operations Keras
traces).
"""

from __future__ import annotations

from typing import Any

from ..layers.recurrent import registry
from .keras_config import MODELS, entry_of, mask_value_of, supported_layers

_OPS = {"NotEqual", "Any"}


def is_op(entry: dict[str, Any]) -> bool:
    module = str(entry.get("module") or "")
    return module.startswith(("keras.src.ops", "keras.ops")) or (
        entry.get("class_name") in _OPS and module == ""
    )


def _history(value: Any) -> tuple[str, int, int] | None:
    if isinstance(value, dict) and value.get("class_name") == "__keras_tensor__":
        history = value["config"]["keras_history"]
        return (str(history[0]), int(history[1]), int(history[2]))
    return None


def _nodes(entry: dict[str, Any]) -> list[tuple[list[Any], dict[str, Any]]]:
    """A layer's inbound nodes as (args, kwargs); tensors as (layer, node, index) triples."""
    nodes = []
    for node in entry.get("inbound_nodes") or []:
        if isinstance(node, dict):  # Keras 3
            args = [_history(a) or a for a in node.get("args", [])]
            kwargs = {k: (_history(v) or v) for k, v in (node.get("kwargs") or {}).items()}
        else:  # tf.keras 2: [[name, node_index, tensor_index, kwargs], ...]
            args = [(str(t[0]), int(t[1]), int(t[2])) for t in node]
            kwargs = dict(node[0][3]) if node and len(node[0]) > 3 and node[0][3] else {}
            kwargs.pop("mask", None)  # tf.keras 2 propagates masks implicitly
        nodes.append((args, kwargs))
    return nodes


def _endpoints(value: Any, what: str) -> tuple[str, int, int]:
    if value and isinstance(value[0], str):
        value = [value]
    if not value or len(value) != 1:
        raise ValueError(
            f"rnnkit loads functional models with one input and one output; this model has "
            f"{len(value or [])} {what}."
        )
    name, node, index = value[0][:3]
    return (str(name), int(node), int(index))


def functional_chain(config: dict[str, Any]) -> list[Any]:
    """The layers of a functional model in chain order, after checking that the graph is a
    chain and that every mask it passes is the mask rnnkit will propagate."""
    entries = list(config.get("layers", []))
    by_name = {str(e.get("name", entry_of(e)[1].get("name"))): e for e in entries}
    source = _endpoints(config.get("input_layers"), "inputs")
    target = _endpoints(config.get("output_layers"), "outputs")
    symbols: dict[tuple[str, int, int], Any] = {source: ("value", 0)}
    chain: list[Any] = [by_name[source[0]]] if source[0] in by_name else []
    position = 0  # layers of the chain applied so far (the InputLayer does not count)
    mask_symbol: Any = None
    pending = [e for e in entries if entry_of(e)[0] != "InputLayer"]
    while pending:
        progressed = False
        for entry in list(pending):
            class_name, layer_config = entry_of(entry)
            name = str(entry.get("name", layer_config.get("name")))
            nodes = _nodes(entry)
            if len(nodes) != 1:
                raise ValueError(
                    f"Layer {name!r} ({class_name}) is called {len(nodes)} times in the model; "
                    "rnnkit loads functional models whose graph is a chain (each layer called "
                    "once on the previous layer's output)."
                )
            args, kwargs = nodes[0]
            tensors = [a for a in args if isinstance(a, tuple)]
            if any(t not in symbols for t in tensors) or (
                isinstance(kwargs.get("mask"), tuple) and kwargs["mask"] not in symbols
            ):
                continue
            pending.remove(entry)
            progressed = True
            if is_op(entry):
                symbols[(name, 0, 0)] = _op_symbol(class_name, layer_config, args, symbols)
                continue
            if len(tensors) != 1 or len(args) != 1 or symbols[tensors[0]] != ("value", position):
                raise ValueError(
                    f"Layer {name!r} ({class_name}) does not take the previous layer's output "
                    "as its only input: rnnkit loads functional models whose graph is a chain."
                )
            extra = set(kwargs) - {"mask", "training"}
            if extra:
                raise ValueError(
                    f"Layer {name!r} ({class_name}) is called with {sorted(extra)}; rnnkit loads "
                    "layers called on their input alone (masks come from Masking/Embedding)."
                )
            # A recorded `mask: null` is filled in at call time from the input's own mask, as
            # rnnkit propagates it; a recorded mask must be exactly the propagated one.
            given = kwargs.get("mask")
            if given is not None and (
                not isinstance(given, tuple) or symbols.get(given) != mask_symbol
            ):
                raise ValueError(
                    f"Layer {name!r} ({class_name}) is called with an explicit mask that is not "
                    "the one Masking/Embedding(mask_zero=True) propagate; rnnkit does not "
                    "support that."
                )
            mask_symbol = _mask_after(class_name, layer_config, ("value", position), mask_symbol)
            position += 1
            symbols[(name, 0, 0)] = ("value", position)
            chain.append(entry)
        if not progressed:
            names = [str(e.get("name")) for e in pending]
            raise ValueError(
                f"Layers {names} are not on the chain from the model's input: rnnkit loads "
                "functional models whose graph is a chain."
            )
    if symbols.get(target) != ("value", position):
        raise ValueError(
            "The model's output is not the last layer of its chain: rnnkit loads functional "
            "models whose graph is a chain."
        )
    return chain


def _op_symbol(
    class_name: str, config: dict[str, Any], args: list[Any], symbols: dict[Any, Any]
) -> Any:
    """The symbolic value of a traced Keras operation (the ones masks are made of)."""
    if class_name == "NotEqual" and len(args) == 2 and isinstance(args[0], tuple):
        return ("ne", symbols[args[0]], mask_value_of(args[1]))
    if (
        class_name == "Any"
        and len(args) == 1
        and config.get("axis") in (-1, [-1])
        and not config.get("keepdims")
    ):
        return ("any", symbols[args[0]])
    raise ValueError(
        f"rnnkit cannot load the Keras operation {class_name!r} in a functional model; it loads "
        "chains of layers (the NotEqual/Any operations of Masking and Embedding masks aside). "
        f"Supported layers: {', '.join(supported_layers())}."
    )


def _mask_after(class_name: str, config: dict[str, Any], inputs: Any, mask: Any) -> Any:
    """The symbolic mask after a layer (as Keras computes it)."""
    if class_name == "Masking":
        return ("any", ("ne", inputs, mask_value_of(config.get("mask_value", 0.0))))
    if class_name == "Embedding":
        return ("ne", inputs, 0.0) if config.get("mask_zero") else None
    if class_name in (*registry.layer_classes(), "RNN"):
        return mask if config.get("return_sequences") else None
    if class_name == "Bidirectional":
        inner = entry_of(config["layer"])[1]
        return mask if inner.get("return_sequences") else None
    if class_name in ("Flatten", "Reshape", "RepeatVector", *MODELS):
        return None
    return mask

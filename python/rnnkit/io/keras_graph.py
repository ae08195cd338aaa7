"""Functional Keras models into `rnnkit.Model`: the graph of a Keras config rebuilt by calling
the rnnkit layers on symbolic tensors, node by node, as Keras's `functional_from_config` does.

Two node formats: Keras 3 records each call as `{"args", "kwargs"}` with tensors as
`__keras_tensor__` entries naming (layer, node, index), and records the masks it passed
(tensors made by traced operations such as `NotEqual`/`Any`, which run here too:
`layers/operations.py`); tf.keras 2 records `[[layer, node, index, kwargs], ...]` and passes
masks implicitly: each call gets the mask of its first input, even beside other tensors (an RNN
with `initial_state` is masked in tf.keras 2, not in Keras 3).

Node numbers: a nested Keras 3 `Functional` is numbered from 0 in call arguments and from 1 in
`input_layers`/`output_layers`; in tf.keras 2 every nested model is numbered from 1.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..layers.core import layer_classes
from ..layers.operations import Operation
from ..layers.symbolic import flatten, symbolic_call
from .keras_config import MODELS, entry_of

_MODEL_CLASSES = (*MODELS, "Model")


def is_op(entry: dict[str, Any]) -> bool:
    """Whether a config entry is a traced Keras operation rather than a layer."""
    module = str(entry.get("module") or "")
    class_name = entry.get("class_name")
    return module.startswith(("keras.src.ops", "keras.ops")) or (
        module == "" and class_name in Operation.supported() and class_name not in layer_classes()
    )


def _history(value: Any) -> tuple[str, int, int] | None:
    if isinstance(value, dict) and value.get("class_name") == "__keras_tensor__":
        history = value["config"]["keras_history"]
        return (str(history[0]), int(history[1]), int(history[2]))
    return None


def _deserialize(value: Any) -> Any:
    """A Keras 3 call argument: tensors as ("tensor", ref), containers kept, other values as
    given (serialized NumPy scalars become numbers)."""
    history = _history(value)
    if history is not None:
        return _Ref(history)
    if isinstance(value, dict) and value.get("class_name") == "__tuple__":
        return tuple(_deserialize(v) for v in value["config"]["value"])
    if isinstance(value, dict) and value.get("class_name") in ("__numpy__", "__tensor__"):
        return value["config"]["value"]
    if isinstance(value, list):
        return [_deserialize(v) for v in value]
    if isinstance(value, dict):
        return {k: _deserialize(v) for k, v in value.items()}
    return value


class _Ref:
    """A tensor named in a config: (layer name, node index, tensor index)."""

    __slots__ = ("name", "node", "index")

    def __init__(self, history: tuple[str, int, int]) -> None:
        self.name, self.node, self.index = history


def _calls(entry: dict[str, Any]) -> list[tuple[list[Any], dict[str, Any], bool]]:
    """A layer's calls as (args, kwargs, legacy) with tensors as _Ref."""
    calls = []
    for node in entry.get("inbound_nodes") or []:
        if isinstance(node, dict):  # Keras 3
            args = [_deserialize(a) for a in node.get("args", [])]
            kwargs = {k: _deserialize(v) for k, v in (node.get("kwargs") or {}).items()}
            calls.append((args, kwargs, False))
            continue
        if not isinstance(node, list) or not all(
            isinstance(t, list) and len(t) >= 3 for t in node
        ):
            raise ValueError(f"Cannot read the inbound node {node!r} of {entry.get('name')!r}.")
        refs = [_Ref((str(t[0]), int(t[1]), int(t[2]))) for t in node]
        kwargs = dict(node[0][3]) if len(node[0]) > 3 and node[0][3] else {}
        kwargs = {k: _deserialize_legacy(v) for k, v in kwargs.items() if k != "mask"}
        calls.append(([refs[0] if len(refs) == 1 else refs], kwargs, True))
    return calls


def _deserialize_legacy(value: Any) -> Any:
    """tf.keras 2 kwargs name tensors as [layer, node, index] lists (initial_state)."""
    if (isinstance(value, list) and len(value) in (3, 4) and isinstance(value[0], str)
            and all(isinstance(v, int) for v in value[1:3])):
        return _Ref((value[0], int(value[1]), int(value[2])))
    if isinstance(value, list):
        return [_deserialize_legacy(v) for v in value]
    return value


def functional_model(
    config: dict[str, Any], build: Callable[[Any], Any]
) -> tuple[Any, dict[str, Any]]:
    """The rnnkit Model of a Keras functional config, and its layers by Keras name.

    `build(entry)` makes the rnnkit layer (or nested model) of a config entry.
    """
    from ..models.functional import Model  # models import io's weights reader, not this

    entries = list(config.get("layers", []))
    layers: dict[str, Any] = {}
    classes: dict[str, str] = {}
    pending: dict[str, list[tuple[list[Any], dict[str, Any], bool]]] = {}
    order: list[str] = []
    for entry in entries:
        class_name, layer_config = entry_of(entry)
        name = str(entry.get("name", layer_config.get("name")))
        if name in layers:
            raise ValueError(f"Two layers of the model are named {name!r}.")
        layers[name] = Operation.from_keras(entry) if is_op(entry) else build(entry)
        classes[name] = class_name
        pending[name] = _calls(entry)
        order.append(name)
    outputs: dict[str, list[list[Any]]] = {name: [] for name in layers}
    for name, layer in layers.items():
        if classes[name] == "InputLayer":
            outputs[name].append([layer.output])
            pending[name] = []

    def tensor(ref: _Ref, legacy: bool, endpoint: bool) -> Any:
        if ref.name not in layers:
            raise ValueError(f"The model config names an unknown layer {ref.name!r}.")
        index = ref.node
        if classes[ref.name] in _MODEL_CLASSES and (
            legacy or (endpoint and classes[ref.name] == "Functional")
        ):
            index -= 1  # a nested model's node 0 is its own inputs-to-outputs node
        made = outputs[ref.name]
        if not 0 <= index < len(made) or not 0 <= ref.index < len(made[index]):
            raise IndexError(ref.name)
        return made[index][ref.index]

    def resolve(value: Any, legacy: bool) -> Any:
        if isinstance(value, _Ref):
            return tensor(value, legacy, False)
        if isinstance(value, list):
            return [resolve(v, legacy) for v in value]
        if isinstance(value, tuple):
            return tuple(resolve(v, legacy) for v in value)
        if isinstance(value, dict):
            return {k: resolve(v, legacy) for k, v in value.items()}
        return value

    while any(pending.values()):
        progressed = False
        for name in order:
            while pending[name]:
                args, kwargs, legacy = pending[name][0]
                try:
                    args = [resolve(a, legacy) for a in args]
                    kwargs = {k: resolve(v, legacy) for k, v in kwargs.items()}
                except IndexError:
                    break  # an input is made by a call not rebuilt yet
                kwargs.pop("training", None)
                result = symbolic_call(layers[name], tuple(args), kwargs)
                flatten(result)[0].node.mask_from_first_input = legacy
                outputs[name].append(flatten(result))
                pending[name].pop(0)
                progressed = True
        if not progressed:
            stuck = sorted(n for n, calls in pending.items() if calls)
            raise ValueError(
                f"The graph of the Keras model has a cycle or disconnected layers: the calls "
                f"of {stuck} cannot be resolved."
            )

    def endpoints(value: Any, what: str) -> Any:
        if (isinstance(value, list) and len(value) >= 3 and isinstance(value[0], str)
                and isinstance(value[1], int)):
            return tensor(_Ref((value[0], value[1], int(value[2]))), _legacy(entries), True)
        if isinstance(value, dict):
            return {k: endpoints(v, what) for k, v in value.items()}
        if isinstance(value, (list, tuple)) and value:
            return [endpoints(v, what) for v in value]
        raise ValueError(f"The model config's {what} are unreadable: {value!r}")

    inputs = endpoints(config.get("input_layers"), "input_layers")
    outputs_ = endpoints(config.get("output_layers"), "output_layers")
    model = Model(inputs, outputs_, name=config.get("name"))
    return model, layers


def _legacy(entries: list[Any]) -> bool:
    """Whether the config uses tf.keras 2's list nodes."""
    return any(
        isinstance(node, list) for e in entries for node in (e.get("inbound_nodes") or [])
    )

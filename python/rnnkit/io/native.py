"""rnnkit's own file format: `rnnkit.save(obj, path)` and `rnnkit.load(path)`.

A saved file is a zip archive (write it as `name.rnnkit`; any name works) holding:

* `rnnkit.json`: `{"format": "rnnkit", "format_version": 1, "rnnkit_version": ...,
  "object": {"class_name": ..., "config": {...}}, "weights": N, "states": [...]}`. The object
  is described as Keras describes layers (same class names and argument names, e.g.
  `{"class_name": "LSTM", "config": {"units": 64, "return_sequences": true, ...}}`), with
  the input shape it was built for (`build_input_shape` for a model, `build_config` for a
  layer). Every argument of `get_config()` is stored (a custom initializer function, which
  JSON cannot describe, is left out: the weights are stored).
* `weights.npz`: the weights, `w0000`, `w0001`, ... in `get_weights()` order.
* `states.npz`: the carried states of stateful recurrent layers, `s<layer>_<i>`, one entry per
  state array in the layer's flat state order (`states` lists which layers have them).

What it can store: `Sequential` and functional `Model`s (and `TorchRNN`), the recurrent layers
over built-in cells (RNN, SimpleRNN, LSTM, GRU, stacked cells, Bidirectional), every layer of
`rnnkit.layers`, and the built-in cells. Custom Python cells and layers cannot be described
in JSON: pickle those (every rnnkit layer and model pickles, weights and states included).
Loading runs no code from the file (`numpy.load(allow_pickle=False)`), unlike unpickling.
"""

from __future__ import annotations

import io
import json
import os
import zipfile
from typing import Any

import numpy as np

from .. import activations, initializers, layers
from .._version import __version__
from ..layers.base import weight_budget
from ..layers.operations import Operation
from ..layers.recurrent import registry
from ..layers.recurrent.bidirectional import Bidirectional
from ..layers.recurrent.builtin import BuiltinCell
from ..layers.recurrent.cell_protocol import state_sizes
from ..layers.recurrent.rnn import RNN
from ..models.functional import Model
from ..models.sequential import Sequential
from .torch import TorchRNN
from .untrusted import MAX_CONFIG_BYTES, load_json, open_zip, read_member, read_npz, reading

__all__ = ["load", "save"]

FORMAT = "rnnkit"
FORMAT_VERSION = 1


def _jsonable(value: Any, where: str) -> Any:
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (np.integer, np.floating, np.bool_)):
        return value.item()
    if isinstance(value, (list, tuple)):
        return [_jsonable(v, where) for v in value]
    if isinstance(value, dict):
        return {str(k): _jsonable(v, where) for k, v in value.items()}
    raise ValueError(
        f"rnnkit.save cannot describe {where}={value!r} in JSON; pickle the object instead."
    )


def _activation(function: Any, where: str) -> Any:
    name = activations.serialize_for_layer(function)
    if callable(name):
        raise ValueError(
            f"rnnkit.save stores activations by name; {where} is the custom function "
            f"{function!r}. Pickle the object instead."
        )
    return name


# Configuration keys whose values are rnnkit objects (or lists of them), stored as nested
# `{"class_name", "config"}` entries.
_OBJECT_KEYS = ("cell", "layer", "backward_layer")
_OBJECT_LIST_KEYS = ("cells", "layers")


def _is_builtin(obj: Any) -> bool:
    """Whether rnnkit.save can describe `obj`: rnnkit's own layers, cells and models."""
    if isinstance(obj, RNN):
        return all(isinstance(c, BuiltinCell) for c in obj._cells)
    return type(obj) in _classes().values()


def serialize(obj: Any) -> dict[str, Any]:
    """The `{"class_name", "config"}` description of an rnnkit layer, cell or model: its whole
    `get_config()`, nested objects described the same way."""
    class_name = type(obj).__name__
    if not _is_builtin(obj):
        raise ValueError(
            f"rnnkit.save stores rnnkit's built-in layers and cells; {obj!r} is a custom "
            f"{class_name}. Pickle the object instead (pickle.dump(obj, file))."
        )
    config = dict(obj.get_config())
    for key in _OBJECT_KEYS:
        if config.get(key) is not None and not isinstance(config[key], dict):
            config[key] = serialize(config[key])
    for key in _OBJECT_LIST_KEYS:
        if key in config:
            config[key] = [serialize(item) for item in config[key]]
    for key in [k for k in config if k.endswith("_initializer")]:
        if isinstance(config[key], (str, dict)):
            continue
        try:  # a custom initializer cannot be described; the weights are stored anyway
            config[key] = initializers.serialize(config[key])
        except (TypeError, ValueError):
            del config[key]
    for key in [k for k in config if k.endswith("activation")]:
        config[key] = _activation(config[key], f"{obj.name}.{key}")
    if isinstance(obj, Sequential) and config.get("build_input_shape") is None and obj.layers:
        config["build_input_shape"] = _input_shape(obj.layers[0])
    entry = {"class_name": class_name, "config": _jsonable(config, obj.name)}
    shape = None if isinstance(obj, (Sequential, Model)) else _input_shape(obj)
    if shape is not None:
        entry["build_config"] = {"input_shape": list(shape)}
    return entry


def deserialize(entry: Any) -> Any:
    """The rnnkit object an entry of `serialize` describes (unbuilt unless it is a model whose
    configuration gives its input shape)."""
    if not isinstance(entry, dict) or not isinstance(entry.get("config"), dict):
        raise ValueError(f"An rnnkit object entry must be {{class_name, config}}; got {entry!r}")
    class_name = entry.get("class_name")
    cls = _classes().get(class_name)
    if cls is None:
        raise ValueError(
            f"Unknown rnnkit class {class_name!r} in the file; this rnnkit reads "
            f"{', '.join(sorted(_classes()))}."
        )
    config = dict(entry["config"])
    for key in _OBJECT_KEYS:
        if isinstance(config.get(key), dict):
            config[key] = deserialize(config[key])
    for key in _OBJECT_LIST_KEYS:
        if key in config:
            config[key] = [deserialize(item) for item in config[key]]
    return cls.from_config(config)


def _classes() -> dict[str, type]:
    """Every class rnnkit.save can store, by name."""
    classes = {name: getattr(layers, name) for name in layers.__all__}
    classes.update(registry.cell_classes())
    classes.update(registry.layer_classes())
    classes.update(Sequential=Sequential, Model=Model, Operation=Operation, TorchRNN=TorchRNN)
    del classes["Layer"]
    return classes


def _input_shape(layer: Any) -> Any:
    """The input shape a built layer was built for (as far as building needs it)."""
    if not getattr(layer, "built", False):
        return None
    if isinstance(layer, Bidirectional):
        return _input_shape(layer.forward_layer)
    if isinstance(layer, RNN):
        dim = getattr(layer, "_built_input_dim", None)
        return None if dim is None else (None, None, int(dim))
    if isinstance(layer, Sequential):
        return layer.input_shape
    if isinstance(layer, BuiltinCell):
        return (None, int(layer.kernel.shape[0]))
    shape = getattr(layer, "_build_shape", None)
    return None if shape is None else tuple(shape)


def _recurrent_layers(obj: Any) -> list[RNN]:
    if isinstance(obj, (Sequential, Model)):
        return [r for layer in obj.layers for r in _recurrent_layers(layer)]
    if isinstance(obj, Bidirectional):
        return [obj.forward_layer, obj.backward_layer]
    if isinstance(obj, RNN):
        return [obj]
    return []


def _flat(states: Any) -> list[np.ndarray]:
    if isinstance(states, (list, tuple)):
        return [a for s in states for a in _flat(s)]
    return [np.asarray(states)]


def save(obj: Any, path: Any) -> None:
    """Save an rnnkit model, layer or cell (architecture, weights, stateful states) to `path`.

    The format is described in `rnnkit.io.native`; `rnnkit.load(path)` reads it back.
    """
    entry = serialize(obj)
    weights = obj.get_weights()
    if not weights and not getattr(obj, "built", False):
        raise ValueError(f"Build {obj!r} (call it once) before saving it: it has no weights yet.")
    states: dict[str, np.ndarray] = {}
    stateful = []
    for index, layer in enumerate(_recurrent_layers(obj)):
        if layer.stateful and layer.states is not None:
            stateful.append(index)
            for j, array in enumerate(_flat(layer.states)):
                states[f"s{index}_{j}"] = array
    header = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "rnnkit_version": __version__,
        "object": entry,
        "weights": len(weights),
        "states": stateful,
    }
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("rnnkit.json", json.dumps(header, indent=1))
        archive.writestr("weights.npz", _npz({f"w{i:04d}": w for i, w in enumerate(weights)}))
        archive.writestr("states.npz", _npz(states))


def _npz(arrays: dict[str, np.ndarray]) -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


def load(path: Any) -> Any:
    """Load what `rnnkit.save` wrote: the model, layer or cell, built, with its weights and
    stateful states.

    The file is untrusted input: no code from it runs (arrays are read without pickles), sizes,
    shapes and nesting are checked before anything is read, and any failure is a ValueError
    (MemoryError, or the OSError of a missing file) naming the file and the problem.
    """
    name = os.fspath(path) if isinstance(path, (str, os.PathLike)) else repr(path)
    with reading(name):
        return _load(path, name)


def _load(path: Any, name: str) -> Any:
    if not zipfile.is_zipfile(path):
        raise ValueError(f"{name} is not an rnnkit file (not a zip archive).")
    with open_zip(path, name) as archive:
        names = archive.namelist()
        if "rnnkit.json" not in names:
            raise ValueError(f"{name} is not an rnnkit file (no rnnkit.json).")
        header = load_json(read_member(archive, "rnnkit.json", MAX_CONFIG_BYTES, name), name,
                           "rnnkit.json")
        if not isinstance(header, dict) or header.get("format") != FORMAT or not isinstance(
                header.get("format_version"), int) or header["format_version"] > FORMAT_VERSION:
            got = header if not isinstance(header, dict) else (
                header.get("format"), header.get("format_version"))
            raise ValueError(
                f"{name}: unsupported format {got!r} (this rnnkit reads {FORMAT} <= "
                f"{FORMAT_VERSION})."
            )
        for member in ("weights.npz", "states.npz"):
            if member not in names:
                raise ValueError(f"{name} is not a complete rnnkit file (no {member}).")
        entry = header.get("object")
        with weight_budget(archive.getinfo("weights.npz").file_size + (64 << 10), name):
            obj = deserialize(entry)
            shape = (entry.get("build_config") or {}).get("input_shape")
            if shape is not None and not getattr(obj, "built", False):
                obj.build(tuple(shape))
                obj.built = True
        targets = obj.weights
        if header.get("weights") != len(targets):
            raise ValueError(
                f"{name}: rnnkit.json lists {header.get('weights')!r} weight arrays; the object "
                f"it describes has {len(targets)}."
            )
        weight_bytes = sum(w.size * 8 for w in targets)
        weights = read_npz(
            read_member(archive, "weights.npz", weight_bytes + 4096 * (len(targets) + 1), name),
            {f"w{i:04d}": w.shape for i, w in enumerate(targets)}, name, "weights.npz",
        )
        recurrent = _recurrent_layers(obj)
        stateful = header.get("states", [])
        if not isinstance(stateful, list) or not all(
                isinstance(i, int) and 0 <= i < len(recurrent) for i in stateful):
            raise ValueError(f"{name}: rnnkit.json lists unknown stateful layers {stateful!r}.")
        expected = {
            f"s{index}_{j}": None
            for index in stateful
            for j in range(sum(len(state_sizes(c)) for c in recurrent[index]._cells))
        }
        states = read_npz(
            read_member(archive, "states.npz", _MAX_STATES_BYTES + 16 * weight_bytes, name),
            expected, name, "states.npz",
        )
    if weights:
        obj.set_weights([weights[f"w{i:04d}"] for i in range(len(targets))])
    for index in stateful:
        count = sum(1 for key in expected if key.startswith(f"s{index}_"))
        recurrent[index].reset_states([states[f"s{index}_{j}"] for j in range(count)])
    return obj


# Carried states are (batch, units) arrays: a generous bound for the batches of real streams.
_MAX_STATES_BYTES = 64 << 20

"""Keras models into rnnkit: `load_keras(path)`, `from_keras(obj)` and `load_weights`.

Files are read with `json`, `zipfile` and `h5py` only; nothing here imports Keras:

* the Keras 3 archive `.keras`: a zip holding `config.json` (the model's architecture) and
  `model.weights.h5` (weights under `layers/<name>/.../vars/<i>`, where `<name>` is the snake
  case of the layer's class, numbered `_1`, `_2`, ... when a class repeats);
* the legacy HDF5 `.h5` / `.hdf5` of `model.save()`: the architecture in the `model_config`
  attribute, the weights in the `model_weights` group, one group per layer name whose
  `weight_names` attribute lists the datasets in order;
* weights only: a Keras 3 `.weights.h5` (same layout as inside `.keras`) or a legacy `.h5` of
  `save_weights` (per-layer groups at the root). These need the architecture from elsewhere:
  `model.load_weights(path)` on an rnnkit model of the same architecture, or
  `load_keras(path, config=...)` with the JSON of `model.to_json()`.

A Keras model becomes an `rnnkit.Sequential`. A functional model loads when its graph is a
chain: one input, one output, each layer called once on the previous layer's output. The masks
Keras records in the graph (from `Masking` and `Embedding(mask_zero=True)`, the `NotEqual`/`Any`
operations it traces) are checked to be exactly the masks rnnkit propagates itself; any other
graph, operation or layer class is a ValueError that names it and lists what is supported.

Here: building rnnkit layers and models from configs, `load_keras`, `from_keras`. The Keras
classes rnnkit loads and the reading of config values: `keras_config.py`; the functional graph
as a chain: `keras_graph.py`; weights files: `keras_weights.py`.
"""

from __future__ import annotations

import os
import sys
import zipfile
from collections.abc import Sequence
from typing import Any

import numpy as np

from .. import layers as _layers
from ..layers.base import weight_budget
from ..layers.core import ModelLayer, layer_classes
from ..layers.recurrent import (
    RNN,
    Bidirectional,
    StackedRNNCells,
    registry,
)
from ..layers.recurrent.rnn import RNN_ARGUMENTS
from ..models.sequential import Sequential, build_layer
from .keras_config import (
    MODELS,
    activation_of,
    dtype_of,
    entry_of,
    mask_value_of,
    supported_layers,
    unsupported,
)
from .keras_graph import functional_model, is_op
from .keras_legacy import keras_major, looks_like_keras2, with_keras2_meanings
from .keras_weights import (
    _h5py,
    _load_keras3_weights,
    _load_legacy_by_name,
    _numbered,
    _open_h5,
    _set,
    load_weights,
)
from .untrusted import MAX_CONFIG_BYTES, load_json, open_zip, read_member, reading

__all__ = [
    "from_keras",
    "layer_from_config",
    "load_keras",
    "load_weights",
    "model_from_config",
    "supported_layers",
]

# ----------------------------------------------------------------------------- building layers
def _cell_from_config(entry: Any, dtype: str | None) -> Any:
    class_name, config = entry_of(entry)
    if class_name == "StackedRNNCells":
        return StackedRNNCells([_cell_from_config(c, dtype) for c in config["cells"]])
    if class_name not in registry.cell_classes():
        raise unsupported(class_name, "RNN cell")
    kwargs = _cell_kwargs(class_name, config)
    return registry.cell_classes()[class_name](
        dtype=dtype_of(config, dtype), name=config.get("name"), **kwargs
    )


def _cell_kwargs(cell_class: str, config: dict[str, Any]) -> dict[str, Any]:
    kwargs = {k: config[k] for k in registry.cell_classes()[cell_class].ARGUMENTS if k in config}
    for key in ("activation", "recurrent_activation"):
        if key in kwargs:
            kwargs[key] = activation_of(kwargs[key], str(config.get("name")))
    # The weights are set right after: build with cheap initializers.
    kwargs.update(
        kernel_initializer="zeros", recurrent_initializer="zeros", bias_initializer="zeros"
    )
    return kwargs


def layer_from_config(entry: Any, dtype: str | None = None) -> Any:
    """An unbuilt rnnkit layer from a serialized Keras layer `{"class_name", "config"}`.

    `dtype` ("float32" or "float64") overrides the layers' own dtype policies.
    """
    class_name, config = entry_of(entry)
    name = config.get("name")
    if class_name in MODELS:
        return model_from_config(entry, dtype=dtype)
    if class_name == "InputLayer":
        shape = config.get("batch_shape", config.get("batch_input_shape"))
        return _layers.InputLayer(batch_shape=shape, dtype=config.get("dtype"), name=name)
    if class_name in registry.layer_classes():
        cell_class = registry.layer_classes()[class_name].CELL_CLASS.__name__
        kwargs = {**_cell_kwargs(cell_class, config), **_rnn_kwargs(config)}
        layer_class = registry.layer_classes()[class_name]
        return layer_class(dtype=dtype_of(config, dtype), name=name, **kwargs)
    if class_name == "RNN":
        cell = config.get("cell")
        if isinstance(cell, list):
            cell = {"class_name": "StackedRNNCells", "config": {"cells": cell}}
        return RNN(_cell_from_config(cell, dtype), name=name, **_rnn_kwargs(config))
    if class_name == "Bidirectional":
        forward = layer_from_config(config["layer"], dtype)
        backward = config.get("backward_layer")
        backward = layer_from_config(backward, dtype) if backward else None
        if not isinstance(forward, RNN) or (backward is not None and not isinstance(backward, RNN)):
            raise ValueError(
                f"Bidirectional {name!r} must wrap a recurrent layer; received "
                f"{entry_of(config['layer'])[0]}"
            )
        return Bidirectional(
            forward, merge_mode=config.get("merge_mode", "concat"), backward_layer=backward,
            name=name,
        )
    if class_name == "TimeDistributed":
        inner = layer_from_config(config["layer"], dtype)
        if not isinstance(inner, ModelLayer) or isinstance(
            inner, (_layers.Embedding, _layers.Masking, _layers.InputLayer, _layers.TimeDistributed)
        ):
            raise ValueError(
                f"TimeDistributed {name!r} wraps {entry_of(config['layer'])[0]}; rnnkit's "
                "TimeDistributed wraps Dense, Activation, Flatten, Reshape, RepeatVector or a "
                "dropout layer."
            )
        return _layers.TimeDistributed(inner, name=name)
    if class_name in layer_classes():
        return _simple_layer(layer_classes()[class_name], config, dtype)
    raise unsupported(class_name)


# Keys of a Keras layer config that are not constructor arguments of the rnnkit layer.
_NOT_ARGUMENTS = ("name", "dtype", "trainable", "batch_input_shape", "batch_shape",
                  "build_config", "input_shape")


def _simple_layer(cls: type, config: dict[str, Any], dtype: str | None) -> Any:
    """A non-recurrent layer from its Keras config: every argument passed to the rnnkit
    constructor (which takes Keras's), initializers replaced (the weights are set after)."""
    kwargs = {k: v for k, v in config.items() if k not in _NOT_ARGUMENTS}
    for key in list(kwargs):
        if key.endswith("_initializer"):
            kwargs[key] = "zeros"
        elif key.endswith("activation"):
            kwargs[key] = activation_of(kwargs[key], str(config.get("name")))
    if "mask_value" in kwargs:
        kwargs["mask_value"] = mask_value_of(kwargs["mask_value"])
    try:
        return cls(dtype=dtype_of(config, dtype), name=config.get("name"),
                   trainable=config.get("trainable", True), **kwargs)
    except TypeError as error:
        raise ValueError(
            f"rnnkit cannot load the Keras layer {config.get('name')!r} ({cls.__name__}): "
            f"{error}"
        ) from None


def _rnn_kwargs(config: dict[str, Any]) -> dict[str, Any]:
    return {k: bool(config[k]) for k in RNN_ARGUMENTS if k in config}


# ----------------------------------------------------------------------------- models
def _input_shape_of(entries: list[Any], config: dict[str, Any]) -> Any:
    """The model's input shape from its config: an InputLayer, `build_input_shape`, or the
    first layer's `batch_input_shape` / build config (tf.keras 2)."""
    for entry in entries[:1]:
        class_name, layer_config = entry_of(entry)
        if class_name == "InputLayer":
            return layer_config.get("batch_shape", layer_config.get("batch_input_shape"))
        if layer_config.get("batch_input_shape") is not None:
            return layer_config["batch_input_shape"]
    if config.get("build_input_shape") is not None:
        return config["build_input_shape"]
    if entries and isinstance(entries[0], dict):
        build = entries[0].get("build_config") or {}
        if build.get("input_shape") is not None:
            return build["input_shape"]
    return None


def model_from_config(entry: Any, dtype: str | None = None) -> Sequential:
    """An rnnkit Sequential model (built, weights not set) from a Keras model config:
    `{"class_name": "Sequential" | "Functional" | "Model", "config": {...}}`."""
    return _build_model(entry, dtype)[0]


def _build_model(
    entry: Any, dtype: str | None, keras_version: Any = None
) -> tuple[Any, list[tuple[Any, str, str]]]:
    """The model, and for each of its layers with a Keras counterpart: (rnnkit layer, Keras
    layer name, Keras 3 weights path). A Keras 2 config (by `keras_version`, the entry's own,
    or its layout) is read with Keras 2's meanings."""
    if isinstance(entry, dict) and keras_version is None:
        keras_version = entry.get("keras_version")
    major = keras_major(keras_version)
    if major is not None and major < 3 or major is None and looks_like_keras2(entry):
        entry = with_keras2_meanings(entry)
    if isinstance(entry, dict) and "class_name" not in entry and "layers" in entry:
        entry = {"class_name": "Functional" if "input_layers" in entry else "Sequential",
                 "config": entry}
    class_name, config = entry_of(entry)
    if isinstance(config, list):  # Keras 1/2.0 Sequential: the config is the list of layers
        config = {"layers": config}
    if class_name in ("Functional", "Model"):
        return _build_functional(config, dtype)
    if class_name != "Sequential":
        raise ValueError(
            f"rnnkit loads Sequential and functional models; received a {class_name!r}."
        )
    entries = list(config.get("layers", []))
    # Keras 3 numbers the layers of a weights file in the order of `model.layers`: the
    # config's order, without operations, and without a Sequential's InputLayer.
    counts: dict[str, int] = {}
    paths = {}
    for item in config.get("layers", []):
        layer_class, layer_config = entry_of(item)
        if is_op(item) or (layer_class == "InputLayer" and class_name == "Sequential"):
            continue
        paths[layer_config.get("name")] = "layers/" + _numbered(layer_class, counts)
    model = Sequential(name=config.get("name"))
    plan: list[tuple[Any, str, str]] = []
    for item in entries:
        layer = layer_from_config(item, dtype)
        model.add(layer)
        name = entry_of(item)[1].get("name")
        if name in paths:
            plan.append((layer, name, paths[name]))
    shape = _input_shape_of(entries, config)
    if shape is not None:
        model.build(shape)
    return model, plan


def _build_functional(config: dict[str, Any], dtype: str | None) -> tuple[Any, list[Any]]:
    model, layers = functional_model(config, lambda entry: layer_from_config(entry, dtype))
    counts: dict[str, int] = {}
    plan = []
    for item in config.get("layers", []):
        if is_op(item):
            continue
        name = item.get("name", entry_of(item)[1].get("name"))
        plan.append((layers[name], name, "layers/" + _numbered(entry_of(item)[0], counts)))
    return model, plan


# ----------------------------------------------------------------------------- load_keras
def _read_config(config: Any, source: str) -> Any:
    """The architecture given with a weights file: JSON text, a path to it, or a dict."""
    if isinstance(config, (str, bytes)) and not os.path.exists(config):
        return load_json(config, source, "config argument")
    if isinstance(config, (str, bytes, os.PathLike)):
        if os.path.getsize(config) > MAX_CONFIG_BYTES:
            raise ValueError(f"The config file {os.fspath(config)!r} is over "
                             f"{MAX_CONFIG_BYTES:,} bytes; refusing to read it.")
        with open(config, "rb") as handle:
            return load_json(handle.read(), f"The config file {os.fspath(config)!r}")
    return config


def load_keras(path: Any, dtype: str | None = None, config: Any = None) -> Sequential:
    """Load a Keras model file into an rnnkit `Sequential`, without Keras.

    Args:
        path: a Keras 3 `.keras` archive, a legacy HDF5 `.h5` saved by `model.save()`, or a
            weights-only file (`.weights.h5`, or a legacy `save_weights` `.h5`) together with
            `config`.
        dtype: "float32" or "float64" to compute in, overriding the layers' dtype policies
            (needed for models saved with a mixed-precision policy).
        config: the architecture, for a weights-only file: the JSON text of
            `model.to_json()`, a path to it, or the parsed dict.

    Returns the model, built and with the file's weights. Layer classes outside
    `rnnkit.io.keras.supported_layers()`, and functional graphs that are not a chain, are a
    ValueError naming them.
    """
    if dtype is not None:
        from .._arrays import standardize_dtype

        dtype = standardize_dtype(dtype)
    source = f"The Keras file {os.fspath(path)!r}"
    with reading(source):
        return _load_keras(path, dtype, config, source)


def _load_keras(path: Any, dtype: str | None, config: Any, source: str) -> Any:
    if zipfile.is_zipfile(path):
        with open_zip(path, source) as archive:
            names = archive.namelist()
            if "config.json" not in names:
                raise ValueError(f"{source} is a zip without config.json: not a .keras archive.")
            entry = load_json(read_member(archive, "config.json", MAX_CONFIG_BYTES, source),
                              source, "config.json")
            version = None
            if "metadata.json" in names:
                metadata = load_json(read_member(archive, "metadata.json", MAX_CONFIG_BYTES,
                                                 source), source, "metadata.json")
                version = metadata.get("keras_version") if isinstance(metadata, dict) else None
            if "model.weights.h5" not in names:
                raise ValueError(f"{source} is a .keras archive without model.weights.h5.")
            weights_bytes = archive.getinfo("model.weights.h5").file_size
        if config is not None:
            entry = _read_config(config, source)
        with weight_budget(_budget(weights_bytes), source):
            model, plan = _build_model(entry, dtype, version)
        with _open_h5(path, source, _expected_bytes(model)) as store:
            _load_keras3_weights(store, plan, source)
        return model
    h5py = _h5py()
    try:
        store = h5py.File(path, "r")
    except OSError as error:
        raise ValueError(
            f"{source} is neither a .keras archive nor an HDF5 file ({error})."
        ) from None
    with store:
        if config is not None:
            entry = _read_config(config, source)
        elif "model_config" in store.attrs:
            entry = load_json(_h5_text_attribute(store, "model_config", source), source,
                              "model_config")
        else:
            raise ValueError(
                f"{source} holds weights only (no model_config). Give the architecture, "
                "rnnkit.load_keras(path, config=model_json), or build the same model in rnnkit "
                "and call model.load_weights(path)."
            )
        version = store.attrs.get("keras_version") if "keras_version" in store.attrs else None
        if isinstance(entry, dict) and entry.get("keras_version") is not None:
            version = entry["keras_version"]
        with weight_budget(_budget(_file_size(path)), source):
            model, plan = _build_model(entry, dtype, version)
        if "layers" in store and "model_weights" not in store:  # a Keras 3 .weights.h5
            _load_keras3_weights(store, plan, source)
        elif "model_weights" in store:
            _load_legacy_by_name(store["model_weights"], plan, source)
        else:
            _load_legacy_by_name(store, plan, source)
    return model


def _budget(stored_bytes: int) -> int:
    """What the weights of a model whose file stores `stored_bytes` of them may take: twice
    that (float32 weights loaded with dtype="float64") and a little more."""
    return 2 * stored_bytes + (1 << 20)


def _expected_bytes(model: Any) -> int:
    """How large a weights file of `model` may be: its weights in float64, plus HDF5's
    bookkeeping."""
    return sum(int(w.size) * 8 for w in model.weights) + (16 << 20)


def _file_size(path: Any) -> int:
    """The size of the file at `path` (a file-like object: what is left to read in it)."""
    if isinstance(path, (str, bytes, os.PathLike)):
        return os.path.getsize(path)
    position = path.tell()
    end = path.seek(0, os.SEEK_END)
    path.seek(position)
    return end - position


def _h5_text_attribute(store: Any, name: str, source: str) -> bytes:
    """An HDF5 attribute holding text, its size checked before it is read."""
    size = store.attrs.get_id(name).get_storage_size()
    if size > MAX_CONFIG_BYTES:
        raise ValueError(
            f"{source}: its {name} attribute is {size:,} bytes, over the {MAX_CONFIG_BYTES:,} a "
            "model configuration may take; refusing to read it."
        )
    value = store.attrs[name]
    if isinstance(value, np.ndarray) and value.size == 1:
        value = value.reshape(()).item()
    if isinstance(value, str):
        return value.encode("utf8", "surrogatepass")
    if not isinstance(value, bytes):
        raise ValueError(f"{source}: its {name} attribute is not text.")
    return value


# ----------------------------------------------------------------------------- from_keras
def from_keras(obj: Any, dtype: str | None = None) -> Any:
    """Convert a live Keras model, layer or RNN cell into rnnkit, weights included.

    A `keras.Sequential` or functional chain becomes an `rnnkit.Sequential`; a layer (LSTM,
    Bidirectional, Dense, ...) the matching rnnkit layer; an LSTMCell/GRUCell/SimpleRNNCell
    the rnnkit cell. The object's `get_config()` and `get_weights()` are all that is read.
    """
    if dtype is not None:
        from .._arrays import standardize_dtype

        dtype = standardize_dtype(dtype)
    class_name = type(obj).__name__
    if not hasattr(obj, "get_config") or not hasattr(obj, "get_weights"):
        raise TypeError(f"from_keras expects a Keras model, layer or cell. Received {obj!r}")
    config = obj.get_config()
    if class_name in MODELS or (hasattr(obj, "get_layer") and hasattr(obj, "layers")):
        if class_name not in MODELS:
            raise ValueError(
                f"rnnkit cannot convert the subclassed Keras model {class_name!r}; it converts "
                "Sequential and functional models (and layers one at a time)."
            )
        model, plan = _build_model({"class_name": class_name, "config": config}, dtype,
                                   _library_version(obj))
        for layer, name, _ in plan:
            if layer.weights:
                _set(layer, [np.asarray(w) for w in obj.get_layer(name).get_weights()], name,
                     "The Keras model")
        return model
    entry = {"class_name": class_name, "config": config}
    major = keras_major(_library_version(obj))
    if major is not None and major < 3:
        entry = with_keras2_meanings(entry)
    weights = [np.asarray(w) for w in obj.get_weights()]
    if class_name in registry.cell_classes():
        cell = _cell_from_config(entry, dtype)
        if weights:
            cell.build((None, weights[0].shape[0]))
            cell.set_weights(weights)
        return cell
    layer = layer_from_config(entry, dtype)
    shape = _build_shape_of(obj)
    if shape is not None and not getattr(layer, "built", False):
        build_layer(layer, tuple(shape))
    if weights:
        if not getattr(layer, "built", False):
            raise ValueError(
                f"Build the Keras layer {obj.name!r} (call it once) before converting."
            )
        _set(layer, weights, str(getattr(obj, "name", class_name)), "The Keras layer")
    return layer


def _library_version(obj: Any) -> Any:
    """The version of the library a live object comes from (keras, or tf_keras for Keras 2)."""
    package = sys.modules.get(type(obj).__module__.split(".")[0])
    return getattr(package, "__version__", None)


def _build_shape_of(obj: Any) -> Sequence[int | None] | None:
    getter = getattr(obj, "get_build_config", None)
    build = getter() if callable(getter) else None
    if isinstance(build, dict) and build.get("input_shape") is not None:
        return build["input_shape"]
    return None

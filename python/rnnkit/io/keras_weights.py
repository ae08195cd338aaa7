"""Keras weights files into built rnnkit layers and models: `load_weights(model, path)`.

Formats: the Keras 3 `.weights.h5` (also inside a `.keras` archive: weights under
`layers/<name>/.../vars/<i>`, where `<name>` is the snake case of the layer's class, numbered
`_1`, `_2`, ... when a class repeats) and the legacy HDF5 of `save_weights` / `model.save()`
(per-layer groups whose `weight_names` attribute lists the datasets in order).

A model is anything with a `layers` list (duck-typed, so `models` can use this module without
this module knowing `models`).
"""

from __future__ import annotations

import io
import os
import re
import zipfile
from typing import Any

import numpy as np

from ..layers.core import TimeDistributed
from ..layers.recurrent import RNN, Bidirectional, StackedRNNCells
from .untrusted import open_zip, read_member, reading


def _is_model(layer: Any) -> bool:
    return isinstance(getattr(layer, "layers", None), list)


def _snake(name: str) -> str:
    """keras.src.utils.naming.to_snake_case."""
    name = re.sub(r"\W+", "", name)
    name = re.sub("(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub("([a-z])([A-Z])", r"\1_\2", name).lower()


def _numbered(class_name: str, counts: dict[str, int]) -> str:
    """How Keras 3 names an object of a list in a weights file: snake case of the class,
    then _1, _2, ... for the following objects of the same class."""
    name = _snake(class_name)
    if name in counts:
        counts[name] += 1
        return f"{name}_{counts[name]}"
    counts[name] = 0
    return name


def _keras_class(layer: Any) -> str:
    """The Keras class name of an rnnkit layer (a functional rnnkit.Model is Keras's
    Functional)."""
    name = type(layer).__name__
    return "Functional" if name == "Model" else name


def _h5py() -> Any:
    try:
        import h5py
    except ImportError:  # pragma: no cover - h5py is an install extra
        raise ImportError(
            "Reading Keras files needs h5py: pip install h5py (or rnnkit[import])."
        ) from None
    return h5py


def _var_groups(layer: Any, path: str) -> list[str]:
    """The Keras 3 weights-file groups holding `layer`'s weights, in get_weights() order."""
    if _is_model(layer):
        counts: dict[str, int] = {}
        return [
            group
            for sub in layer.layers
            for group in _var_groups(sub, f"{path}/layers/{_numbered(_keras_class(sub), counts)}")
        ]
    if isinstance(layer, Bidirectional):
        return _var_groups(layer.forward_layer, f"{path}/forward_layer") + _var_groups(
            layer.backward_layer, f"{path}/backward_layer"
        )
    if isinstance(layer, TimeDistributed):
        return _var_groups(layer.layer, f"{path}/layer")
    if isinstance(layer, RNN):
        if isinstance(layer.cell, StackedRNNCells):
            counts = {}
            return [
                f"{path}/cell/cells/{_numbered(type(cell).__name__, counts)}/vars"
                for cell in layer.cell.cells
            ]
        return [f"{path}/cell/vars"]
    labels = layer._weight_labels() if hasattr(layer, "_weight_labels") else []
    if labels and all("/" in label for label in labels):  # sublayers: MultiHeadAttention
        return [f"{path}/{sub}/vars" for sub in dict.fromkeys(lab.split("/")[0] for lab in labels)]
    return [f"{path}/vars"] if layer.weights else []


def _read_vars(store: Any, groups: list[str], layer: Any, source: str) -> list[np.ndarray]:
    datasets = []
    for group in groups:
        if group not in store:
            raise ValueError(
                f"The weights file has no group {group!r} for layer {layer.name!r}: it was not "
                "saved from a model of this architecture."
            )
        node = store[group]
        keys = sorted(node.keys(), key=lambda k: int(k) if str(k).isdigit() else -1)
        datasets.extend(node[k] for k in keys)
    return _read_checked(datasets, layer, source)


def _read_checked(datasets: list[Any], layer: Any, source: str) -> list[np.ndarray]:
    """The datasets' values, after their declared shapes and dtypes are checked against the
    layer's weights (nothing is read from a dataset that does not match)."""
    targets = layer.weights
    if len(datasets) != len(targets):
        raise ValueError(
            f"Layer {layer.name!r} ({type(layer).__name__}) has {len(targets)} weight arrays; "
            f"{source} holds {len(datasets)} for it."
        )
    for dataset, target in zip(datasets, targets):
        shape = getattr(dataset, "shape", None)
        kind = getattr(getattr(dataset, "dtype", None), "kind", None)
        if shape != target.shape or kind not in ("f", "i", "u", "b"):
            raise ValueError(
                f"Layer {layer.name!r} ({type(layer).__name__}) has weights of shapes "
                f"{[w.shape for w in targets]}; {source} holds "
                f"{[getattr(d, 'shape', None) for d in datasets]} for it (dtypes "
                f"{[str(getattr(d, 'dtype', None)) for d in datasets]})."
            )
    return [np.asarray(dataset) for dataset in datasets]


def _legacy_datasets(group: Any) -> list[Any]:
    names = [n.decode("utf8") if isinstance(n, bytes) else str(n)
             for n in group.attrs.get("weight_names", [])]
    return [group[n] for n in names]


def _attr_names(node: Any, key: str) -> list[str]:
    return [n.decode("utf8") if isinstance(n, bytes) else str(n) for n in node.attrs.get(key, [])]


def _set(layer: Any, values: list[np.ndarray], name: str, source: str) -> None:
    if len(values) != len(layer.weights):
        raise ValueError(
            f"Layer {name!r} ({type(layer).__name__}) has {len(layer.weights)} weight arrays; "
            f"{source} holds {len(values)} for it."
        )
    if values:
        layer.set_weights(values)


def _load_keras3_weights(store: Any, plan: list[tuple[Any, str, str]], source: str) -> None:
    for layer, name, path in plan:
        if layer.weights:
            _set(layer, _read_vars(store, _var_groups(layer, path), layer, source), name, source)


def _load_legacy_by_name(group: Any, plan: list[tuple[Any, str, str]], source: str) -> None:
    for layer, name, _ in plan:
        if not layer.weights:
            continue
        if name not in group:
            raise ValueError(f"{source} has no weights for layer {name!r}.")
        _set(layer, _read_checked(_legacy_datasets(group[name]), layer, source), name, source)


def _load_legacy_in_order(group: Any, layers: list[Any], source: str) -> None:
    """Keras's legacy load_weights: the file's layers with weights, in order, go to the
    model's layers with weights, in order."""
    saved = [(n, _legacy_datasets(group[n])) for n in _attr_names(group, "layer_names")]
    saved = [(n, d) for n, d in saved if d]
    targets = [layer for layer in layers if layer.weights]
    if len(saved) != len(targets):
        raise ValueError(
            f"{source} holds weights for {len(saved)} layers ({[n for n, _ in saved]}); the "
            f"model has {len(targets)} layers with weights ({[t.name for t in targets]})."
        )
    checked = [(layer, _read_checked(datasets, layer, source))
               for layer, (_, datasets) in zip(targets, saved)]
    for layer, values in checked:
        layer.set_weights(values)


def _open_h5(path: Any, source: str, limit: int) -> Any:
    """The HDF5 weights of `path` (a .keras archive's model.weights.h5, read into memory only
    if it declares at most `limit` bytes, or an HDF5 file)."""
    h5py = _h5py()
    if zipfile.is_zipfile(path):
        with open_zip(path, source) as archive:
            if "model.weights.h5" not in archive.namelist():
                raise ValueError(
                    f"{source} is a zip without model.weights.h5: not a Keras 3 .keras archive."
                )
            data = read_member(archive, "model.weights.h5", limit, source)
        return h5py.File(io.BytesIO(data), "r")
    return h5py.File(path, "r")


def load_weights(model: Any, path: Any) -> None:
    """Read the Keras weights file at `path` into `model` (an rnnkit Sequential or layer of
    the same architecture; built). Formats: Keras 3 `.weights.h5` or `.keras`; legacy `.h5`."""
    model_layers = model.layers if _is_model(model) else [model]
    unbuilt = any(not getattr(layer, "built", False) for layer in model_layers)
    if unbuilt and _is_model(model) and model.input_shape is not None:
        model.build(model.input_shape)  # an InputLayer gave the shape
        unbuilt = False
    if unbuilt:
        raise ValueError(
            f"Build {getattr(model, 'name', 'the model')} before loading weights into it (give "
            "it an InputLayer, call model.build(input_shape), or call it once)."
        )
    source = f"The weights file {os.fspath(path)!r}"
    limit = sum(int(w.size) * 8 for layer in model_layers for w in layer.weights) + (16 << 20)
    with reading(source), _open_h5(path, source, limit) as store:
        if "layers" in store and "model_weights" not in store:  # Keras 3 layout
            if _is_model(model):
                counts: dict[str, int] = {}
                plan = [
                    (layer, layer.name, "layers/" + _numbered(_keras_class(layer), counts))
                    for layer in model.layers
                ]
            else:
                plan = [(model, model.name, "layers/" + _snake(type(model).__name__))]
            _load_keras3_weights(store, plan, source)
            return
        group = store.get("model_weights", store)
        if "layer_names" not in group.attrs:
            raise ValueError(f"{source} is not a Keras weights file (no layers, no layer_names).")
        _load_legacy_in_order(group, model_layers, source)

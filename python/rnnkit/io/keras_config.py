"""Reading Keras configs: the Keras layer classes rnnkit loads, and the values inside a layer's
config (dtype policies, activations, mask values). Shared by the layer builder (`keras.py`) and
the functional-graph reader (`keras_graph.py`).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .. import activations
from ..layers.core import layer_classes
from ..layers.recurrent import registry

# ----------------------------------------------------------------------------- the layer table
MODELS = ("Sequential", "Functional", "Model")

def supported_layers() -> list[str]:
    """The Keras layer classes rnnkit can load."""
    return sorted(
        {*registry.layer_classes(), "RNN", "Bidirectional", *layer_classes(), "Sequential",
         "Functional"}
    )


def unsupported(class_name: str, what: str = "layer") -> ValueError:
    return ValueError(
        f"rnnkit cannot load the Keras {what} {class_name!r}. Supported layers: "
        f"{', '.join(supported_layers())}; RNN cells: "
        f"{', '.join(sorted(registry.cell_classes()))} (and StackedRNNCells of them)."
    )


# ----------------------------------------------------------------------------- config values
def _policy_name(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, dict):
        config = value.get("config")
        return config.get("name") if isinstance(config, dict) else None
    return str(value)


def dtype_of(config: dict[str, Any], override: str | None) -> str:
    if override is not None:
        return override
    name = _policy_name(config.get("dtype"))
    if name in (None, "float32", "float64"):
        return name or "float32"
    raise ValueError(
        f"Layer {config.get('name')!r} has dtype policy {name!r}; rnnkit computes in float32 or "
        f"float64. Pass dtype='float32' (or 'float64') to load it in that precision (the numbers "
        "then differ from Keras's by the float16 rounding Keras applies)."
    )


def activation_of(value: Any, layer: str) -> Any:
    if value is None or isinstance(value, str):
        return value  # the layer itself refuses an unknown name, listing the known ones
    if isinstance(value, dict) and value.get("config") in activations.layer_names():
        return value["config"]
    raise ValueError(
        f"Layer {layer!r} uses the custom activation {value!r}; rnnkit loads activations by "
        f"Keras name: {', '.join(activations.layer_names())}."
    )


def entry_of(value: Any) -> tuple[str, dict[str, Any]]:
    """(class_name, config) of a serialized Keras object."""
    if not isinstance(value, dict) or "class_name" not in value:
        raise ValueError(
            f"Expected a serialized Keras layer {{'class_name', 'config'}}; got {value!r}"
        )
    config = value.get("config") or {}
    if isinstance(config, dict) and "name" not in config and "name" in value:
        config = {**config, "name": value["name"]}
    return str(value["class_name"]), config


def mask_value_of(value: Any) -> float:
    if isinstance(value, dict):  # a serialized tensor or NumPy scalar
        config = value.get("config", {})
        value = config.get("value", config) if isinstance(config, dict) else config
    array = np.asarray(value, dtype=np.float64)
    if array.size != 1:
        raise ValueError(f"Masking: rnnkit supports a scalar mask_value. Received {value!r}")
    return float(array.reshape(()))

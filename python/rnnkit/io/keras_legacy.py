"""Keras 2 files read with Keras 2's meanings, where they differ from Keras 3's.

A config written by Keras 2.x (its `keras_version` says so, or, without one, the tf.keras 2
layout: list-style inbound nodes, `batch_input_shape`, dtypes as plain strings) is rewritten
before the layers are built:

* `hard_sigmoid` (any activation argument) is Keras 2's `clip(0.2 x + 0.5, 0, 1)`, rnnkit's
  `keras2_hard_sigmoid`; Keras 3's is `clip(x / 6 + 0.5, 0, 1)`.
* a GRU config without `reset_after` predates the argument (Keras < 2.1.5), whose GRU was
  `reset_after=False`; Keras 3 defaults to True.

The rest was surveyed and means the same in both (recorded in docs/import.md): the recurrent
layers' other arguments are always written out, LeakyReLU's `alpha` is read as Keras 3 reads
it, `implementation` and the training-only arguments do not change inference.
"""

from __future__ import annotations

from typing import Any


def keras_major(version: Any) -> int | None:
    """The major version of a `keras_version` string ("2.15.0" -> 2), None if unknown."""
    if isinstance(version, bytes):
        version = version.decode("utf8", "replace")
    if not isinstance(version, str) or not version[:1].isdigit():
        return None
    return int(version.split(".")[0])


def looks_like_keras2(entry: Any) -> bool:
    """Without a version: whether a model config has tf.keras 2's layout."""
    found = False

    def visit(value: Any) -> None:
        nonlocal found
        if found:
            return
        if isinstance(value, dict):
            if "batch_input_shape" in value or (
                isinstance(value.get("inbound_nodes"), list)
                and any(isinstance(n, list) for n in value["inbound_nodes"])
            ):
                found = True
                return
            for item in value.values():
                visit(item)
        elif isinstance(value, list):
            for item in value:
                visit(item)

    visit(entry)
    return found


def with_keras2_meanings(entry: Any) -> Any:
    """A copy of a Keras 2 model (or layer) config with Keras 2's meanings made explicit."""
    if isinstance(entry, list):
        return [with_keras2_meanings(item) for item in entry]
    if not isinstance(entry, dict):
        return entry
    out = {key: with_keras2_meanings(value) for key, value in entry.items()}
    for key, value in out.items():
        if key.endswith("activation") and _is_hard_sigmoid(value):
            out[key] = "keras2_hard_sigmoid"
    if out.get("class_name") in ("GRU", "GRUCell") and isinstance(out.get("config"), dict):
        out["config"].setdefault("reset_after", False)
    return out


def _is_hard_sigmoid(value: Any) -> bool:
    if isinstance(value, dict):  # {"class_name": "function", "config": "hard_sigmoid", ...}
        value = value.get("config")
    return value == "hard_sigmoid"

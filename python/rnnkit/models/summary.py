"""The table `summary()` prints for Sequential and functional models, as Keras prints it."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any


def format_shape(shape: Any) -> str:
    """(None, 10, 4) as Keras writes it; a list of shapes as a list."""
    if isinstance(shape, list):
        return "[" + ", ".join(format_shape(s) for s in shape) + "]"
    if shape is None:
        return "?"
    return "(" + ", ".join("None" if d is None else str(d) for d in shape) + (
        ",)" if len(shape) == 1 else ")"
    )


def type_name(layer: Any) -> str:
    """The layer's class, with the wrapped layer's for wrappers: Bidirectional(LSTM)."""
    inner = getattr(layer, "forward_layer", None) or getattr(layer, "layer", None)
    if inner is not None and hasattr(inner, "name"):
        return f"{type(layer).__name__}({type(inner).__name__})"
    return type(layer).__name__


def summary_table(
    model: Any,
    rows: Sequence[tuple[Any, ...]],
    print_fn: Callable[[str], Any] | None,
    line_length: int,
) -> str:
    """Print and return the table: each row is (layer, output shape text[, connected to]).
    Parameter counts are every layer's weights (trainable and not, as Keras's total)."""
    header = ["Layer (type)", "Output Shape", "Param #"]
    connected = any(len(row) > 2 for row in rows)
    if connected:
        header.append("Connected to")
    table = [header]
    for layer, shape, *rest in rows:
        params = sum(int(w.size) for w in layer.weights)
        table.append([f"{layer.name} ({type_name(layer)})", shape, f"{params:,}", *rest])
    widths = [max(len(r[i]) for r in table) + 2 for i in range(len(header))]
    width = max(line_length, sum(widths) + 4)
    lines = [f'Model: "{model.name}"', "=" * width]
    for i, row in enumerate(table):
        cells = [f"{row[0]:<{widths[0]}}", f"{row[1]:<{widths[1]}}", f"{row[2]:>{widths[2]}}"]
        if connected:
            cells.append("  " + row[3])
        lines.append("".join(cells))
        lines.append(("=" if i == 0 else "-") * width)
    lines[-1] = "=" * width
    total = model.count_params()
    trainable = int(sum(w.size for w in getattr(model, "trainable_weights", model.weights)))
    lines.append(f"Total params: {total:,}")
    lines.append(f"Trainable params: {trainable:,}")
    lines.append(f"Non-trainable params: {total - trainable:,}")
    text = "\n".join(lines)
    (print_fn or print)(text)
    return text

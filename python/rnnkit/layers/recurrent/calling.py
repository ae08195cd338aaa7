"""Recurrent layers as nodes of functional models: their Keras call signature
`(sequences, initial_state=None, mask=None, training=False)` (rnnkit adds `constants`), the mask
Keras fills in, and the output masks."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from ..symbolic import first_mask, implicit_mask

_POSITIONAL = ("inputs", "initial_state", "mask", "constants", "training")


def invoke_recurrent(
    layer: Any,
    args: Sequence[Any],
    kwargs: dict[str, Any],
    mask_of: Callable[[Any], Any],
    training: bool,
) -> tuple[Any, Any]:
    """Call an RNN or Bidirectional layer as a functional model's node does (see
    `ModelLayer._invoke`); returns (outputs, output masks)."""
    call = dict(zip(_POSITIONAL, args))
    for key, value in kwargs.items():
        call["inputs" if key == "sequences" else key] = value
    unknown = set(call) - set(_POSITIONAL)
    if unknown:
        raise ValueError(
            f"Layer {layer.name} ({type(layer).__name__}) is called with arguments it does not "
            f"take: {sorted(unknown)}."
        )
    inputs = call["inputs"]
    initial_state, constants, mask = (call.get(k) for k in ("initial_state", "constants", "mask"))
    if mask is None:  # Keras 3: filled in only when the sequences are the one tensor argument
        mask = implicit_mask([inputs, initial_state, constants], mask_of)
    previous = mask if mask is not None else mask_of(inputs)
    outputs = layer(
        inputs,
        initial_state=initial_state,
        mask=first_mask(mask),
        constants=constants,
        training=bool(call.get("training") or training),
    )
    return outputs, layer.compute_mask(inputs, previous)


class RecurrentNode:
    """The functional-model side of RNN and Bidirectional (mixed into both)."""

    def _invoke(self, args: Any, kwargs: dict[str, Any], mask_of: Callable[[Any], Any],
                training: bool) -> tuple[Any, Any]:
        return invoke_recurrent(self, args, kwargs, mask_of, training)

    def _symbolic_output_shapes(self, input_shapes: list[Any]) -> Any:
        """Shapes from compute_output_shape, not from a run: a run would change the carried
        states of a stateful layer."""
        if not self.built:  # type: ignore[attr-defined]
            self.build(input_shapes[0])  # type: ignore[attr-defined]
        shapes = self.compute_output_shape(input_shapes[0])  # type: ignore[attr-defined]
        return [tuple(s) for s in shapes] if isinstance(shapes, list) else tuple(shapes)


def state_count(layer: Any) -> int:
    """The number of state arrays a recurrent layer returns with return_state (one direction)."""
    shapes = layer.compute_output_shape((None, None, 1))
    return len(shapes) - 1 if isinstance(shapes, list) else 0

"""The NumPy loop: runs any cell one step at a time, with the semantics of the C++ driver
(cpp/include/rnnkit/kernels/sequence.hpp). It is also the readable statement of those semantics:

- steps run from first to last, or last to first with `go_backwards`, and a returned sequence is
  in processed order;
- at a masked step every state keeps its value and the output is the previous step's output
  (zeros before any step was used), or zeros with `zero_output_for_mask`;
- the last output is the last processed step's output.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .cell_protocol import call_cell


def _where(mask: np.ndarray, new: Any, old: Any) -> Any:
    if isinstance(new, (list, tuple)):
        return [_where(mask, n, o) for n, o in zip(new, old)]
    return np.where(mask, new, old)


def run_loop(
    cell: Any,
    inputs: np.ndarray,
    initial_states: list[Any],
    *,
    mask: np.ndarray | None = None,
    constants: list[np.ndarray] | None = None,
    go_backwards: bool = False,
    zero_output_for_mask: bool = False,
    time_major: bool = False,
    training: bool = False,
    dtype: str = "float32",
) -> tuple[np.ndarray, np.ndarray, list[Any]]:
    """Returns (last_output, outputs, final_states); outputs in processed order, in the
    inputs' axis order; states in the structure `cell.call` uses."""
    steps_first = inputs if time_major else inputs.swapaxes(0, 1)  # (steps, batch, features)
    mask_steps_first = None if mask is None else (mask if time_major else mask.T)
    kwargs = {} if constants is None else {"constants": constants}
    order = range(steps_first.shape[0])
    states = initial_states
    previous_output = None
    outputs = []
    for t in reversed(order) if go_backwards else order:
        output, new_states = call_cell(cell, steps_first[t], states, training, **kwargs)
        output = np.asarray(output, dtype=dtype)
        if mask_steps_first is not None:
            used = mask_steps_first[t][:, None]
            if zero_output_for_mask or previous_output is None:
                previous_output = np.zeros_like(output)
            output = np.where(used, output, previous_output)
            new_states = _where(used, new_states, states)
        states = new_states
        previous_output = output
        outputs.append(output)
    sequence = np.stack(outputs)
    if not time_major:
        sequence = sequence.swapaxes(0, 1)
    return outputs[-1], np.ascontiguousarray(sequence), states

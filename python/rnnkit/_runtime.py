"""Process-wide switches that tests use to pin the path an RNN call takes (see rnnkit.testing)."""

from __future__ import annotations

import weakref
from typing import Any

# Run every RNN call through the NumPy loop instead of the C++ kernels.
force_python_loop = False
# Chunk size of the unroll=False C++ loop (None: the kernel's own memory-bounded choice).
chunk_steps: int | None = None
# Layers holding a fast-path plan: the switches above drop them all when they change.
layers_with_plans: weakref.WeakSet[Any] = weakref.WeakSet()


def drop_plans() -> None:
    """Forget every fast-path plan, so the next calls take the path the switches now choose."""
    for layer in list(layers_with_plans):
        layer._plan = None
    layers_with_plans.clear()

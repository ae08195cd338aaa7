"""Test helpers: pin the path RNN calls take, to prove both paths give the same numbers."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from . import _runtime


@contextlib.contextmanager
def python_loop() -> Iterator[None]:
    """Inside this block every RNN call runs the NumPy loop instead of the C++ kernels."""
    previous = _runtime.force_python_loop
    _runtime.force_python_loop = True
    _runtime.drop_plans()
    try:
        yield
    finally:
        _runtime.force_python_loop = previous
        _runtime.drop_plans()


@contextlib.contextmanager
def chunk_steps(steps: int) -> Iterator[None]:
    """Inside this block the unroll=False C++ loop projects inputs `steps` timesteps at a time."""
    if int(steps) < 1:
        raise ValueError(f"`steps` must be a positive integer. Received: steps={steps!r}")
    previous = _runtime.chunk_steps
    _runtime.chunk_steps = int(steps)
    _runtime.drop_plans()
    try:
        yield
    finally:
        _runtime.chunk_steps = previous
        _runtime.drop_plans()

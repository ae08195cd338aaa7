"""Batches for `predict`, with Keras's progress bar when `verbose=1`."""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from typing import Any

import numpy as np


def batches_with_progress(
    arrays: list[Any], batch_size: int | None, verbose: Any
) -> Iterator[list[Any]]:
    """The inputs `batch_size` rows at a time (all at once for None); with `verbose` 1 (or
    "auto") a progress bar on stderr, with 2 one line at the end."""
    if batch_size is not None and (
        isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer))
        or batch_size <= 0
    ):
        raise ValueError(f"`batch_size` must be a positive integer. Received: {batch_size!r}")
    rows = int(np.shape(arrays[0])[0]) if np.ndim(arrays[0]) else 1
    size = rows if batch_size is None or batch_size >= rows else int(batch_size)
    steps = max(1, -(-rows // max(size, 1)))
    mode = 1 if verbose == "auto" else int(verbose or 0)
    start = time.perf_counter()
    for step in range(steps):
        yield [a[step * size : (step + 1) * size] for a in arrays] if steps > 1 else arrays
        if mode == 1 or (mode == 2 and step == steps - 1):
            _show(step + 1, steps, time.perf_counter() - start, final=step == steps - 1)


def _show(done: int, total: int, elapsed: float, final: bool, width: int = 20) -> None:
    filled = width * done // total
    bar = "=" * max(filled - 1, 0) + (">" if filled < width else "=") + "." * (width - filled)
    per_step = elapsed / done
    timing = f"{elapsed:.0f}s {per_step * 1e3:.0f}ms/step" if final else (
        f"ETA: {per_step * (total - done):.0f}s")
    sys.stderr.write(f"\r{done}/{total} [{bar}] - {timing}" + ("\n" if final else ""))
    sys.stderr.flush()

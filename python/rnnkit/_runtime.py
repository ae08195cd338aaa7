"""Process-wide switches that tests use to pin the path an RNN call takes (see rnnkit.testing)."""

from __future__ import annotations

# Run every RNN call through the NumPy loop instead of the C++ kernels.
force_python_loop = False
# Chunk size of the unroll=False C++ loop (None: the kernel's own memory-bounded choice).
chunk_steps: int | None = None

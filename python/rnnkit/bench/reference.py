"""The float64 NumPy reference every peer's output is checked against before it is timed.

Written gate by gate (separate per-gate matrices, Keras semantics) so that it shares no code
with the fused NumPy-loop peer.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

# Largest |peer - reference| accepted. Outputs are in [-1, 1]; float32 rounding over 100
# contracting steps stays near 1e-6, bf16 arithmetic is ~1e-2.
TOLERANCE = 1e-4


def _sigmoid(v: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-v))


def reference_output(cell: str, weights: Sequence[np.ndarray], x: np.ndarray) -> np.ndarray:
    """Keras-semantics output sequence (B, T, H) in float64, zero initial state."""
    kernel, recurrent, bias = (np.asarray(w, dtype=np.float64) for w in weights)
    units = recurrent.shape[0]
    xs = np.asarray(x, dtype=np.float64)
    batch, steps = xs.shape[:2]

    def part(m: np.ndarray, k: int) -> np.ndarray:
        return m[..., k * units : (k + 1) * units]

    h = np.zeros((batch, units))
    c = np.zeros((batch, units))
    out = np.empty((batch, steps, units))
    for t in range(steps):
        xt = xs[:, t]
        if cell == "SimpleRNN":
            h = np.tanh(xt @ kernel + h @ recurrent + bias)
        elif cell == "LSTM":
            i, f, g, o = (xt @ part(kernel, k) + h @ part(recurrent, k) + part(bias, k)
                          for k in range(4))
            c = _sigmoid(f) * c + _sigmoid(i) * np.tanh(g)
            h = _sigmoid(o) * np.tanh(c)
        elif cell == "GRU":  # reset_after=True: bias[0] input bias, bias[1] recurrent bias
            xz, xr, xh = (xt @ part(kernel, k) + part(bias[0], k) for k in range(3))
            hz, hr, hh = (h @ part(recurrent, k) + part(bias[1], k) for k in range(3))
            z = _sigmoid(xz + hz)
            r = _sigmoid(xr + hr)
            h = z * h + (1.0 - z) * np.tanh(xh + r * hh)
        else:
            raise ValueError(f"unknown cell {cell!r}")
        out[:, t] = h
    return out


def max_error(output: np.ndarray, reference: np.ndarray) -> float:
    """Largest absolute difference; inf when the shapes differ or the output is not finite."""
    out = np.asarray(output, dtype=np.float64)
    if out.shape != reference.shape or not np.all(np.isfinite(out)):
        return float("inf")
    return float(np.max(np.abs(out - reference)))

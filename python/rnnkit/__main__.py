"""`python -m rnnkit`: run the examples of the tf.keras 2 `RNN` docstring and check every built-in
cell's C++ path against the NumPy loop, with the time each took."""

from __future__ import annotations

import time

import numpy as np

import rnnkit
from rnnkit import examples, testing
from rnnkit.layers.recurrent import registry


def _median_seconds(function, repeats: int = 7) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def main() -> int:
    rng = np.random.default_rng(0)
    print(
        f"rnnkit {rnnkit.__version__}: SIMD level {rnnkit.active_isa()} "
        f"(compiled: {', '.join(rnnkit.compiled_isas())})\n"
    )

    x = rng.standard_normal((4, 10, 5)).astype("float32")
    print("The tf.keras 2 RNN docstring's examples (a custom Python cell, NumPy loop):")
    print(f"  RNN(MinimalRNNCell(32))                       -> {examples.minimal_rnn(x).shape}")
    print(
        f"  RNN([MinimalRNNCell(32), MinimalRNNCell(64)]) -> "
        f"{examples.stacked_minimal_rnn(x).shape}\n"
    )

    batch, steps, features, units = 8, 100, 32, 64
    x = rng.standard_normal((batch, steps, features)).astype("float32")
    print(
        f"Built-in cells, C++ against the NumPy loop (batch {batch}, {steps} steps, "
        f"{features} features, {units} units, return_sequences=True):"
    )
    print(f"  {'layer':<24}{'max |difference|':>18}{'C++ ms':>10}{'NumPy ms':>10}{'speed-up':>10}")
    worst = 0.0
    layers = {  # every built-in cell's layer (the registry's), and GRU's other kernel
        cls.__name__: cls(units, return_sequences=True)
        for cls in registry.layer_classes().values()
    }
    layers["GRU(reset_after=False)"] = rnnkit.GRU(units, return_sequences=True, reset_after=False)
    for name, layer in layers.items():
        compiled = layer(x)
        with testing.python_loop():
            reference = layer(x)
            numpy_seconds = _median_seconds(lambda layer=layer: layer(x), repeats=3)
        compiled_seconds = _median_seconds(lambda layer=layer: layer(x))
        difference = float(np.abs(compiled - reference).max())
        worst = max(worst, difference)
        print(
            f"  {name:<24}{difference:>18.2e}{compiled_seconds * 1e3:>10.3f}"
            f"{numpy_seconds * 1e3:>10.3f}{numpy_seconds / compiled_seconds:>9.1f}x"
        )
    ok = worst < 1e-5
    print(f"\n{'OK' if ok else 'MISMATCH'}: C++ and NumPy agree to {worst:.1e}.")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())

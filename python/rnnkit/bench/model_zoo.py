"""The three Keras models of the model rows, built and saved by Keras in a subprocess
(`python -m rnnkit.bench.model_zoo DIR SEED`, Keras's NumPy backend: building needs no other;
this process never imports Keras, as the rest of the harness).

* `text-bilstm`: ids (T,) -> Embedding(1000, 64, mask_zero=True) -> Bidirectional(LSTM(128))
  -> Dense(10, softmax); the inputs are padded with trailing zeros (masked);
* `cnn-lstm`: (T, 40) floats -> Conv1D(64, 5, padding="same", relu) -> MaxPooling1D(2)
  -> LSTM(128) -> Dense(10);
* `seq2seq`: encoder LSTM(128, return_state=True) on (T, 40) floats, decoder
  LSTM(128, return_sequences=True) on a second (T, 40) input with the encoder's states as
  initial_state, Dense(40) on each decoder step.

Weights: Keras's random initializers (seeded), then every bias drawn from U(-0.2, 0.2), so that
a peer mapping a bias wrongly fails the check.
"""

from __future__ import annotations

import os
import subprocess
import sys
from typing import Any

from .keras_jax import worker_env

MODEL_NAMES: tuple[str, ...] = ("text-bilstm", "cnn-lstm", "seq2seq")
PADDED: frozenset[str] = frozenset({"text-bilstm"})  # id inputs padded with zeros


def write_models(directory: str, names: tuple[str, ...] = MODEL_NAMES, seed: int = 0) -> dict[
        str, str]:
    """Save the models `names` as `<directory>/<name>.keras`; returns {name: path}. Raises
    RuntimeError with Keras's last error line when the subprocess fails (Keras missing)."""
    done = subprocess.run(
        [sys.executable, "-m", "rnnkit.bench.model_zoo", directory, str(seed), *names],
        capture_output=True, text=True, env=worker_env(None, "numpy"), timeout=600,
    )
    if done.returncode != 0:
        lines = done.stderr.strip().splitlines()
        raise RuntimeError(lines[-1] if lines else f"exit code {done.returncode}")
    return {name: os.path.join(directory, f"{name}.keras") for name in names}


# ----------------------------------------------------------------------------- subprocess side
def build(name: str, keras: Any) -> Any:
    """The Keras model `name` (see the module docstring), weights from the initializers."""
    layers = keras.layers
    if name == "text-bilstm":
        ids = keras.Input((None,), dtype="int32", name="ids")
        h = layers.Embedding(1000, 64, mask_zero=True)(ids)
        h = layers.Bidirectional(layers.LSTM(128))(h)
        return keras.Model(ids, layers.Dense(10, activation="softmax")(h), name=name)
    if name == "cnn-lstm":
        x = keras.Input((None, 40), name="features")
        h = layers.Conv1D(64, 5, padding="same", activation="relu")(x)
        h = layers.MaxPooling1D(2)(h)
        h = layers.LSTM(128)(h)
        return keras.Model(x, layers.Dense(10)(h), name=name)
    if name == "seq2seq":
        source = keras.Input((None, 40), name="source")
        target = keras.Input((None, 40), name="target")
        _, h, c = layers.LSTM(128, return_state=True)(source)
        y = layers.LSTM(128, return_sequences=True)(target, initial_state=[h, c])
        return keras.Model([source, target], layers.Dense(40)(y), name=name)
    raise ValueError(f"unknown model {name!r} (known: {', '.join(MODEL_NAMES)})")


def main(argv: list[str]) -> None:
    """`DIR SEED NAME...`: build, randomize the biases, save `DIR/NAME.keras`."""
    import keras
    import numpy as np

    directory, seed, names = argv[0], int(argv[1]), argv[2:]
    keras.utils.set_random_seed(seed)
    rng = np.random.default_rng(seed)
    for name in names:
        model = build(name, keras)
        for variable in model.weights:
            if len(variable.shape) == 1:  # biases (Keras initializes them to 0 or 1)
                variable.assign(rng.uniform(-0.2, 0.2, variable.shape).astype("float32"))
        model.save(os.path.join(directory, f"{name}.keras"))


if __name__ == "__main__":
    main(sys.argv[1:])

"""rnnkit's benchmark harness: rnnkit against its peers (a NumPy loop, PyTorch, ONNX Runtime,
OpenVINO, Keras 3 on JAX) on the scenarios and targets of bench/README.md, and whole Keras models
(`rnnkit.load_keras`) beside Keras itself: three built-in ones and the user's (`--model FILE`).

Run `python -m rnnkit.bench --help`. From Python: `rnnkit.bench.runner.run(Config(...))`.
Nothing heavy is imported here: each peer imports its library when it is loaded.
"""

from .cli import main
from .runner import Config, Result, run

__all__ = ["Config", "Result", "main", "run"]

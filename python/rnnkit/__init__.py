"""rnnkit: fast CPU inference for recurrent neural networks, with the Keras 3 recurrent API.

Built-in cells (SimpleRNN, LSTM, GRU) and stacks of them run in C++; any other cell runs
through a NumPy loop with the same semantics. Copy weights from Keras with
`layer.set_weights(keras_layer.get_weights())` and get the same numbers.

Every layer of `rnnkit.layers` is also here (`rnnkit.LSTM` is `rnnkit.layers.LSTM`).
"""

from . import activations, initializers, layers, ops
from ._core import (
    active_isa,
    compiled_isas,
    get_num_threads,
    set_num_threads,
    supported_isas,
)
from ._version import __version__ as __version__
from .io.keras import from_keras, load_keras
from .io.native import load, save
from .io.torch import TorchRNN, from_torch
from .layers import *  # noqa: F403 -- the keras.layers namespace, listed once in layers.__all__
from .models import Input, Model, Sequential

__all__ = [
    *layers.__all__,
    "Input",
    "Model",
    "Sequential",
    "TorchRNN",
    "activations",
    "active_isa",
    "compiled_isas",
    "from_keras",
    "from_torch",
    "get_num_threads",
    "initializers",
    "layers",
    "load",
    "load_keras",
    "ops",
    "save",
    "set_num_threads",
    "supported_isas",
]

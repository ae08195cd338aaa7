"""rnnkit: fast CPU inference for recurrent neural networks, with the Keras 3 recurrent API.

Built-in cells (SimpleRNN, LSTM, GRU) and stacks of them run in C++; any other cell runs
through a NumPy loop with the same semantics. Copy weights from Keras with
`layer.set_weights(keras_layer.get_weights())` and get the same numbers.
"""

from . import activations, initializers, ops
from ._core import (
    active_isa,
    compiled_isas,
    get_num_threads,
    set_num_threads,
    supported_isas,
)
from .cells import GRUCell, LSTMCell, SimpleRNNCell, StackedRNNCells
from .keras_io import from_keras, load_keras
from .layer import Layer
from .layers import GRU, LSTM, Bidirectional, SimpleRNN
from .models import (
    Activation,
    AlphaDropout,
    Dense,
    Dropout,
    Embedding,
    Flatten,
    GaussianDropout,
    GaussianNoise,
    InputLayer,
    Masking,
    RepeatVector,
    Reshape,
    Sequential,
    SpatialDropout1D,
    SpatialDropout2D,
    SpatialDropout3D,
    TimeDistributed,
)
from .rnn import RNN
from .saving import load, save
from .torch_io import TorchRNN, from_torch

__version__ = "0.1.0"

__all__ = [
    "Activation",
    "AlphaDropout",
    "Dense",
    "Dropout",
    "Embedding",
    "Flatten",
    "GaussianDropout",
    "GaussianNoise",
    "InputLayer",
    "Masking",
    "RepeatVector",
    "Reshape",
    "Sequential",
    "SpatialDropout1D",
    "SpatialDropout2D",
    "SpatialDropout3D",
    "TimeDistributed",
    "TorchRNN",
    "from_keras",
    "from_torch",
    "load",
    "load_keras",
    "save",
    "GRU",
    "LSTM",
    "RNN",
    "Bidirectional",
    "GRUCell",
    "LSTMCell",
    "Layer",
    "SimpleRNN",
    "SimpleRNNCell",
    "StackedRNNCells",
    "activations",
    "active_isa",
    "compiled_isas",
    "get_num_threads",
    "initializers",
    "ops",
    "set_num_threads",
    "supported_isas",
]

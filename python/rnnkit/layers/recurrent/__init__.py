"""Recurrent layers and cells: the built-in cells (C++ kernels), the RNN layer that runs any
cell, the convenience layers, stacks and Bidirectional."""

from .bidirectional import Bidirectional
from .gru import GRU, GRUCell
from .lstm import LSTM, LSTMCell, PeepholeLSTM, PeepholeLSTMCell
from .rnn import RNN
from .simple_rnn import SimpleRNN, SimpleRNNCell
from .stacked import StackedRNNCells

__all__ = [
    "GRU",
    "LSTM",
    "RNN",
    "Bidirectional",
    "GRUCell",
    "LSTMCell",
    "PeepholeLSTM",
    "PeepholeLSTMCell",
    "SimpleRNN",
    "SimpleRNNCell",
    "StackedRNNCells",
]

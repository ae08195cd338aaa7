"""The `keras.layers` namespace of rnnkit: code written against `keras.layers` runs with
`import rnnkit as keras`. Re-exports only; each layer lives in the module of its kind."""

from . import recurrent
from .base import Layer
from .core import (
    Activation,
    Dense,
    Embedding,
    Flatten,
    InputLayer,
    Masking,
    RepeatVector,
    Reshape,
    TimeDistributed,
)
from .recurrent import *  # noqa: F403 -- listed once, in recurrent.__all__
from .regularization import (
    AlphaDropout,
    Dropout,
    GaussianDropout,
    GaussianNoise,
    SpatialDropout1D,
    SpatialDropout2D,
    SpatialDropout3D,
)

__all__ = [
    *recurrent.__all__,
    "Activation",
    "AlphaDropout",
    "Dense",
    "Dropout",
    "Embedding",
    "Flatten",
    "GaussianDropout",
    "GaussianNoise",
    "InputLayer",
    "Layer",
    "Masking",
    "RepeatVector",
    "Reshape",
    "SpatialDropout1D",
    "SpatialDropout2D",
    "SpatialDropout3D",
    "TimeDistributed",
]

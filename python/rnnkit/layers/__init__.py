"""The `keras.layers` namespace of rnnkit: code written against `keras.layers` runs with
`import rnnkit as keras`. Re-exports only; each layer lives in the module of its kind."""

from . import (
    activation_layers,
    attention,
    convolutional,
    merging,
    multi_head_attention,
    normalization,
    pooling,
    recurrent,
    reshaping,
)
from .activation_layers import *  # noqa: F403
from .attention import *  # noqa: F403
from .base import Layer
from .convolutional import *  # noqa: F403
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
from .merging import *  # noqa: F403
from .multi_head_attention import *  # noqa: F403
from .normalization import *  # noqa: F403
from .pooling import *  # noqa: F403
from .recurrent import *  # noqa: F403 -- each module lists its layers once, in __all__
from .regularization import (
    AlphaDropout,
    Dropout,
    GaussianDropout,
    GaussianNoise,
    SpatialDropout1D,
    SpatialDropout2D,
    SpatialDropout3D,
)
from .reshaping import *  # noqa: F403

__all__ = [
    *activation_layers.__all__,
    *attention.__all__,
    *convolutional.__all__,
    *merging.__all__,
    *multi_head_attention.__all__,
    *normalization.__all__,
    *pooling.__all__,
    *recurrent.__all__,
    *reshaping.__all__,
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

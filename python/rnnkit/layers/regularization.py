"""Layers that only act in training (dropout and noise): identities at inference, as in Keras."""

from __future__ import annotations

from typing import Any

from .core import ModelLayer


# --------------------------------------------------------------------------- identity layers
class Dropout(ModelLayer):
    """Dropout: the identity at inference (`training=True` with a nonzero rate raises)."""

    def __init__(
        self, rate: float = 0.0, noise_shape: Any = None, seed: int | None = None, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self.rate = float(rate)
        if not 0.0 <= self.rate <= 1.0:
            raise ValueError(f"`rate` must be in [0, 1]. Received: rate={rate!r}")
        self.noise_shape = noise_shape
        self.seed = seed

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "rate": self.rate,
            "noise_shape": self.noise_shape,
            "seed": self.seed,
        }


class SpatialDropout1D(Dropout):
    """SpatialDropout1D: the identity at inference."""

    def __init__(self, rate: float = 0.0, seed: int | None = None, **kwargs: Any) -> None:
        kwargs.pop("data_format", None)
        super().__init__(rate=rate, seed=seed, **kwargs)


class SpatialDropout2D(SpatialDropout1D):
    """SpatialDropout2D: the identity at inference."""


class SpatialDropout3D(SpatialDropout1D):
    """SpatialDropout3D: the identity at inference."""


class GaussianDropout(Dropout):
    """GaussianDropout: the identity at inference."""


class AlphaDropout(Dropout):
    """AlphaDropout: the identity at inference."""


class GaussianNoise(ModelLayer):
    """GaussianNoise: the identity at inference."""

    def __init__(self, stddev: float = 0.0, seed: int | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.stddev = float(stddev)
        self.seed = seed

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "stddev": self.stddev, "seed": self.seed}



"""Random initializers: uniform, normal and truncated normal samples, the VarianceScaling family
(Glorot, He, Lecun) and Orthogonal. Seeding is described in the package's docstring.
"""

from __future__ import annotations

import math
import random as _py_random

import numpy as np

from .initializer import (
    Initializer,
    _check_axes,
    _check_number,
    _standardize_dtype,
    _standardize_shape,
)

# Standard deviation of a unit normal truncated to [-2, 2]; dividing by it makes the truncated
# distribution's standard deviation the requested one (Keras uses the same constant).
_TRUNCATED_STDDEV_FACTOR = 0.87962566103423978


# --------------------------------------------------------------------------- seeds


class _RandomInitializer(Initializer):
    """Shared seed handling (the semantics: the docstring of `rnnkit.initializers`)."""

    def __init__(self, seed=None):
        self._init_seed = seed
        if seed is None:
            # Drawn once per instance, from Python's `random` module, as Keras does.
            seed = _py_random.randint(1, int(1e9))
        elif isinstance(seed, dict):
            seed = _seed_from_keras_config(seed)
            self._init_seed = seed if isinstance(seed, int) else None
        elif isinstance(seed, np.random.Generator):
            pass
        elif isinstance(seed, (int, np.integer)) and not isinstance(seed, (bool, np.bool_)):
            if seed < 0:
                raise ValueError(
                    f"Argument `seed` must be a non-negative integer. Received: seed={seed}"
                )
            seed = int(seed)
            self._init_seed = seed
        else:
            raise ValueError(
                "Argument `seed` must be None, a non-negative integer or a "
                f"numpy.random.Generator. Received: seed={seed!r}"
            )
        self.seed = seed

    def _rng(self):
        if isinstance(self.seed, np.random.Generator):
            return self.seed
        # Keras's NumPy backend seeds default_rng with the pair [seed, 0].
        return np.random.default_rng([self.seed, 0])

    def get_config(self):
        # A Generator cannot be serialized; a clone then gets a fresh seed (as seed=None).
        return {"seed": self._init_seed if isinstance(self._init_seed, int) else None}


def _seed_from_keras_config(config):
    """Turn a serialized ``keras.random.SeedGenerator`` into a numpy Generator."""
    if config.get("class_name") != "SeedGenerator":
        raise ValueError(
            "Argument `seed` given as a dict must be a serialized keras SeedGenerator. "
            f"Received: seed={config!r}"
        )
    inner = config.get("config", {}).get("seed")
    return np.random.default_rng(None if inner is None else [int(inner), 0])


# --------------------------------------------------------------------------- sampling helpers


def _uniform(rng, shape, low, high, dtype):
    return rng.uniform(low=low, high=high, size=shape).astype(dtype, copy=False)


def _normal(rng, shape, mean, stddev, dtype):
    return rng.normal(loc=mean, scale=stddev, size=shape).astype(dtype, copy=False)


def _truncated_normal(rng, shape, mean, stddev, dtype):
    """Normal samples outside ``mean ± 2 * stddev`` are rejected and drawn again."""
    count = math.prod(shape)
    low, high = mean - 2.0 * stddev, mean + 2.0 * stddev
    kept = []
    n_kept = 0
    while n_kept < count:
        batch = rng.normal(loc=mean, scale=stddev, size=count)
        batch = batch[(batch >= low) & (batch <= high)]
        kept.append(batch)
        n_kept += batch.size
    flat = np.concatenate(kept)[:count] if kept else np.empty(0)
    return flat.astype(dtype, copy=False).reshape(shape)


# --------------------------------------------------------------------------- the initializers


class RandomUniform(_RandomInitializer):
    """Uniform samples in ``[minval, maxval)``."""

    def __init__(self, minval=-0.05, maxval=0.05, seed=None):
        _check_number("minval", minval)
        _check_number("maxval", maxval)
        if maxval < minval:
            raise ValueError(
                f"Argument `maxval` must be >= `minval`. Received: minval={minval}, maxval={maxval}"
            )
        self.minval = minval
        self.maxval = maxval
        super().__init__(seed=seed)

    def __call__(self, shape, dtype="float32"):
        """Return uniform samples of the given shape and dtype."""
        shape = _standardize_shape(shape)
        dtype = _standardize_dtype(dtype, True)
        return _uniform(self._rng(), shape, self.minval, self.maxval, dtype)

    def get_config(self):
        return {**super().get_config(), "minval": self.minval, "maxval": self.maxval}


class _MeanStddevInitializer(_RandomInitializer):
    """Shared constructor and config of RandomNormal and TruncatedNormal."""

    def __init__(self, mean=0.0, stddev=0.05, seed=None):
        _check_number("mean", mean)
        _check_number("stddev", stddev)
        if stddev < 0:
            raise ValueError(f"Argument `stddev` must be >= 0. Received: stddev={stddev}")
        self.mean = mean
        self.stddev = stddev
        super().__init__(seed=seed)

    def get_config(self):
        return {**super().get_config(), "mean": self.mean, "stddev": self.stddev}


class RandomNormal(_MeanStddevInitializer):
    """Normal samples with the given ``mean`` and ``stddev``."""

    def __call__(self, shape, dtype="float32"):
        """Return normal samples of the given shape and dtype."""
        shape = _standardize_shape(shape)
        dtype = _standardize_dtype(dtype, True)
        return _normal(self._rng(), shape, self.mean, self.stddev, dtype)


class TruncatedNormal(_MeanStddevInitializer):
    """Normal samples, redrawn when more than two ``stddev`` away from ``mean``."""

    def __call__(self, shape, dtype="float32"):
        """Return truncated normal samples of the given shape and dtype."""
        shape = _standardize_shape(shape)
        dtype = _standardize_dtype(dtype, True)
        return _truncated_normal(self._rng(), shape, self.mean, self.stddev, dtype)


def compute_fans(shape, input_axes=None, output_axes=None):
    """Return ``(fan_in, fan_out)`` for a weight shape, the way Keras computes them.

    Rank 0: ``(1, 1)``; rank 1: ``(n, n)``; rank 2: ``(rows, cols)``; higher ranks are treated as
    convolution kernels ``(*receptive_field, in, out)``. With both ``input_axes`` and
    ``output_axes`` given, the fans are the products of those axes' sizes.
    """
    shape = _standardize_shape(shape)
    if input_axes is not None and output_axes is not None:
        try:
            fan_in = math.prod(shape[a] for a in input_axes)
            fan_out = math.prod(shape[a] for a in output_axes)
        except IndexError:
            raise ValueError(
                f"Arguments `input_axes`={input_axes} / `output_axes`={output_axes} do not "
                f"fit a shape of rank {len(shape)}. Received: shape={shape}"
            ) from None
        return int(fan_in), int(fan_out)
    if len(shape) == 0:
        return 1, 1
    if len(shape) == 1:
        return shape[0], shape[0]
    if len(shape) == 2:
        return shape[0], shape[1]
    receptive_field = math.prod(shape[:-2])
    return shape[-2] * receptive_field, shape[-1] * receptive_field


class VarianceScaling(_RandomInitializer):
    """Samples with variance ``scale / n``, ``n`` being fan_in, fan_out or their average.

    ``distribution="truncated_normal"`` (alias ``"normal"``): truncated at two standard
    deviations and rescaled so the variance after truncation is ``scale / n``;
    ``"untruncated_normal"``: plain normal with stddev ``sqrt(scale / n)``; ``"uniform"``:
    uniform in ``[-limit, limit]`` with ``limit = sqrt(3 * scale / n)``.
    """

    _MODES = ("fan_in", "fan_out", "fan_avg")
    _DISTRIBUTIONS = ("truncated_normal", "untruncated_normal", "uniform")

    def __init__(
        self,
        scale=1.0,
        mode="fan_in",
        distribution="truncated_normal",
        seed=None,
        input_axes=None,
        output_axes=None,
    ):
        _check_number("scale", scale)
        if not scale > 0.0:
            raise ValueError(f"Argument `scale` must be a positive float. Received: scale={scale}")
        if mode not in self._MODES:
            raise ValueError(
                f"Argument `mode` must be one of {list(self._MODES)}. Received: mode={mode!r}"
            )
        dist = distribution.lower() if isinstance(distribution, str) else distribution
        if dist == "normal":
            dist = "truncated_normal"
        if dist not in self._DISTRIBUTIONS:
            raise ValueError(
                f"Argument `distribution` must be one of {list(self._DISTRIBUTIONS)} "
                f"(or 'normal'). Received: distribution={distribution!r}"
            )
        self.scale = scale
        self.mode = mode
        self.distribution = dist
        self.input_axes = _check_axes("input_axes", input_axes)
        self.output_axes = _check_axes("output_axes", output_axes)
        super().__init__(seed=seed)

    def _variance(self, shape):
        fan_in, fan_out = compute_fans(shape, self.input_axes, self.output_axes)
        if self.mode == "fan_in":
            n = fan_in
        elif self.mode == "fan_out":
            n = fan_out
        else:
            n = (fan_in + fan_out) / 2.0
        return self.scale / max(1.0, n)

    def __call__(self, shape, dtype="float32"):
        """Return samples of the given shape and dtype with the configured variance."""
        shape = _standardize_shape(shape)
        dtype = _standardize_dtype(dtype, True)
        variance = self._variance(shape)
        rng = self._rng()
        if self.distribution == "truncated_normal":
            stddev = math.sqrt(variance) / _TRUNCATED_STDDEV_FACTOR
            return _truncated_normal(rng, shape, 0.0, stddev, dtype)
        if self.distribution == "untruncated_normal":
            return _normal(rng, shape, 0.0, math.sqrt(variance), dtype)
        limit = math.sqrt(3.0 * variance)
        return _uniform(rng, shape, -limit, limit, dtype)

    def get_config(self):
        return {
            **super().get_config(),
            "scale": self.scale,
            "mode": self.mode,
            "distribution": self.distribution,
            "input_axes": self.input_axes,
            "output_axes": self.output_axes,
        }


class _FixedVarianceScaling(VarianceScaling):
    """A VarianceScaling preset: only ``seed`` (and the fan axes) are configurable."""

    _PRESET = (1.0, "fan_in", "truncated_normal")

    def __init__(self, seed=None, input_axes=None, output_axes=None):
        scale, mode, distribution = self._PRESET
        super().__init__(
            scale=scale,
            mode=mode,
            distribution=distribution,
            seed=seed,
            input_axes=input_axes,
            output_axes=output_axes,
        )

    def get_config(self):
        config = super().get_config()
        return {k: config[k] for k in ("seed", "input_axes", "output_axes")}


class GlorotUniform(_FixedVarianceScaling):
    """Uniform in ``[-limit, limit]``, ``limit = sqrt(6 / (fan_in + fan_out))``."""

    _PRESET = (1.0, "fan_avg", "uniform")


class GlorotNormal(_FixedVarianceScaling):
    """Truncated normal with stddev ``sqrt(2 / (fan_in + fan_out))`` after truncation."""

    _PRESET = (1.0, "fan_avg", "truncated_normal")


class HeUniform(_FixedVarianceScaling):
    """Uniform in ``[-limit, limit]``, ``limit = sqrt(6 / fan_in)``."""

    _PRESET = (2.0, "fan_in", "uniform")


class HeNormal(_FixedVarianceScaling):
    """Truncated normal with stddev ``sqrt(2 / fan_in)`` after truncation."""

    _PRESET = (2.0, "fan_in", "truncated_normal")


class LecunUniform(_FixedVarianceScaling):
    """Uniform in ``[-limit, limit]``, ``limit = sqrt(3 / fan_in)``."""

    _PRESET = (1.0, "fan_in", "uniform")


class LecunNormal(_FixedVarianceScaling):
    """Truncated normal with stddev ``sqrt(1 / fan_in)`` after truncation."""

    _PRESET = (1.0, "fan_in", "truncated_normal")


class Orthogonal(_RandomInitializer):
    """``gain`` times a random orthogonal matrix (QR of a Gaussian matrix, signs fixed).

    The shape is flattened to ``(prod(shape[:-1]), shape[-1])``; the result has orthonormal
    columns when it has at least as many rows as columns, orthonormal rows otherwise.
    """

    def __init__(self, gain=1.0, seed=None):
        _check_number("gain", gain)
        self.gain = gain
        super().__init__(seed=seed)

    def __call__(self, shape, dtype="float32"):
        """Return an (orthogonal matrix reshaped to) array of the given shape and dtype."""
        shape = _standardize_shape(shape)
        dtype = _standardize_dtype(dtype, True)
        if len(shape) < 2:
            raise ValueError(
                "Orthogonal initializer needs a shape of rank at least 2. "
                f"Received: shape={shape} of rank {len(shape)}."
            )
        rows = math.prod(shape[:-1])
        cols = shape[-1]
        if rows == 0 or cols == 0:
            return np.zeros(shape, dtype=dtype)
        # Factor the tall orientation, then transpose back if the matrix is wide.
        a = _normal(self._rng(), (max(rows, cols), min(rows, cols)), 0.0, 1.0, dtype)
        q, r = np.linalg.qr(a, mode="reduced")
        # Make the factorization unique (and the distribution uniform) by giving R a positive
        # diagonal; a zero diagonal entry (probability zero) keeps its column as is.
        signs = np.where(np.diagonal(r) < 0, -1, 1).astype(dtype)
        q = q * signs
        if rows < cols:
            q = q.T
        return (q * dtype.type(self.gain)).astype(dtype, copy=False).reshape(shape)

    def get_config(self):
        return {**super().get_config(), "gain": self.gain}

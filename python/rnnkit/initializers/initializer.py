"""The base class of every initializer, and the argument checks the initializers share."""

from __future__ import annotations

import inspect

import numpy as np

# --------------------------------------------------------------------------- argument checks


def _standardize_shape(shape):
    """Return ``shape`` as a tuple of non-negative Python ints, or raise ValueError."""
    if isinstance(shape, (int, np.integer)) and not isinstance(shape, (bool, np.bool_)):
        shape = (shape,)
    try:
        dims = tuple(shape)
    except TypeError:
        raise ValueError(
            "Argument `shape` must be a tuple or list of non-negative integers. "
            f"Received: shape={shape!r}"
        ) from None
    out = []
    for dim in dims:
        if isinstance(dim, (bool, np.bool_)) or not isinstance(dim, (int, np.integer)):
            raise ValueError(
                "Argument `shape` must be a tuple or list of non-negative integers "
                f"(every dimension known). Received: shape={shape!r}"
            )
        if dim < 0:
            raise ValueError(
                f"Argument `shape` must contain non-negative integers. Received: shape={shape!r}"
            )
        out.append(int(dim))
    return tuple(out)


def _standardize_dtype(dtype, floating_only):
    """Return ``dtype`` as a ``numpy.dtype`` (``None`` means float32), or raise ValueError."""
    if dtype is None:
        return np.dtype("float32")
    try:
        dt = np.dtype(dtype)
    except TypeError:
        raise ValueError(
            f"Argument `dtype` is not a valid dtype. Received: dtype={dtype!r}"
        ) from None
    if floating_only:
        if dt.kind != "f":
            raise ValueError(
                "Argument `dtype` must be a floating-point dtype such as 'float32' or "
                f"'float64' for a random initializer. Received: dtype={dtype!r}"
            )
    elif dt.kind not in "biuf":
        raise ValueError(
            "Argument `dtype` must be a boolean, integer or floating-point dtype. "
            f"Received: dtype={dtype!r}"
        )
    return dt


def _check_number(name, value):
    """Raise ValueError unless ``value`` is a real, non-boolean scalar."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.number)):
        raise ValueError(f"Argument `{name}` must be a number. Received: {name}={value!r}")
    if isinstance(value, np.complexfloating):
        raise ValueError(f"Argument `{name}` must be a real number. Received: {name}={value!r}")


def _check_axes(name, axes):
    if axes is None:
        return None
    try:
        axes = [int(a) for a in axes]
    except (TypeError, ValueError):
        raise ValueError(
            f"Argument `{name}` must be None or a list of integers. Received: {name}={axes!r}"
        ) from None
    return axes


# --------------------------------------------------------------------------- the base class


class Initializer:
    """Base class: subclasses implement ``__call__(shape, dtype)`` and ``get_config()``."""

    def __call__(self, shape, dtype="float32"):
        """Return an array of the given shape and dtype."""
        raise NotImplementedError("Initializer subclasses must implement `__call__()`.")

    def get_config(self):
        """Return the constructor arguments as a JSON-serializable dict."""
        return {}

    @classmethod
    def from_config(cls, config):
        """Build an initializer from the output of ``get_config()``."""
        config = dict(config)
        params = inspect.signature(cls.__init__).parameters
        accepts_kwargs = any(p.kind is p.VAR_KEYWORD for p in params.values())
        unknown = sorted(k for k in config if k not in params or k == "self")
        if unknown and not accepts_kwargs:
            raise ValueError(
                f"Unexpected config keys for initializer {cls.__name__}: {unknown}. "
                f"Expected a subset of {[k for k in params if k != 'self']}. "
                f"Received: config={config!r}"
            )
        return cls(**config)

    def clone(self):
        """Return a new initializer with the same configuration."""
        return self.__class__.from_config(self.get_config())

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{self.__class__.__name__}({args})"

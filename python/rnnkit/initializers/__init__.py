"""Weight initializers with the names, arguments and math of Keras 3.

Every initializer is a callable object ``init(shape, dtype="float32") -> numpy.ndarray`` that
returns an array of exactly that shape and dtype, plus ``get_config()`` / ``from_config()`` in the
Keras format, so ``{"class_name": "GlorotUniform", "config": {"seed": None}}`` as Keras
serializes it can be passed to :func:`get`.

Seeding follows Keras 3 exactly (checked on Keras 3.15):

* ``seed=<int>``: every call of the instance returns the same values (the instance is a pure
  function of shape and dtype). Two instances with the same seed agree.
* ``seed=None`` (default): a seed is drawn once, when the instance is created, from Python's
  ``random`` module (as Keras does, so ``random.seed(n)`` makes unseeded initializers
  reproducible). Each new instance, e.g. each ``get("glorot_uniform")``, gives fresh values,
  while calling the *same* instance twice gives the same values again, as in Keras 3.
* ``seed=<numpy.random.Generator>``: the counterpart of ``keras.random.SeedGenerator``: every
  call draws from the generator and advances it, so successive calls give different values.

For an int seed (or ``None``) the arrays are bit-identical to Keras 3 with the NumPy backend
(same seeding of ``numpy.random.default_rng``, same sampling order); other Keras backends use
other random number generators and agree only in distribution.

Modules: ``initializer`` (the base class), ``constant_initializers``, ``random_initializers``;
this package looks initializers up by name and (de)serializes them.
"""

from __future__ import annotations

import inspect

import numpy as np

from .constant_initializers import Constant, Identity, Ones, Zeros, _FromArray
from .initializer import Initializer
from .random_initializers import (
    GlorotNormal,
    GlorotUniform,
    HeNormal,
    HeUniform,
    LecunNormal,
    LecunUniform,
    Orthogonal,
    RandomNormal,
    RandomUniform,
    TruncatedNormal,
    VarianceScaling,
    compute_fans,
)

__all__ = [
    "Initializer",
    "Zeros",
    "Ones",
    "Constant",
    "Identity",
    "RandomUniform",
    "RandomNormal",
    "TruncatedNormal",
    "VarianceScaling",
    "GlorotUniform",
    "GlorotNormal",
    "HeUniform",
    "HeNormal",
    "LecunUniform",
    "LecunNormal",
    "Orthogonal",
    "compute_fans",
    "get",
    "serialize",
    "deserialize",
]

# --------------------------------------------------------------------------- lookup


_CLASSES = (
    Zeros,
    Ones,
    Constant,
    Identity,
    RandomUniform,
    RandomNormal,
    TruncatedNormal,
    VarianceScaling,
    GlorotUniform,
    GlorotNormal,
    HeUniform,
    HeNormal,
    LecunUniform,
    LecunNormal,
    Orthogonal,
)


def _snake_case(name):
    out = []
    for i, ch in enumerate(name):
        if ch.isupper() and i > 0:
            out.append("_")
        out.append(ch.lower())
    return "".join(out)


# Class names, their snake_case forms, and Keras's aliases (case-sensitive, as in Keras).
_BY_NAME = {cls.__name__: cls for cls in _CLASSES}
_BY_NAME.update({_snake_case(cls.__name__): cls for cls in _CLASSES})
_BY_NAME.update(
    {
        "uniform": RandomUniform,
        "normal": RandomNormal,
        "zero": Zeros,
        "one": Ones,
        "IdentityInitializer": Identity,
        "OrthogonalInitializer": Orthogonal,
    }
)


def _lookup(name):
    try:
        return _BY_NAME[name]
    except KeyError:
        valid = sorted(n for n in _BY_NAME if n[0].islower())
        raise ValueError(
            f"Unknown initializer. Expected one of {valid} (or the CamelCase class name, "
            f"e.g. 'GlorotUniform'). Received: initializer={name!r}"
        ) from None


def serialize(initializer):
    """Return ``{"class_name": ..., "config": {...}}`` for an rnnkit initializer."""
    if not isinstance(initializer, Initializer):
        raise ValueError(
            "Argument `initializer` must be an rnnkit Initializer instance. "
            f"Received: initializer={initializer!r}"
        )
    return {"class_name": type(initializer).__name__, "config": initializer.get_config()}


def deserialize(config):
    """Build an initializer from ``{"class_name": ..., "config": {...}}`` (Keras format)."""
    if not isinstance(config, dict) or "class_name" not in config:
        raise ValueError(
            'Argument `config` must be a dict with a "class_name" key (and optionally '
            f'"config"). Received: config={config!r}'
        )
    cls = _lookup(config["class_name"])
    inner = config.get("config") or {}
    if not isinstance(inner, dict):
        raise ValueError(
            f'The "config" entry of an initializer dict must be a dict. Received: config={config!r}'
        )
    return cls.from_config(inner)


def get(identifier):
    """Return an initializer for a name, dict, Initializer, class, callable or array.

    * ``str``: a Keras name, e.g. ``"glorot_uniform"``, ``"GlorotUniform"``, ``"uniform"``; a
      new instance (with a fresh seed) each time.
    * ``dict``: a serialized initializer, ``{"class_name": ..., "config": {...}}``.
    * an ``Initializer`` instance or any callable ``(shape, dtype) -> array``: returned as is;
      an initializer class: instantiated with its defaults.
    * a NumPy array: an initializer returning that array (the requested shape must match).
    * ``None``: returns ``None``, as Keras does.
    """
    if identifier is None:
        return None
    if isinstance(identifier, str):
        return _lookup(identifier)()
    if isinstance(identifier, dict):
        return deserialize(identifier)
    if isinstance(identifier, (np.ndarray, np.generic)):
        return _FromArray(identifier)
    if inspect.isclass(identifier) and issubclass(identifier, Initializer):
        return identifier()
    if callable(identifier):
        return identifier
    raise ValueError(
        "Could not interpret initializer identifier: expected a name, a config dict, an "
        f"Initializer or a callable. Received: initializer={identifier!r}"
    )

"""Models: containers that run layers (`Sequential`, and functional `Model`s)."""

from .functional import Input, Model
from .sequential import Sequential

__all__ = ["Input", "Model", "Sequential"]

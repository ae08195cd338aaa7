"""Models: containers that run layers (`Sequential`)."""

from .sequential import Sequential

__all__ = ["Sequential"]

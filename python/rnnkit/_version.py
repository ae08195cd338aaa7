"""rnnkit's version, in a module of its own so that rnnkit.save can record it without importing
the package that imports rnnkit.save."""

__version__ = "0.1.0"

"""CellLayer: the base of the convenience layers (SimpleRNN, LSTM, GRU, ...), each an RNN over
one built-in cell made from the cell's arguments, as in Keras."""

from __future__ import annotations

from typing import Any

from . import registry
from .rnn import RNN, RNN_ARGUMENTS

# The base Layer's arguments that a convenience layer keeps for itself rather than give to its
# cell.
_LAYER_OWN = ("name", "trainable")


class CellLayer(RNN):
    """An RNN over one built-in cell made from the cell's arguments; the cell's attributes
    (units, activation, ...) read through, as in Keras. A subclass names its `CELL_CLASS`,
    which registers it; its arguments are the cell's, then the RNN's."""

    CELL_CLASS: type

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls.ARGUMENTS = {**cls.CELL_CLASS.ARGUMENTS, **RNN_ARGUMENTS}
        cls.__signature__ = registry.signature(cls.ARGUMENTS)
        registry.register_layer(cls, cls.CELL_CLASS)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        cell_arguments = self.CELL_CLASS.ARGUMENTS
        cell_args, args = args[: len(cell_arguments)], args[len(cell_arguments) :]
        rnn_names = [*RNN_ARGUMENTS, *_LAYER_OWN]
        rnn_kwargs = dict(zip(RNN_ARGUMENTS, args))
        rnn_kwargs.update({k: kwargs.pop(k) for k in rnn_names if k in kwargs})
        cell = self.CELL_CLASS(*cell_args, **kwargs)
        super().__init__(cell, dtype=cell.dtype, **rnn_kwargs)

    def __getattr__(self, name: str) -> Any:
        cell = self.__dict__.get("cell")
        if cell is not None and name in type(cell).ARGUMENTS:
            return getattr(cell, name)
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        cell_config = config.pop("cell").get_config()
        for key in _LAYER_OWN:
            cell_config.pop(key, None)
        return {**cell_config, **config}

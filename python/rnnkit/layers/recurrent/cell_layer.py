"""CellLayer: the base of the convenience layers (SimpleRNN, LSTM, GRU, ...), each an RNN over
one built-in cell made from the cell's arguments, as in Keras."""

from __future__ import annotations

from typing import Any

from .rnn import RNN

_RNN_ARGUMENTS = (
    "return_sequences",
    "return_state",
    "go_backwards",
    "stateful",
    "unroll",
    "time_major",
    "zero_output_for_mask",
    "name",
    "trainable",
)


class CellLayer(RNN):
    """An RNN over one built-in cell made from the cell's arguments; the cell's attributes
    (units, activation, ...) read through, as in Keras."""

    _CELL_CLASS: type = None

    def __init__(self, units: int, **kwargs: Any) -> None:
        rnn_kwargs = {k: kwargs.pop(k) for k in _RNN_ARGUMENTS if k in kwargs}
        cell = self._CELL_CLASS(units, **kwargs)
        super().__init__(cell, dtype=cell.dtype, **rnn_kwargs)

    def __getattr__(self, name: str) -> Any:
        cell = self.__dict__.get("cell")
        if cell is not None and not name.startswith("_") and name in cell.get_config():
            return getattr(cell, name)
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        cell_config = config.pop("cell").get_config()
        for key in ("name", "trainable"):
            cell_config.pop(key, None)
        return {**cell_config, **config}

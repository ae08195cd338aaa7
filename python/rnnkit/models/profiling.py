"""`model.profile()`: seconds spent in each layer of a model while the block runs.

    with model.profile() as times:
        model(x)
    times  # {"embedding": <seconds>, "bidirectional": <seconds>, "dense": <seconds>}

Times are wall-clock seconds summed over every call of the layer made in the block (a shared
layer's calls add up; a nested model counts as one layer). Only the model's own layer calls are
timed: what remains of a call (reading the inputs, walking the graph) is the difference between
the call's time and the sum. Profiling is per model object, so calls from other threads during
the block are counted too. Outside a `profile()` block a layer call costs one attribute test
more.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from typing import Any


class Profiled:
    """Mixin of `Model` and `Sequential`: `profile()` and the timed layer call they use."""

    _layer_times: dict[str, float] | None = None  # set only inside a profile() block

    @contextlib.contextmanager
    def profile(self) -> Iterator[dict[str, float]]:
        """A block whose layer calls are timed: yields {layer name: seconds}, filled as the
        model runs (in the order the layers first run); blocks may nest (each sees its own
        calls)."""
        saved = self._layer_times
        times: dict[str, float] = {}
        self._layer_times = times
        try:
            yield times
        finally:
            if saved is None:
                del self._layer_times  # back to the class default: nothing left on the object
            else:
                self._layer_times = saved
                for name, seconds in times.items():  # the enclosing block saw these calls too
                    saved[name] = saved.get(name, 0.0) + seconds

    def __getstate__(self) -> dict[str, Any]:
        # A copy (pickle, deepcopy) made inside a block is not profiled: it starts clean.
        state = super().__getstate__()  # type: ignore[misc]
        state.pop("_layer_times", None)
        return state

    def _timed_call(self, layer: Any, function: Callable[..., Any], *args: Any) -> Any:
        """`function(*args)`, its time added to `layer`'s entry inside a profile() block."""
        times = self._layer_times
        if times is None:
            return function(*args)
        start = time.perf_counter()
        try:
            return function(*args)
        finally:
            name = layer.name
            times[name] = times.get(name, 0.0) + time.perf_counter() - start

"""What a peer builds for one case: an `Instance` whose `run` is the timed call."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from .measure import Budget, Timing, time_callable
from .scenarios import Case

Run = Callable[[np.ndarray], Any]


def as_float64(y: Any) -> np.ndarray:
    """A peer's output (NumPy array, torch tensor, JAX array) as a float64 NumPy array."""
    if not isinstance(y, np.ndarray) and callable(getattr(y, "numpy", None)):
        y = y.numpy()
    return np.array(y, dtype=np.float64)


class Instance:
    """One peer ready to run one case: `run(x)` is the timed call (a whole sequence, or one
    step with the state carried for a streaming case), `reset()` zeroes a streaming state."""

    def __init__(self, case: Case, run: Run, reset: Callable[[], None] | None = None,
                 note: str = "") -> None:
        self.case = case
        self.run = run
        self.reset = reset
        self.note = note

    def output(self) -> np.ndarray:
        """The output (B, T, H) on `case.x`; streaming: one call per step from a zero state."""
        x = self.case.x
        if not self.case.scenario.stream:
            return as_float64(self.run(x))
        if self.reset is not None:
            self.reset()
        steps = [as_float64(self.run(np.ascontiguousarray(x[:, t : t + 1])))
                 for t in range(x.shape[1])]
        return np.concatenate([s.reshape(x.shape[0], 1, -1) for s in steps], axis=1)

    def measure(self, budget: Budget, calls: int = 0) -> Timing:
        """Time `run(case.timed_x)` (see `measure.time_callable`)."""
        run, x = self.run, self.case.timed_x
        return time_callable(lambda: run(x), budget, calls)

    def close(self) -> None:
        """Release what the instance holds."""

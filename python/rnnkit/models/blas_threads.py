"""NumPy's BLAS kept to one thread while a model runs with several rnnkit threads.

A model's non-recurrent layers compute with NumPy, whose BLAS (OpenBLAS) keeps its worker
threads spinning for a long while after each product. With rnnkit's own threads also running
(`rnnkit.set_num_threads(n > 1)`), those spinning threads take the cores rnnkit's threads meet
at every step, and a model slows down many times over (bench/README.md, "The model rows").
So while a model runs with several rnnkit threads, BLAS runs on the calling thread only; with
one rnnkit thread BLAS keeps its own threads. Needs threadpoolctl (a dependency of rnnkit) to
reach the BLAS library; without it nothing changes.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from typing import Any

from .. import _core

_lock = threading.Lock()
_users = 0  # model calls inside the limit, across threads
_saved: list[tuple[Any, int]] = []  # (library controller, its thread count before)
_controllers: list[Any] | None = None


def _blas_controllers() -> list[Any]:
    global _controllers
    if _controllers is None:
        try:
            import threadpoolctl

            found = threadpoolctl.ThreadpoolController().select(user_api="blas")
            _controllers = list(found.lib_controllers)
        except Exception:  # threadpoolctl missing or unable to read the libraries
            _controllers = []
    return _controllers


@contextlib.contextmanager
def single_threaded_blas() -> Iterator[None]:
    """BLAS on one thread for the block when rnnkit runs several threads (else unchanged).
    Nested and concurrent blocks share one limit: the last to leave restores the counts."""
    global _users
    if _core.get_num_threads() <= 1:
        yield
        return
    with _lock:
        if _users == 0:
            _saved[:] = [(c, c.get_num_threads()) for c in _blas_controllers()]
            for controller, count in _saved:
                if count > 1:
                    controller.set_num_threads(1)
        _users += 1
    try:
        yield
    finally:
        with _lock:
            _users -= 1
            if _users == 0:
                for controller, count in _saved:
                    if count > 1:
                        controller.set_num_threads(count)
                _saved.clear()

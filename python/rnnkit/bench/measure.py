"""Timing (warm-up, repeats until a time budget, median and spread), thread pinning, and the
machine's measured sgemm peak."""

from __future__ import annotations

import contextlib
import math
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Budget:
    """How long to measure one peer on one case.

    The `min_time` seconds of timed samples (and at least `min_samples` samples) are split over
    `rounds` rounds; the runner interleaves the peers round by round so that a change of load
    on the machine hits every peer alike. A sample times `calls` back-to-back calls, with
    `calls` chosen so that a sample lasts at least `sample_time` (fast calls are not dominated
    by the clock). At more than one thread the runner idles `settle` seconds before each
    peer's round, so that the spinning worker threads of the previous peer (OpenBLAS, OpenMP,
    ONNX Runtime) have gone to sleep.
    """

    min_time: float = 0.3
    min_samples: int = 7
    rounds: int = 3
    warmup_time: float = 0.05
    warmup_calls: int = 3
    sample_time: float = 2e-4
    peak_size: int = 1024
    settle: float = 0.1  # seconds of idle before each peer's round at > 1 thread

    def per_round(self) -> Budget:
        """The budget of one of the `rounds` rounds."""
        return Budget(
            min_time=self.min_time / self.rounds,
            min_samples=math.ceil(self.min_samples / self.rounds),
            rounds=1,
            warmup_time=self.warmup_time,
            warmup_calls=self.warmup_calls,
            sample_time=self.sample_time,
            peak_size=self.peak_size,
            settle=self.settle,
        )


FULL = Budget()
QUICK = Budget(
    min_time=0.02, min_samples=3, rounds=1, warmup_time=0.0, warmup_calls=1, peak_size=512,
    settle=0.0,
)


@dataclass
class Timing:
    """Per-call times in seconds (one entry per sample) and how they were taken."""

    samples: list[float]
    calls_per_sample: int = 1

    def extend(self, other: Timing) -> None:
        """Add the samples of another round."""
        self.samples.extend(other.samples)
        self.calls_per_sample = max(self.calls_per_sample, other.calls_per_sample)

    @property
    def median(self) -> float:
        """Median time per call, seconds."""
        return float(np.median(self.samples))

    @property
    def quartiles(self) -> tuple[float, float]:
        """25th and 75th percentiles of the time per call, seconds."""
        q1, q3 = np.percentile(self.samples, [25, 75])
        return float(q1), float(q3)

    def to_dict(self) -> dict[str, float | int]:
        """JSON-able summary (seconds)."""
        q1, q3 = self.quartiles
        return {
            "median_s": self.median,
            "q1_s": q1,
            "q3_s": q3,
            "min_s": float(min(self.samples)),
            "max_s": float(max(self.samples)),
            "samples": len(self.samples),
            "calls_per_sample": self.calls_per_sample,
        }


def time_callable(fn: Callable[[], object], budget: Budget, calls: int = 0) -> Timing:
    """Warm `fn` up, then time samples of `calls` calls each (0: calibrate from the warm-up)
    until `budget.min_time` seconds and `budget.min_samples` samples have been taken."""
    clock = time.perf_counter
    start = clock()
    n = 0
    while n < budget.warmup_calls or clock() - start < budget.warmup_time:
        fn()
        n += 1
    per_call = (clock() - start) / n
    if calls <= 0:
        calls = max(1, math.ceil(budget.sample_time / max(per_call, 1e-9)))
    samples: list[float] = []
    total = 0.0
    while len(samples) < budget.min_samples or total < budget.min_time:
        t0 = clock()
        for _ in range(calls):
            fn()
        elapsed = clock() - t0
        total += elapsed
        samples.append(elapsed / calls)
    return Timing(samples, calls)


# ----------------------------------------------------------------------------- threads
def cpu_set(threads: int) -> set[int]:
    """The CPUs a pass with `threads` threads is pinned to: the last `threads` allowed CPUs."""
    allowed = sorted(os.sched_getaffinity(0))
    return set(allowed[-threads:]) if threads < len(allowed) else set(allowed)


def _set_affinity_all_threads(cpus: set[int]) -> None:
    for tid in os.listdir("/proc/self/task"):
        with contextlib.suppress(OSError):
            os.sched_setaffinity(int(tid), cpus)


@contextlib.contextmanager
def pinned(threads: int, affinity: bool = True) -> Iterator[str]:
    """Limit this process to `threads` threads for the block: BLAS and OpenMP pools through
    threadpoolctl (if importable) and, with `affinity`, every thread of the process pinned to
    `threads` CPUs (threads created later inherit it). Yields a note on what was done."""
    notes = []
    saved = os.sched_getaffinity(0)
    limits = None
    try:
        from threadpoolctl import threadpool_limits

        limits = threadpool_limits(limits=threads)
        notes.append("threadpoolctl")
    except ImportError:
        notes.append("no threadpoolctl: NumPy's BLAS thread count not limited")
    if affinity and hasattr(os, "sched_setaffinity"):
        cpus = cpu_set(threads)
        _set_affinity_all_threads(cpus)
        notes.append(f"affinity CPUs {sorted(cpus)}")
    try:
        yield ", ".join(notes)
    finally:
        if limits is not None:
            limits.restore_original_limits()
        if affinity and hasattr(os, "sched_setaffinity"):
            _set_affinity_all_threads(saved)


# ----------------------------------------------------------------------------- sgemm peak
def sgemm_peak(threads: int, budget: Budget) -> dict[str, float]:
    """Best float32 matrix-product rate (GFLOP/s) of NumPy and, if importable, PyTorch, at
    `threads` threads (call inside `pinned(threads)`). Key "peak" is the larger of them."""
    n = budget.peak_size
    rng = np.random.default_rng(0)
    a = rng.standard_normal((n, n), dtype=np.float32)
    b = rng.standard_normal((n, n), dtype=np.float32)
    flops = 2.0 * n**3
    peak_budget = Budget(min_time=max(budget.min_time, 0.05), min_samples=3, rounds=1,
                         warmup_time=0.0, warmup_calls=1, sample_time=0.0)
    rates: dict[str, float] = {}
    out = np.empty_like(a)
    rates["numpy"] = flops / min(time_callable(lambda: np.matmul(a, b, out=out),
                                               peak_budget).samples) / 1e9
    try:
        import torch
    except ImportError:
        pass
    else:
        saved = torch.get_num_threads()
        torch.set_num_threads(threads)
        ta, tb = torch.from_numpy(a), torch.from_numpy(b)
        tout = torch.empty_like(ta)
        rates["torch"] = flops / min(time_callable(lambda: torch.mm(ta, tb, out=tout),
                                                   peak_budget).samples) / 1e9
        torch.set_num_threads(saved)
    rates["peak"] = max(rates.values())
    return rates


"""The correctness gate and the timing every case goes through: a peer's instance is built and
its output checked; only the ones that pass are timed, in interleaved rounds."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import asdict
from typing import Any

from . import report
from .machine import load_average
from .measure import Budget, Timing
from .peers import Instance


def check(row: report.Row, build: Callable[[], Instance], error: Callable[[Any], float],
          tolerance: float) -> Instance | None:
    """Build a peer's instance and check its output (`error(output) <= tolerance`), filling
    `row` (max_error, setup_s, note; status "error" or "wrong" on failure). Returns the
    instance when it passed; a failed one is closed and None returned: it is never timed."""
    instance = None
    start = time.perf_counter()
    try:
        instance = build()
        row.note = instance.note
        row.max_error = error(instance.output())
        row.setup_s = time.perf_counter() - start
    except Exception as e:
        row.status, row.note = "error", f"{type(e).__name__}: {e}".splitlines()[0][:200]
        if instance is not None:
            instance.close()
        return None
    if not row.max_error <= tolerance:
        row.status = "wrong"
        instance.close()
        return None
    return instance


def time_rounds(live: Sequence[tuple[report.Row, Instance]], threads: int,
                budget: Budget) -> None:
    """Time the checked instances: `budget.rounds` rounds, the peer order rotated each round,
    the samples of all rounds pooled into each ok row's `timing` (a peer raising is marked
    "error"). The instances stay open."""
    timings = {id(row): Timing([]) for row, _ in live}
    for k in range(budget.rounds):
        round_budget = budget.per_round()
        if k:  # warmed up in round 0
            round_budget = Budget(**{**asdict(round_budget), "warmup_calls": 1,
                                     "warmup_time": 0.0})
        order = list(live[k % len(live):]) + list(live[: k % len(live)]) if live else []
        for row, instance in order:
            if row.status != "ok":
                continue
            if threads > 1 and budget.settle > 0:
                time.sleep(budget.settle)
            try:
                timings[id(row)].extend(
                    instance.measure(round_budget, timings[id(row)].calls_per_sample
                                     if k else 0))
            except Exception as e:
                row.status, row.note = "error", f"{type(e).__name__}: {e}"[:200]
    for row, _ in live:
        if row.status == "ok":
            row.timing = timings[id(row)].to_dict()


def close_and_note_load(rows: Sequence[report.Row],
                        live: Sequence[tuple[report.Row, Instance]]) -> None:
    """Close the instances and note the 1-minute load in every row of the case."""
    load = load_average().split()
    for _, instance in live:
        instance.close()
    for row in rows:
        row.load = float(load[0]) if load else None

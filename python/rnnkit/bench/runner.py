"""The benchmark loop: for each thread count (process pinned), each scenario and cell, check
every peer against the float64 reference, then time the correct ones in interleaved rounds."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, TextIO

import numpy as np

from . import report
from .keras_jax import KerasJaxPeer
from .machine import load_average, machine_info
from .measure import FULL, Budget, Timing, pinned, sgemm_peak
from .peers import (
    Instance,
    NumpyPeer,
    OnnxRuntimePeer,
    OpenVinoPeer,
    Peer,
    RnnkitPeer,
    RnnkitUnrollPeer,
    TorchPeer,
)
from .reference import TOLERANCE, max_error, reference_output
from .scenarios import CELLS, SCENARIOS, Case, Scenario, make_case


def all_peers() -> list[Peer]:
    """Every peer the harness knows, rnnkit first."""
    return [RnnkitPeer(), RnnkitUnrollPeer(), NumpyPeer(), TorchPeer(), OnnxRuntimePeer(),
            OpenVinoPeer(), KerasJaxPeer()]


PEER_NAMES: tuple[str, ...] = ("rnnkit", "rnnkit-unroll", "numpy", "torch", "onnxruntime",
                               "openvino", "keras-jax")


@dataclass
class Config:
    """What to run."""

    scenarios: Sequence[Scenario] = SCENARIOS
    cells: Sequence[str] = CELLS
    peers: Sequence[str] | None = None  # None: every known peer
    threads: Sequence[int] = (1, 2)
    budget: Budget = FULL
    affinity: bool = True
    seed: int = 0
    extra: dict[str, Any] = field(default_factory=dict)  # copied into the JSON meta


@dataclass
class Result:
    """Everything a run produced."""

    rows: list[report.Row]
    meta: dict[str, Any]


def load_peers(peers: Sequence[Peer], out: TextIO) -> tuple[list[Peer], dict[str, str]]:
    """Import each peer; returns the usable ones and {name: reason} for the skipped ones."""
    usable, skipped = [], {}
    for peer in peers:
        try:
            peer.load()
        except Exception as e:
            skipped[peer.name] = f"{type(e).__name__}: {e}".strip()
            continue
        usable.append(peer)
    for peer in usable:
        out.write(f"peer {peer.name:<12} {peer.version}\n")
    for name, reason in skipped.items():
        out.write(f"peer {name:<12} SKIPPED: {reason}\n")
    out.flush()
    return usable, skipped


def _check(peer: Peer, case: Case, threads: int,
           reference: np.ndarray) -> tuple[report.Row, Instance | None]:
    row = report.Row(case.scenario.name, case.cell, threads, peer.name, "ok")
    reason = peer.thread_note(threads)
    if reason:
        row.status, row.note = "skipped", reason
        return row, None
    instance = None
    start = time.perf_counter()
    try:
        instance = peer.build(case, threads)
        row.note = instance.note
        row.max_error = max_error(instance.output(), reference)
        row.setup_s = time.perf_counter() - start
    except Exception as e:
        row.status, row.note = "error", f"{type(e).__name__}: {e}".splitlines()[0][:200]
        if instance is not None:
            instance.close()
        return row, None
    if not row.max_error <= TOLERANCE:
        row.status = "wrong"
        instance.close()
        return row, None
    return row, instance


def run_case(peers: Sequence[Peer], scenario: Scenario, cell: str, threads: int,
             budget: Budget, seed: int) -> list[report.Row]:
    """Check every peer on one case, then time the correct ones: `budget.rounds` rounds, the
    peer order rotated each round, the samples of all rounds pooled."""
    case = make_case(scenario, cell, seed)
    reference = reference_output(cell, case.weights, case.x)
    rows, live = [], []
    for peer in peers:
        row, instance = _check(peer, case, threads, reference)
        rows.append(row)
        if instance is not None:
            live.append((row, instance))
    timings = {id(row): Timing([]) for row, _ in live}
    for k in range(budget.rounds):
        round_budget = budget.per_round()
        if k:  # warmed up in round 0
            round_budget = Budget(**{**asdict(round_budget), "warmup_calls": 1,
                                     "warmup_time": 0.0})
        order = live[k % len(live):] + live[: k % len(live)] if live else []
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
    load = load_average().split()
    for row, instance in live:
        instance.close()
        if row.status == "ok":
            row.timing = timings[id(row)].to_dict()
    for row in rows:
        row.load = float(load[0]) if load else None
    return rows


def machine_busy() -> str:
    """A warning when the 1-minute load says other processes compete for the CPUs ("" if not).

    This process itself counts for about 1: a load at or above the CPU count means at least
    one other runnable process on average.
    """
    load = load_average().split()
    cpus = os.cpu_count()
    if not load or not cpus or float(load[0]) < cpus:
        return ""
    return (f"load {load[0]} on {cpus} CPUs: other processes compete for the cores; "
            "multi-thread numbers (OpenMP peers above all) are unreliable")


def run_pass(usable: Sequence[Peer], config: Config, threads: int,
             out: TextIO) -> tuple[list[report.Row], dict[str, Any]]:
    """All cases at one thread count, the process pinned; prints rows as cases finish."""
    with pinned(threads, config.affinity) as how:
        peak = sgemm_peak(threads, config.budget)
        for peer in usable:
            peer.enter(threads)
        out.write(f"\n{threads} thread(s) ({how}); sgemm peak "
                  + ", ".join(f"{k} {v:.0f}" for k, v in peak.items())
                  + f" GFLOP/s; load {load_average()}\n\n")
        busy = machine_busy()
        if busy:
            out.write(f"WARNING: {busy}\n\n")
        report.print_header(out)
        cases = []
        for scenario in config.scenarios:
            for cell in config.cells:
                case_rows = run_case(usable, scenario, cell, threads, config.budget, config.seed)
                report.fill_ratios(case_rows, scenario.flops(cell), peak["peak"])
                report.print_rows(case_rows, out)
                cases.append((case_rows, scenario.flops(cell)))
        # Other processes' load only ever lowers the measured peak: keep the best of the
        # measurements at the start and at the end of the pass.
        peak_end = sgemm_peak(threads, config.budget)
        peak = {k: max(peak.get(k, 0.0), v) for k, v in peak_end.items()}
        for case_rows, flops in cases:
            report.fill_ratios(case_rows, flops, peak["peak"])
    info = {"threads": threads, "pinning": how, "sgemm_gflops": peak,
            "load_end": load_average(), "busy_warning": busy or machine_busy()}
    return [r for case_rows, _ in cases for r in case_rows], info


def run(config: Config, peers: Sequence[Peer] | None = None,
        out: TextIO = sys.stdout) -> Result:
    """Run the benchmark, printing the table as it goes, then the final table (% peak from
    each pass's best sgemm peak) and the rnnkit summary; returns the rows and the metadata."""
    started = time.strftime("%Y-%m-%d %H:%M:%S")
    machine = machine_info()
    out.write(f"rnnkit.bench: {machine['cpu']}, {machine['cpus']} CPUs, L2 {machine['l2']}, "
              f"load {load_average()}\n")
    if peers is None:
        wanted = set(config.peers) if config.peers else None
        peers = [p for p in all_peers() if wanted is None or p.name in wanted]
    usable, skipped = load_peers(peers, out)
    meta: dict[str, Any] = {
        "started": started, "machine": machine, "load_start": load_average(),
        "peers": {p.name: p.version for p in usable}, "skipped_peers": skipped,
        "budget": asdict(config.budget), "affinity": config.affinity,
        "tolerance": TOLERANCE, "passes": [], **config.extra,
    }
    rows: list[report.Row] = []
    try:
        for threads in config.threads:
            pass_rows, info = run_pass(usable, config, threads, out)
            rows.extend(pass_rows)
            meta["passes"].append(info)
    finally:
        for peer in usable:
            peer.close()
    meta["load_end"] = load_average()
    meta["finished"] = time.strftime("%Y-%m-%d %H:%M:%S")
    peaks = ", ".join(f"{p['threads']} thr {p['sgemm_gflops']['peak']:.0f}"
                      for p in meta["passes"])
    out.write(f"\nResults ({started}; load {meta['load_start']} -> {meta['load_end']}; "
              f"sgemm peak GFLOP/s: {peaks}):\n\n")
    report.print_header(out)
    report.print_rows(rows, out)
    report.print_summary(report.summary(rows), out)
    return Result(rows, meta)

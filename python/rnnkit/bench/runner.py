"""The benchmark loop: for each thread count (process pinned), each scenario and cell, check
every peer against the float64 reference, then time the correct ones in interleaved rounds;
then the whole-model rows (model_runner.py), each peer checked against rnnkit's outputs."""

from __future__ import annotations

import os
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, TextIO

import numpy as np

from . import report
from .gate import check, close_and_note_load, time_rounds
from .keras_jax import KerasJaxPeer, KerasPeer
from .machine import load_average, machine_info
from .measure import FULL, Budget, pinned, sgemm_peak
from .model_cases import MODEL_TOLERANCE, ModelCase
from .model_runner import model_cases, prepare_models, run_models
from .model_zoo import MODEL_NAMES
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
            OpenVinoPeer(), KerasJaxPeer(), KerasPeer("numpy"), KerasPeer("torch")]


PEER_NAMES: tuple[str, ...] = ("rnnkit", "rnnkit-unroll", "numpy", "torch", "onnxruntime",
                               "openvino", "keras-jax", "keras-numpy", "keras-torch")
# The peers of a default run, and of a run of the user's model files only (`--model`).
DEFAULT_PEER_NAMES: tuple[str, ...] = PEER_NAMES[:7]
MODEL_FILE_PEER_NAMES: tuple[str, ...] = ("rnnkit", "keras-jax", "keras-numpy", "keras-torch")


@dataclass
class Config:
    """What to run."""

    scenarios: Sequence[Scenario] = SCENARIOS
    cells: Sequence[str] = CELLS
    models: Sequence[str] = MODEL_NAMES  # whole-model rows (model_zoo.py)
    model_files: Sequence[str] = ()  # the user's .keras / .h5 files, as more model rows
    model_batches: Sequence[int] = (1, 32)
    model_steps: int = 100  # timesteps of the model rows (every None input dimension)
    peers: Sequence[str] | None = None  # None: DEFAULT_PEER_NAMES (MODEL_FILE_PEER_NAMES when
    #                                      model files are given), those that import
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
    instance = check(row, lambda: peer.build(case, threads),
                     lambda output: max_error(output, reference), TOLERANCE)
    return row, instance


def run_case(peers: Sequence[Peer], scenario: Scenario, cell: str, threads: int,
             budget: Budget, seed: int) -> list[report.Row]:
    """Check every peer on one case, then time the correct ones (`time_rounds`)."""
    case = make_case(scenario, cell, seed)
    reference = reference_output(cell, case.weights, case.x)
    rows, live = [], []
    for peer in peers:
        row, instance = _check(peer, case, threads, reference)
        rows.append(row)
        if instance is not None:
            live.append((row, instance))
    time_rounds(live, threads, budget)
    close_and_note_load(rows, live)
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


def run_pass(usable: Sequence[Peer], config: Config, threads: int, out: TextIO,
             models: Sequence[ModelCase] = ()) -> tuple[list[report.Row], dict[str, Any]]:
    """All cases at one thread count (the layer cases of `config`, then the model cases
    `models`), the process pinned; prints rows as cases finish."""
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
        layer_peers = [p for p in usable if p.builds_layers]
        if config.scenarios:
            report.print_header(out)
        cases = []
        for scenario in config.scenarios:
            for cell in config.cells:
                case_rows = run_case(layer_peers, scenario, cell, threads, config.budget,
                                     config.seed)
                report.fill_ratios(case_rows, scenario.flops(cell), peak["peak"])
                report.print_rows(case_rows, out)
                cases.append((case_rows, scenario.flops(cell)))
        # Other processes' load only ever lowers the measured peak: keep the best of the
        # measurements at the start and at the end of the pass.
        peak_end = sgemm_peak(threads, config.budget)
        peak = {k: max(peak.get(k, 0.0), v) for k, v in peak_end.items()}
        for case_rows, flops in cases:
            report.fill_ratios(case_rows, flops, peak["peak"])
        if config.scenarios and models:
            out.write("\n")
        model_rows = run_models(usable, models, threads, config.budget, out)
    info = {"threads": threads, "pinning": how, "sgemm_gflops": peak,
            "load_end": load_average(), "busy_warning": busy or machine_busy()}
    return [r for case_rows, _ in cases for r in case_rows] + model_rows, info


def run(config: Config, peers: Sequence[Peer] | None = None,
        out: TextIO | None = None) -> Result:
    """Run the benchmark, printing the table as it goes (to `out`, default the current
    sys.stdout), then the final table (% peak from each pass's best sgemm peak) and the rnnkit
    summary; returns the rows and the metadata."""
    out = out or sys.stdout
    started = time.strftime("%Y-%m-%d %H:%M:%S")
    machine = machine_info()
    out.write(f"rnnkit.bench: {machine['cpu']}, {machine['cpus']} CPUs, L2 {machine['l2']}, "
              f"load {load_average()}\n")
    if peers is None:
        default = MODEL_FILE_PEER_NAMES if config.model_files else DEFAULT_PEER_NAMES
        wanted = set(config.peers or default)
        peers = [p for p in all_peers() if p.name in wanted]
    usable, skipped = load_peers(peers, out)
    meta: dict[str, Any] = {
        "started": started, "machine": machine, "load_start": load_average(),
        "peers": {p.name: p.version for p in usable}, "skipped_peers": skipped,
        "budget": asdict(config.budget), "affinity": config.affinity,
        "tolerance": TOLERANCE, "model_tolerance": MODEL_TOLERANCE, "passes": [],
        **config.extra,
    }
    rows: list[report.Row] = []
    model_dir = tempfile.TemporaryDirectory(prefix="rnnkit-bench-")  # the zoo's .keras files
    try:
        runs_models = any(p.builds_models for p in usable)  # else no need to write or read
        specs, meta["skipped_models"] = prepare_models(
            config.models if runs_models else (), config.model_files if runs_models else (),
            model_dir.name, config.seed, out)
        meta["models"] = {s.name: [asdict(i) for i in s.inputs] for s in specs}
        meta["model_steps"] = config.model_steps
        cases = model_cases(specs, config.model_batches, config.model_steps, config.seed)
        for threads in config.threads:
            pass_rows, info = run_pass(usable, config, threads, out, cases)
            rows.extend(pass_rows)
            meta["passes"].append(info)
    finally:
        for peer in usable:
            peer.close()
        model_dir.cleanup()
    meta["load_end"] = load_average()
    meta["finished"] = time.strftime("%Y-%m-%d %H:%M:%S")
    peaks = ", ".join(f"{p['threads']} thr {p['sgemm_gflops']['peak']:.0f}"
                      for p in meta["passes"])
    out.write(f"\nResults ({started}; load {meta['load_start']} -> {meta['load_end']}; "
              f"sgemm peak GFLOP/s: {peaks}):\n\n")
    layer_rows = [r for r in rows if r.cell != report.MODEL_CELL]
    model_rows = [r for r in rows if r.cell == report.MODEL_CELL]
    if layer_rows:
        report.print_header(out)
        report.print_rows(layer_rows, out)
    if model_rows:
        out.write("\n" if layer_rows else "")
        report.print_model_header(out)
        report.print_model_rows(model_rows, out)
    report.print_summary(report.summary(rows), out)
    return Result(rows, meta)

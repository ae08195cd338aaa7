"""Whole-model rows: rnnkit's model (`rnnkit.load_keras(file)`) beside Keras's own (keras_jax.py)
on the same random inputs. rnnkit's outputs are the reference: every other peer is checked
against them (bench/model_cases.py) before it is timed. For rnnkit the row also records where
a call's time goes (`model.profile()`): per layer, and the share spent outside the recurrent
layers."""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from typing import Any, TextIO

import numpy as np

from ..models.sequential import is_recurrent
from . import report
from .gate import check, close_and_note_load, time_rounds
from .measure import Budget
from .model_cases import (
    MODEL_TOLERANCE,
    ModelCase,
    ModelSpec,
    make_model_case,
    model_spec,
    relative_error,
)
from .model_zoo import PADDED, write_models
from .peers import Instance, Peer

REFERENCE = "rnnkit"  # the peer whose outputs the others are checked against


def prepare_models(names: Sequence[str], files: Sequence[str], directory: str, seed: int,
                   out: TextIO) -> tuple[list[ModelSpec], dict[str, str]]:
    """The model rows to run: the zoo models `names` (written by Keras into `directory`) and
    the user's `files`, each loaded once with rnnkit to read its inputs. Returns the specs and
    {name: reason} for the models that cannot run; prints one line per model."""
    specs: list[ModelSpec] = []
    skipped: dict[str, str] = {}
    paths: dict[str, str] = {}
    if names:
        try:
            paths = write_models(directory, tuple(names), seed)
        except Exception as e:
            skipped.update({n: f"Keras could not write the model: {e}" for n in names})
    sources = [(n, paths[n], n in PADDED) for n in names if n in paths]
    sources += [(label, f, False) for label, f in zip(_file_labels(files), files)]
    for name, path, padding in sources:
        try:
            specs.append(model_spec(name, path, padding))
        except Exception as e:
            skipped[name] = f"rnnkit.load_keras: {type(e).__name__}: {e}".splitlines()[0][:300]
    for spec in specs:
        inputs = "; ".join(_describe_input(s) for s in spec.inputs)
        out.write(f"model {spec.name:<12} {spec.path}: {inputs}\n")
    for name, reason in skipped.items():
        out.write(f"model {name:<12} SKIPPED: {reason}\n")
    out.flush()
    return specs, skipped


def _file_labels(files: Sequence[str]) -> list[str]:
    """Row labels of the model files: the file name without its suffix, or with it when two
    files share a stem (model.keras, model.h5), numbered when even that repeats."""
    bases = [os.path.basename(f) for f in files]
    stems = [os.path.splitext(b)[0] for b in bases]
    labels = [s if stems.count(s) == 1 else b for s, b in zip(stems, bases)]
    return [label if labels.count(label) == 1 else f"{label}-{k + 1}"
            for k, label in enumerate(labels)]


def _describe_input(spec: Any) -> str:
    shape = "(" + ", ".join("B" if k == 0 else "T" if d is None else str(d)
                            for k, d in enumerate(spec.shape)) + ")"
    if not spec.ids:
        return f"{spec.name} {shape} {spec.dtype} N(0, 1)"
    values = f"[1, {spec.vocab})" if spec.vocab is not None else "[0, 100)"
    return f"{spec.name} {shape} {spec.dtype} ids in {values}"


def model_cases(specs: Sequence[ModelSpec], batches: Sequence[int], steps: int,
                seed: int) -> list[ModelCase]:
    """Every model at every batch size (its own when the file fixes it)."""
    return [make_model_case(spec, batch, steps, seed)
            for spec in specs for batch in spec.batches(batches)]


def layer_profile(model: Any, args: Any, budget: Budget) -> dict[str, Any]:
    """Per-layer times of rnnkit `model` on `args` (at least 3 profiled calls, for the time
    of one timing round): medians per call, and the median share of a call spent outside
    the recurrent layers (RNN, Bidirectional; a nested model counts as one non-recurrent
    layer): 1 - recurrent layers' time / the call's time."""
    recurrent = {layer.name for layer in model.layers if is_recurrent(layer)}
    calls: list[tuple[float, dict[str, float]]] = []
    start = time.perf_counter()
    while len(calls) < 3 or time.perf_counter() - start < budget.min_time / budget.rounds:
        with model.profile() as times:
            t0 = time.perf_counter()
            model(args)
            total = time.perf_counter() - t0
        calls.append((total, dict(times)))
    names = list(calls[0][1])
    shares = [1.0 - sum(t for n, t in times.items() if n in recurrent) / total
              for total, times in calls]
    return {
        "calls": len(calls),
        "total_s": float(np.median([total for total, _ in calls])),
        "layers_s": {n: float(np.median([times.get(n, 0.0) for _, times in calls]))
                     for n in names},
        "recurrent_layers": sorted(recurrent),
        "outside_recurrent_share": float(np.median(shares)),
    }


def run_model_case(peers: Sequence[Peer], case: ModelCase, threads: int,
                   budget: Budget) -> list[report.Row]:
    """rnnkit first (its outputs are the reference), then every other model peer checked
    against it; the correct ones timed in interleaved rounds; rnnkit's layers profiled."""
    ordered = sorted(peers, key=lambda p: p.name != REFERENCE)
    reference: list[np.ndarray] = []

    def keep_reference(output: list[np.ndarray]) -> float:
        reference[:] = output
        return 0.0 if all(np.all(np.isfinite(o)) for o in output) else float("inf")

    rows, live = [], []
    for peer in ordered:
        row = report.Row(case.label, report.MODEL_CELL, threads, peer.name, "ok")
        rows.append(row)
        reason = peer.thread_note(threads)
        if peer.name != REFERENCE and not reference:
            reason = "no rnnkit output to check against (the rnnkit peer failed or is not run)"
        if reason:
            row.status, row.note = "skipped", reason
            continue
        instance: Instance | None
        if peer.name == REFERENCE:
            instance = check(row, lambda p=peer: p.build_model(case, threads), keep_reference,
                             0.0)
        else:
            instance = check(row, lambda p=peer: p.build_model(case, threads),
                             lambda output: relative_error(output, reference), MODEL_TOLERANCE)
        if instance is not None:
            live.append((row, instance))
    time_rounds(live, threads, budget)
    for row, instance in live:
        if row.peer == REFERENCE and row.status == "ok":
            try:
                row.profile = layer_profile(instance.run, case.args, budget)
            except Exception as e:  # the timing stands; say why the profile is missing
                row.note = f"profile failed: {type(e).__name__}: {e}"[:200]
    close_and_note_load(rows, live)
    report.fill_ratios(rows, None, 0.0)
    return rows


def run_models(peers: Sequence[Peer], cases: Sequence[ModelCase], threads: int, budget: Budget,
               out: TextIO) -> list[report.Row]:
    """Every model case with the peers that build models; prints the rows as cases finish."""
    model_peers = [p for p in peers if p.builds_models]
    rows: list[report.Row] = []
    if not cases:
        return rows
    report.print_model_header(out)
    for case in cases:
        case_rows = run_model_case(model_peers, case, threads, budget)
        report.print_model_rows(case_rows, out)
        rows.extend(case_rows)
    return rows

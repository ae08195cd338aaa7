"""Command line: `python -m rnnkit.bench [--scenarios ...] [--cells ...] [--peers ...]`, or
`python -m rnnkit.bench --model FILE [--batch N] [--steps T]` for the user's own model."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from . import report
from .measure import FULL, QUICK
from .model_zoo import MODEL_NAMES
from .runner import MODEL_FILE_PEER_NAMES, PEER_NAMES, Config, run
from .scenarios import CELLS, SCENARIO_NAMES, SCENARIOS, select


def _names(text: str | None) -> list[str] | None:
    return [t.strip() for t in text.split(",") if t.strip()] if text else None


def _positive(text: str | None, option: str) -> list[int] | None:
    """Comma-separated positive integers (None when the option is not given)."""
    if text is None:
        return None
    values = [int(t) for t in _names(text) or []]
    if not values or min(values) < 1:
        raise ValueError(f"{option} needs positive integers")
    return values


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Parse the command line."""
    p = argparse.ArgumentParser(
        prog="python -m rnnkit.bench",
        description="rnnkit against its peers on the scenarios of bench/README.md (every output "
                    "checked against a float64 NumPy reference before it is timed), and whole "
                    "Keras models loaded with rnnkit.load_keras beside Keras itself (checked "
                    "against rnnkit's outputs).")
    p.add_argument("--scenarios", help="comma-separated, default all: "
                                       f"{','.join(SCENARIO_NAMES + MODEL_NAMES)}")
    p.add_argument("--cells", help=f"comma-separated, default all: {','.join(CELLS)}")
    p.add_argument("--peers", help=f"comma-separated, default all importable of "
                                   f"{','.join(PEER_NAMES[:7])} (with --model: "
                                   f"{','.join(MODEL_FILE_PEER_NAMES)})")
    p.add_argument("--threads", default="1,2", help="comma-separated thread counts (default 1,2)")
    p.add_argument("--model", metavar="FILE", action="append",
                   help="benchmark this .keras / .h5 model (repeatable) instead of the scenarios "
                        "and the built-in model rows")
    p.add_argument("--batch", metavar="N", help="comma-separated batch sizes of the model rows "
                                                "(default 1,32)")
    p.add_argument("--steps", metavar="T", type=int, default=100,
                   help="timesteps of the model rows: every None input dimension after the "
                        "batch (default 100)")
    p.add_argument("--quick", action="store_true", help="tiny time budget (CI smoke runs)")
    p.add_argument("--json", metavar="PATH", help="write the results as JSON")
    p.add_argument("--plot", metavar="PATH", help="write a PNG of the ratios (needs matplotlib)")
    p.add_argument("--no-affinity", action="store_true",
                   help="do not pin the process to as many CPUs as threads")
    p.add_argument("--seed", type=int, default=0, help="weights and inputs seed")
    return p.parse_args(argv)


def config_from_args(args: argparse.Namespace, argv: Sequence[str] | None = None) -> Config:
    """The run the options ask for; ValueError on a bad option."""
    files = list(args.model or [])
    if files and (args.scenarios or args.cells):
        raise ValueError("--model runs the model files only: --scenarios and --cells do not "
                         "apply")
    missing = [f for f in files if not os.path.isfile(f)]
    if missing:
        raise ValueError(f"no such model file: {', '.join(missing)}")
    wanted = select(_names(args.scenarios), SCENARIO_NAMES + MODEL_NAMES, "scenario")
    peers = select(_names(args.peers), MODEL_FILE_PEER_NAMES if files else PEER_NAMES,
                   "peer") if args.peers else None  # None: the run's default peers
    threads = _positive(args.threads, "--threads") or []
    batches = _positive(args.batch, "--batch") or [1, 32]
    if args.steps < 1:
        raise ValueError("--steps needs a positive integer")
    return Config(
        scenarios=[] if files else [s for s in SCENARIOS if s.name in wanted],
        cells=select(_names(args.cells), CELLS, "cell"),
        models=[] if files else [m for m in MODEL_NAMES if m in wanted],
        model_files=files, model_batches=batches, model_steps=args.steps,
        peers=peers, threads=threads, budget=QUICK if args.quick else FULL,
        affinity=not args.no_affinity, seed=args.seed,
        extra={"argv": list(sys.argv[1:] if argv is None else argv)},
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark; returns the exit code (2 on a bad option, 1 when no --model file
    could be run)."""
    args = parse_args(argv)
    try:
        config = config_from_args(args, argv)
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    result = run(config)
    if config.model_files and not result.meta["models"]:
        print("error: no model file could be run (see SKIPPED above)", file=sys.stderr)
        return 1
    if args.json:
        report.write_json(args.json, result.meta, result.rows)
        print(f"\nJSON written to {args.json}")
    if args.plot:
        note = report.plot(args.plot, result.rows)
        print(f"\nplot written to {args.plot}" if not note else f"\n{note}")
    return 0

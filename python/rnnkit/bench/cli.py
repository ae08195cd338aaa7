"""Command line: `python -m rnnkit.bench [--scenarios ...] [--cells ...] [--peers ...]`."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from . import report
from .measure import FULL, QUICK
from .runner import PEER_NAMES, Config, run
from .scenarios import CELLS, SCENARIO_NAMES, SCENARIOS, select


def _names(text: str | None) -> list[str] | None:
    return [t.strip() for t in text.split(",") if t.strip()] if text else None


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Parse the command line."""
    p = argparse.ArgumentParser(
        prog="python -m rnnkit.bench",
        description="rnnkit against its peers on the scenarios of bench/README.md (every output "
                    "checked against a float64 NumPy reference before it is timed).")
    p.add_argument("--scenarios", help=f"comma-separated, default all: {','.join(SCENARIO_NAMES)}")
    p.add_argument("--cells", help=f"comma-separated, default all: {','.join(CELLS)}")
    p.add_argument("--peers", help=f"comma-separated, default all importable: "
                                   f"{','.join(PEER_NAMES)}")
    p.add_argument("--threads", default="1,2", help="comma-separated thread counts (default 1,2)")
    p.add_argument("--quick", action="store_true", help="tiny time budget (CI smoke runs)")
    p.add_argument("--json", metavar="PATH", help="write the results as JSON")
    p.add_argument("--plot", metavar="PATH", help="write a PNG of the ratios (needs matplotlib)")
    p.add_argument("--no-affinity", action="store_true",
                   help="do not pin the process to as many CPUs as threads")
    p.add_argument("--seed", type=int, default=0, help="weights and inputs seed")
    return p.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark; returns the exit code (2 on a bad option)."""
    args = parse_args(argv)
    try:
        scenarios = select(_names(args.scenarios), SCENARIO_NAMES, "scenario")
        cells = select(_names(args.cells), CELLS, "cell")
        peers = select(_names(args.peers), PEER_NAMES, "peer")
        threads = [int(t) for t in _names(args.threads) or []]
        if not threads or min(threads) < 1:
            raise ValueError("--threads needs positive integers")
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    config = Config(
        scenarios=[s for s in SCENARIOS if s.name in scenarios], cells=cells, peers=peers,
        threads=threads, budget=QUICK if args.quick else FULL, affinity=not args.no_affinity,
        seed=args.seed, extra={"argv": list(sys.argv[1:] if argv is None else argv)},
    )
    result = run(config)
    if args.json:
        report.write_json(args.json, result.meta, result.rows)
        print(f"\nJSON written to {args.json}")
    if args.plot:
        note = report.plot(args.plot, result.rows)
        print(f"\n{note}" if note else f"\nplot written to {args.plot}")
    return 0

"""Rows of results: the table printed while running, the summary, the JSON file and the plot."""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from typing import Any, TextIO

COLUMNS = ("scenario", "cell", "thr", "peer", "median", "spread", "vs fastest", "GFLOP/s",
           "% peak", "load")
# Whole-model rows (bench/model_runner.py): `cell` is MODEL_CELL, `scenario` the model and
# shape (`name-b<batch>-t<steps>`); "check" is the relative error against rnnkit's outputs,
# "outside RNN" rnnkit's share of a call spent outside its recurrent layers.
MODEL_CELL = "model"
MODEL_COLUMNS = ("model", "thr", "peer", "median", "spread", "vs fastest", "check",
                 "outside RNN", "load")


@dataclass
class Row:
    """One peer on one case at one thread count."""

    scenario: str
    cell: str
    threads: int
    peer: str
    status: str  # "ok" (timed), "wrong" (failed the check, not timed), "error", "skipped"
    max_error: float | None = None
    timing: dict[str, float | int] = field(default_factory=dict)  # see measure.Timing.to_dict
    ratio: float | None = None  # median / fastest correct peer's median (1.0 = fastest)
    gflops: float | None = None
    pct_peak: float | None = None
    note: str = ""
    load: float | None = None  # 1-minute load average when the case finished
    setup_s: float | None = None  # seconds to build the peer and run the check
    profile: dict[str, Any] = field(default_factory=dict)  # model rows, rnnkit: layer times

    @property
    def median(self) -> float | None:
        """Median seconds per call (None when not timed)."""
        value = self.timing.get("median_s")
        return None if value is None else float(value)


def fill_ratios(rows: list[Row], flops: float | None, peak_gflops: float) -> None:
    """Set ratio to the fastest timed row, GFLOP/s and % of the sgemm peak (not when `flops`
    is None: whole models), in place."""
    timed = [r for r in rows if r.status == "ok" and r.median]
    if not timed:
        return
    fastest = min(r.median for r in timed if r.median)
    for r in timed:
        assert r.median is not None
        r.ratio = r.median / fastest
        if flops is None:
            continue
        r.gflops = flops / r.median / 1e9
        r.pct_peak = 100.0 * r.gflops / peak_gflops if peak_gflops else None


def format_seconds(seconds: float) -> str:
    """Seconds as µs / ms / s with 3 significant digits."""
    if seconds < 1e-3:
        return f"{seconds * 1e6:.3g} µs"
    if seconds < 1.0:
        return f"{seconds * 1e3:.3g} ms"
    return f"{seconds:.3g} s"


def _untimed(row: Row) -> str:
    """What an untimed row says instead of its time."""
    if row.status == "wrong":
        return f"WRONG, not timed (max error {row.max_error:.2g})"
    return f"{row.status.upper() if row.status == 'error' else row.status}: {row.note}"


def _timed(row: Row) -> list[str]:
    """median, spread and vs fastest of a timed row."""
    assert row.median is not None
    q1, q3 = float(row.timing["q1_s"]), float(row.timing["q3_s"])
    ratio = "**1.00**" if row.ratio is not None and row.ratio <= 1.0 + 1e-12 else \
        f"{row.ratio:.2f}x"
    return [format_seconds(row.median), f"±{50 * (q3 - q1) / row.median:.1f}%", ratio]


def _load(row: Row) -> str:
    return "" if row.load is None else f"{row.load:.1f}"


def cells(row: Row) -> list[str]:
    """The printed cells of a row (see COLUMNS)."""
    head = [row.scenario, row.cell, str(row.threads), row.peer]
    if row.status != "ok" or row.median is None:
        return [*head, _untimed(row), "", "", "", "", ""]
    pct = "" if row.pct_peak is None else f"{row.pct_peak:.1f}"
    gflops = "" if row.gflops is None else f"{row.gflops:.3g}"
    return [*head, *_timed(row), gflops, pct, _load(row)]


def model_cells(row: Row) -> list[str]:
    """The printed cells of a whole-model row (see MODEL_COLUMNS)."""
    head = [row.scenario, str(row.threads), row.peer]
    if row.status != "ok" or row.median is None:
        return [*head, _untimed(row), "", "", "", "", ""]
    checked = "reference" if row.peer == "rnnkit" else f"{row.max_error:.1e}"
    share = row.profile.get("outside_recurrent_share")
    outside = "" if share is None else f"{100 * share:.1f}%"
    return [*head, *_timed(row), checked, outside, _load(row)]


def print_header(out: TextIO) -> None:
    """The table header (Markdown)."""
    out.write("| " + " | ".join(COLUMNS) + " |\n")
    out.write("|" + "|".join(["---"] * 4 + ["---:"] * 6) + "|\n")
    out.flush()


def print_rows(rows: list[Row], out: TextIO) -> None:
    """Rows as Markdown table lines, flushed (progress while running)."""
    for row in rows:
        out.write("| " + " | ".join(cells(row)) + " |\n")
    out.flush()


def print_model_header(out: TextIO) -> None:
    """The header of the whole-model table (Markdown)."""
    out.write("| " + " | ".join(MODEL_COLUMNS) + " |\n")
    out.write("|" + "|".join(["---"] * 3 + ["---:"] * 6) + "|\n")
    out.flush()


def print_model_rows(rows: list[Row], out: TextIO) -> None:
    """Whole-model rows as Markdown table lines, flushed."""
    for row in rows:
        out.write("| " + " | ".join(model_cells(row)) + " |\n")
    out.flush()


def _same_library(peer: str, subject: str) -> bool:
    """rnnkit's own variants (rnnkit-unroll) are not its competitors."""
    return peer == subject or peer.startswith(subject + "-")


def summary(rows: list[Row], subject: str = "rnnkit") -> list[dict[str, Any]]:
    """Per case and thread count: `subject` against the fastest other correct peer
    (speedup > 1: subject is faster), and against its own `-unroll` variant when timed
    (`unroll_ratio`: subject's time over the variant's)."""
    groups: dict[tuple[str, str, int], list[Row]] = {}
    for r in rows:
        groups.setdefault((r.scenario, r.cell, r.threads), []).append(r)
    result = []
    for (scenario, cell, threads), group in groups.items():
        mine = [r for r in group if r.peer == subject]
        others = [r for r in group
                  if not _same_library(r.peer, subject) and r.status == "ok" and r.median]
        unrolled = [r for r in group
                    if r.peer == subject + "-unroll" and r.status == "ok" and r.median]
        if not mine or not others:
            continue
        best = min(others, key=lambda r: r.median or math.inf)
        entry: dict[str, Any] = {"scenario": scenario, "cell": cell, "threads": threads,
                                 "status": mine[0].status, "best_other": best.peer}
        if mine[0].status == "ok" and mine[0].median and best.median:
            entry["speedup"] = best.median / mine[0].median
            if unrolled:
                entry["unroll_ratio"] = mine[0].median / (unrolled[0].median or math.inf)
        result.append(entry)
    return result


def print_summary(entries: list[dict[str, Any]], out: TextIO, subject: str = "rnnkit") -> None:
    """One line per case: subject's speedup over the fastest other peer."""
    out.write(f"\n{subject} against the fastest other peer (speedup > 1: {subject} faster):\n")
    width = max([14] + [len(e["scenario"]) for e in entries])
    for e in entries:
        where = f"  {e['scenario']:<{width}} {e['cell']:<9} {e['threads']} thr"
        if "speedup" in e:
            verdict = "faster" if e["speedup"] > 1 else "SLOWER"
            line = f"{where}  {e['speedup']:6.2f}x vs {e['best_other']:<12} {verdict:<7}"
            if "unroll_ratio" in e:  # the target: unroll=False within 10 % of unroll=True
                over = "  (over 1.10)" if e["unroll_ratio"] > 1.10 else ""
                line += f"  time / unroll=True {e['unroll_ratio']:.2f}{over}"
            out.write(line + "\n")
        else:
            out.write(f"{where}  {subject} {e['status']}\n")
    out.flush()


def write_json(path: str, meta: dict[str, Any], rows: list[Row]) -> None:
    """Write `{"meta": ..., "results": [rows], "summary": [...]}`."""
    doc = {"meta": meta, "results": [asdict(r) for r in rows], "summary": summary(rows)}
    with open(path, "w") as f:
        json.dump(doc, f, indent=1, default=str)
        f.write("\n")


def plot(path: str, rows: list[Row]) -> str:
    """Bar chart of each peer's time relative to the fastest peer (log scale), one panel per
    thread count. Returns a note ("" on success)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as e:
        return f"plot skipped: matplotlib not importable ({e})"
    timed = [r for r in rows if r.status == "ok" and r.ratio]
    if not timed:
        return "plot skipped: nothing was timed"
    threads = sorted({r.threads for r in timed})
    peers = list(dict.fromkeys(r.peer for r in timed))
    fig, axes = plt.subplots(len(threads), 1, figsize=(16, 4.5 * len(threads)), squeeze=False)
    width = 0.8 / len(peers)
    for ax, n in zip(axes[:, 0], threads):
        groups = list(dict.fromkeys((r.scenario, r.cell) for r in timed if r.threads == n))
        for k, peer in enumerate(peers):
            xs, ys = [], []
            for g, (scenario, cell) in enumerate(groups):
                for r in timed:
                    if (r.scenario, r.cell, r.threads, r.peer) == (scenario, cell, n, peer):
                        xs.append(g + (k - (len(peers) - 1) / 2) * width)
                        ys.append(r.ratio)
            ax.bar(xs, ys, width, label=peer)
        ax.set_yscale("log")
        ax.axhline(1.0, color="black", linewidth=0.8)
        ax.set_xticks(range(len(groups)))
        ax.set_xticklabels([f"{s}\n{c}" for s, c in groups], fontsize=7)
        ax.set_ylabel("time / fastest peer (log)")
        ax.set_title(f"{n} thread{'s' if n > 1 else ''}: lower is better, 1 = fastest")
        ax.legend(fontsize=8, ncol=len(peers))
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return ""

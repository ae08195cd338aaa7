"""Smoke test of the benchmark harness (rnnkit.bench) on tiny scenarios: the correctness gate
stops a wrong peer before it is timed, the table and the JSON have what they promise."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest

import rnnkit
from rnnkit import testing
from rnnkit.bench import report
from rnnkit.bench.cli import main
from rnnkit.bench.measure import QUICK, Budget, Timing
from rnnkit.bench.peers import Instance, NumpyPeer, Peer, RnnkitPeer, TorchPeer
from rnnkit.bench.reference import TOLERANCE, reference_output
from rnnkit.bench.runner import Config, run
from rnnkit.bench.scenarios import CELLS, Case, Scenario, make_case

TINY = Scenario("tiny", batch=2, steps=5, input_dim=3, units=4)
TINY_STREAM = Scenario("tiny-stream", batch=1, steps=1, input_dim=3, units=4, stream=True)


class WrongPeer(NumpyPeer):
    """The NumPy loop with its output off by 1e-2: must be reported wrong and never timed."""

    name = "wrong"
    timed = False

    def build(self, case: Case, threads: int) -> Instance:
        inner = super().build(case, threads)
        peer = self

        class Off(Instance):
            def measure(self, budget: Budget, calls: int = 0) -> Timing:
                peer.timed = True
                return super().measure(budget, calls)

        return Off(case, lambda x: np.asarray(inner.run(x)) + 1e-2, inner.reset)


@pytest.mark.parametrize("cell", CELLS)
def test_reference_matches_rnnkit_numpy_loop(cell: str) -> None:
    case = make_case(TINY, cell)
    kwargs = {"reset_after": True} if cell == "GRU" else {}
    layer = getattr(rnnkit, cell)(4, return_sequences=True, dtype="float64", **kwargs)
    layer.build(case.x.shape)
    layer.set_weights([w.astype(np.float64) for w in case.weights])
    with testing.python_loop():
        expected = layer(case.x.astype(np.float64))
    np.testing.assert_allclose(reference_output(cell, case.weights, case.x), expected,
                               rtol=1e-12, atol=1e-12)


def test_harness_gate_table_and_json(tmp_path) -> None:
    wrong = WrongPeer()
    peers: list[Peer] = [RnnkitPeer(), NumpyPeer(), TorchPeer(), wrong]
    config = Config(scenarios=[TINY, TINY_STREAM], cells=CELLS, threads=(1,), budget=QUICK,
                    affinity=False)
    out = io.StringIO()
    result = run(config, peers=peers, out=out)
    text = out.getvalue()

    assert not wrong.timed
    wrong_rows = [r for r in result.rows if r.peer == "wrong"]
    assert len(wrong_rows) == 6 and all(r.status == "wrong" for r in wrong_rows)
    assert all(r.timing == {} and r.ratio is None and r.max_error > TOLERANCE
               for r in wrong_rows)
    assert "| tiny | LSTM | 1 | wrong | WRONG, not timed" in text

    expected_peers = {"rnnkit", "numpy"} | ({"torch"} if "torch" in result.meta["peers"]
                                            else set())
    for peer in expected_peers:
        rows = [r for r in result.rows if r.peer == peer]
        assert len(rows) == 6, peer
        for r in rows:
            assert r.status == "ok", (r.peer, r.scenario, r.cell, r.note)
            assert r.max_error is not None and r.max_error <= TOLERANCE
            assert r.timing["median_s"] > 0 and r.ratio >= 1.0 and r.gflops > 0
    if "torch" not in result.meta["peers"]:
        assert "torch" in result.meta["skipped_peers"]
    for scenario in ("tiny", "tiny-stream"):
        for cell in CELLS:
            ratios = [r.ratio for r in result.rows
                      if (r.scenario, r.cell) == (scenario, cell) and r.ratio]
            assert min(ratios) == pytest.approx(1.0)

    path = tmp_path / "results.json"
    report.write_json(str(path), result.meta, result.rows)
    doc = json.loads(path.read_text())
    assert {"meta", "results", "summary"} <= set(doc)
    meta = doc["meta"]
    assert meta["machine"]["cpu"] and "load_start" in meta and "load_end" in meta
    assert meta["passes"][0]["threads"] == 1 and meta["passes"][0]["sgemm_gflops"]["peak"] > 0
    row = next(r for r in doc["results"] if r["peer"] == "rnnkit")
    assert {"scenario", "cell", "threads", "peer", "status", "max_error", "timing", "ratio",
            "gflops", "pct_peak", "note"} <= set(row)
    assert {"median_s", "q1_s", "q3_s", "min_s", "max_s", "samples"} <= set(row["timing"])
    assert len(doc["summary"]) == 6 and all("speedup" in e for e in doc["summary"])


def test_summary_compares_rnnkit_with_other_libraries_and_with_its_unrolled_variant() -> None:
    def row(peer: str, seconds: float) -> report.Row:
        return report.Row("s", "LSTM", 1, peer, "ok", timing={"median_s": seconds})

    rows = [row("rnnkit", 1.0), row("rnnkit-unroll", 0.8), row("torch", 2.0), row("numpy", 3.0)]
    (entry,) = report.summary(rows)
    assert entry["best_other"] == "torch"  # the unrolled variant is rnnkit, not a competitor
    assert entry["speedup"] == pytest.approx(2.0)
    assert entry["unroll_ratio"] == pytest.approx(1.25)
    out = io.StringIO()
    report.print_summary([entry], out)
    assert "2.00x vs torch" in out.getvalue()
    assert "time / unroll=True 1.25  (over 1.10)" in out.getvalue()


def test_cli_rejects_unknown_names(capsys) -> None:
    assert main(["--scenarios", "nope"]) == 2
    assert "unknown scenario" in capsys.readouterr().err
    assert main(["--peers", "rnnkit,nope"]) == 2

"""Smoke test of the benchmark harness (rnnkit.bench) on tiny scenarios: the correctness gate
stops a wrong peer before it is timed, the table and the JSON have what they promise."""

from __future__ import annotations

import io
import json
import pickle

import numpy as np
import pytest

import rnnkit
from rnnkit import testing
from rnnkit.bench import report
from rnnkit.bench.cli import main
from rnnkit.bench.measure import QUICK, Budget, Timing
from rnnkit.bench.model_cases import (
    MODEL_TOLERANCE,
    ModelCase,
    ModelInstance,
    make_model_case,
    model_spec,
)
from rnnkit.bench.model_runner import run_model_case
from rnnkit.bench.model_zoo import MODEL_NAMES
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
    config = Config(scenarios=[TINY, TINY_STREAM], cells=CELLS, models=(), threads=(1,),
                    budget=QUICK, affinity=False)
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


# ----------------------------------------------------------------------------- model rows
class OffModelPeer(RnnkitPeer):
    """rnnkit's model with every output off by 1e-3 relative: must be reported wrong, never
    timed."""

    name = "off-model"
    builds_layers = False
    timed = False

    def build_model(self, case: ModelCase, threads: int) -> Instance:
        model = self.rnnkit.load_keras(case.spec.path)
        peer = self

        class Off(ModelInstance):
            def measure(self, budget: Budget, calls: int = 0) -> Timing:
                peer.timed = True
                return super().measure(budget, calls)

        return Off(case, lambda x: np.asarray(model(x)) * (1 + 1e-3))


def _tiny_keras_file(path) -> str:
    """Two inputs (ids read by a masking Embedding, floats), a GRU and a Dense, saved by Keras
    (the suite's NumPy backend)."""
    keras = pytest.importorskip("keras")
    ids = keras.Input((None,), dtype="int32", name="ids")
    floats = keras.Input((None, 2), name="floats")
    h = keras.layers.Embedding(50, 4, mask_zero=True, name="emb")(ids)
    h = keras.layers.Concatenate(name="concat")([h, floats])
    h = keras.layers.GRU(3, return_sequences=True, name="gru")(h)
    model = keras.Model([ids, floats], keras.layers.Dense(2, name="head")(h))
    model.save(path)
    return str(path)


def test_model_inputs_from_the_model(tmp_path) -> None:
    spec = model_spec("tiny", _tiny_keras_file(tmp_path / "tiny.keras"))
    assert [(s.name, s.shape, s.ids, s.vocab) for s in spec.inputs] == [
        ("ids", (None, None), True, 50), ("floats", (None, None, 2), False, None)]
    case = make_model_case(spec, batch=3, steps=7)
    ids, floats = case.inputs
    assert case.label == "tiny-b3-t7" and ids.shape == (3, 7) and floats.shape == (3, 7, 2)
    assert ids.dtype == np.int32 and ids.min() >= 1 and ids.max() < 50
    assert floats.dtype == np.float32
    assert spec.batches([1, 32]) == [1, 32]


def test_model_check_stops_a_wrong_peer_and_profiles_rnnkit(tmp_path) -> None:
    spec = model_spec("tiny", _tiny_keras_file(tmp_path / "tiny.keras"))
    case = make_model_case(spec, batch=2, steps=5)
    off = OffModelPeer()
    peers: list[Peer] = [off, RnnkitPeer(), NumpyPeer()]  # rnnkit runs first, numpy not at all
    for peer in peers:
        peer.load()
    rows = run_model_case([p for p in peers if p.builds_models], case, 1, QUICK)
    mine, wrong = rows
    assert (mine.peer, mine.status, mine.cell) == ("rnnkit", "ok", report.MODEL_CELL)
    assert mine.timing["median_s"] > 0 and mine.ratio == 1.0
    assert set(mine.profile["layers_s"]) >= {"emb", "concat", "gru", "head"}
    assert mine.profile["recurrent_layers"] == ["gru"]
    assert 0.0 < mine.profile["outside_recurrent_share"] < 1.0
    assert wrong.status == "wrong" and not off.timed and wrong.timing == {}
    assert wrong.max_error == pytest.approx(1e-3 / 2, rel=0.5)
    out = io.StringIO()
    report.print_model_rows(rows, out)
    assert "| tiny-b2-t5 | 1 | off-model | WRONG, not timed" in out.getvalue()


def test_model_profile_times_every_layer() -> None:
    x = rnnkit.Input((None, 3))
    model = rnnkit.Model(x, rnnkit.Dense(2, name="head")(rnnkit.LSTM(4, name="rnn")(x)))
    data = np.ones((2, 5, 3), np.float32)
    with model.profile() as outer:
        model(data)
        with model.profile() as inner:
            model(data)
            copied = pickle.loads(pickle.dumps(model))
    assert copied._layer_times is None  # a copy made inside a block is not profiled
    assert set(inner) == {"rnn", "head"} and all(t > 0 for t in inner.values())
    assert all(outer[n] > inner[n] for n in inner)  # the outer block saw both calls
    assert "_layer_times" not in model.__dict__  # nothing left behind
    stack = rnnkit.Sequential([rnnkit.LSTM(4, name="rnn"), rnnkit.Dense(2, name="head")])
    with stack.profile() as times:
        stack(data)
    assert list(times) == ["rnn", "head"]


def test_cli_model_file_against_keras(tmp_path, capsys) -> None:
    path = _tiny_keras_file(tmp_path / "tiny.keras")
    out = tmp_path / "model.json"
    assert main(["--model", path, "--quick", "--threads", "1", "--batch", "2", "--steps", "5",
                 "--peers", "rnnkit,keras-numpy", "--json", str(out)]) == 0
    text = capsys.readouterr().out
    assert "ids (B, T) int32 ids in [1, 50); floats (B, T, 2) float32 N(0, 1)" in text
    doc = json.loads(out.read_text())
    rows = {r["peer"]: r for r in doc["results"]}
    assert set(rows) == {"rnnkit", "keras-numpy"}, doc["meta"]["skipped_peers"]
    for r in rows.values():
        assert (r["scenario"], r["cell"], r["status"]) == ("tiny-b2-t5", "model", "ok")
        assert r["timing"]["median_s"] > 0
    assert 0 < rows["keras-numpy"]["max_error"] <= MODEL_TOLERANCE  # checked, not identical
    assert "outside_recurrent_share" in rows["rnnkit"]["profile"]
    assert doc["summary"][0]["best_other"] == "keras-numpy"
    assert main(["--model", str(tmp_path / "missing.keras")]) == 2


def test_quick_run_has_the_model_rows(tmp_path) -> None:
    pytest.importorskip("jax")
    out = tmp_path / "models.json"
    assert main(["--quick", "--scenarios", ",".join(MODEL_NAMES), "--peers", "rnnkit,keras-jax",
                 "--threads", "1", "--batch", "1,4", "--steps", "8", "--json", str(out)]) == 0
    doc = json.loads(out.read_text())
    assert set(doc["meta"]["models"]) == set(MODEL_NAMES) and not doc["meta"]["skipped_models"]
    rows = doc["results"]
    assert {(r["scenario"], r["peer"]) for r in rows} == {
        (f"{m}-b{b}-t8", p) for m in MODEL_NAMES for b in (1, 4) for p in ("rnnkit", "keras-jax")}
    for r in rows:
        assert r["status"] == "ok", r
        assert r["max_error"] <= MODEL_TOLERANCE and r["timing"]["median_s"] > 0
        if r["peer"] == "keras-jax":
            assert r["max_error"] > 0  # really compared with rnnkit's outputs
    assert len(doc["summary"]) == 6 and all("speedup" in e for e in doc["summary"])

"""Soak test: many threads running a mix of rnnkit work for a while, checked against serial runs.

    python tools/soak.py --seconds 1800 --threads 8      # the documented long run
    python tools/soak.py --seconds 10                    # what CI runs (tests/test_soak.py)

Each thread loops over jobs, each compared with the result computed serially before the soak:
- stateless calls of shared layers (every built-in cell, a stack, Bidirectional, a functional
  model with a convolution and attention) on the fast path and with masks;
- stateful streaming on the thread's own layers (one step at a time, then reset), whose states
  must follow the serial run step for step;
- rnnkit.save / rnnkit.load and pickling round trips of shared models, whose copies must give
  the same numbers.
The pool runs at 2 rnnkit threads. The resident memory (RSS) is sampled every second after a
warm-up: it must stay flat (its growth over the second half of the run under a bound). Prints a
summary and exits 1 on any mismatch, error or growth.
"""

from __future__ import annotations

import argparse
import io
import os
import pickle
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from typing import Any

import numpy as np

import rnnkit


def rss_bytes() -> int:
    """The process's resident set size (Linux /proc; 0 elsewhere)."""
    try:
        with open("/proc/self/statm") as handle:
            return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return 0


def shared_jobs(rng: np.random.Generator) -> list[tuple[str, Callable[[], Any], Any]]:
    """(name, call, serial result) for stateless work on shared layers and models."""
    jobs = []
    x = rng.standard_normal((6, 20, 8)).astype("float32")
    mask = rng.random((6, 20)) < 0.8
    mask[:, 0] = True
    layers = {
        "simple_rnn": rnnkit.SimpleRNN(16, return_sequences=True),
        "lstm": rnnkit.LSTM(16),
        "gru": rnnkit.GRU(16, return_sequences=True, reset_after=False),
        "stack": rnnkit.RNN([rnnkit.LSTMCell(12), rnnkit.GRUCell(8)]),
        "bidirectional": rnnkit.Bidirectional(rnnkit.GRU(8, return_sequences=True)),
    }
    for name, layer in layers.items():
        jobs.append((name, lambda layer=layer: layer(x), layer(x)))
        jobs.append((f"{name}+mask", lambda layer=layer: layer(x, mask=mask),
                     layer(x, mask=mask)))
    inputs = rnnkit.Input((20, 8))
    seq = rnnkit.LSTM(8, return_sequences=True)(rnnkit.Conv1D(8, 3, padding="same")(inputs))
    attended = rnnkit.Attention()([seq, seq])
    model = rnnkit.Model(inputs, rnnkit.Dense(3)(rnnkit.GlobalAveragePooling1D()(attended)))
    jobs.append(("model", lambda: model(x), model(x)))

    def round_trip() -> Any:
        buffer = io.BytesIO()
        with tempfile.TemporaryDirectory() as folder:
            path = os.path.join(folder, "model.rnnkit")
            rnnkit.save(model, path)
            loaded = rnnkit.load(path)
        pickle.dump(loaded, buffer)
        return pickle.loads(buffer.getvalue())(x)

    jobs.append(("save/load/pickle", round_trip, model(x)))
    return jobs


def streaming_job(seed: int) -> Callable[[], str | None]:
    """A thread's own stateful layer streamed one step at a time, against its serial run."""
    rng = np.random.default_rng(seed)
    layer = rnnkit.LSTM(16, stateful=True, return_sequences=True)
    steps = rng.standard_normal((2, 30, 8)).astype("float32")
    layer(steps[:, :1])
    layer.reset_states()
    expected = []
    for t in range(steps.shape[1]):
        expected.append(layer(steps[:, t : t + 1]))
    layer.reset_states()

    def run() -> str | None:
        for t in range(steps.shape[1]):
            if not np.array_equal(layer(steps[:, t : t + 1]), expected[t]):
                return f"stream step {t}"
        layer.reset_states()
        return None

    return run


def soak(seconds: float, threads: int, rss_growth_bound: int) -> int:
    saved_threads = rnnkit.get_num_threads()
    rnnkit.set_num_threads(2)
    rng = np.random.default_rng(0)
    jobs = shared_jobs(rng)
    streams = [streaming_job(seed) for seed in range(threads)]
    stop = time.monotonic() + seconds
    counts = [0] * threads
    problems: list[str] = []
    lock = threading.Lock()

    def worker(index: int) -> None:
        local = np.random.default_rng(index)
        while time.monotonic() < stop and not problems:
            try:
                if local.random() < 0.3:
                    problem = streams[index]()
                else:
                    name, call, expected = jobs[int(local.integers(len(jobs)))]
                    got = call()
                    problem = None if _same(got, expected) else f"{name} differs from serial"
            except Exception as error:  # every error is a finding
                problem = f"{type(error).__name__}: {error}"
            if problem is not None:
                with lock:
                    problems.append(f"thread {index}: {problem}")
                return
            counts[index] += 1

    workers = [threading.Thread(target=worker, args=(i,)) for i in range(threads)]
    for w in workers:
        w.start()
    samples = []
    start = time.monotonic()
    while any(w.is_alive() for w in workers):
        time.sleep(min(1.0, max(0.05, seconds / 20)))
        samples.append((time.monotonic() - start, rss_bytes()))
    for w in workers:
        w.join()
    rnnkit.set_num_threads(saved_threads)
    half = [rss for t, rss in samples if t >= seconds / 2]
    growth = (max(half) - min(half)) if len(half) >= 2 else 0
    print(f"soak: {seconds:g} s, {threads} threads, {sum(counts):,} jobs "
          f"({', '.join(str(c) for c in counts)}); RSS {samples[-1][1] / 2**20:.0f} MiB at the "
          f"end, {growth / 2**20:.1f} MiB growth over the second half")
    if growth > rss_growth_bound:
        problems.append(f"RSS grew by {growth:,} bytes over the second half")
    for problem in problems:
        print(f"PROBLEM: {problem}")
    return 1 if problems else 0


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    return bool(np.array_equal(np.asarray(a), np.asarray(b)))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--rss-growth-mib", type=float, default=64.0,
                        help="largest RSS growth allowed over the second half (MiB)")
    args = parser.parse_args(argv)
    return soak(args.seconds, args.threads, int(args.rss_growth_mib * 2**20))


if __name__ == "__main__":
    sys.exit(main())

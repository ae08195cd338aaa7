"""The scenario table (also in bench/README.md), the cells, and the weights and inputs every peer
shares."""

from __future__ import annotations

import zlib
from dataclasses import dataclass

import numpy as np

# Gate count per cell: SimpleRNN 1, LSTM 4 (i, f, c, o), GRU 3 (z, r, h; reset_after=True).
GATES: dict[str, int] = {"SimpleRNN": 1, "LSTM": 4, "GRU": 3}
CELLS: tuple[str, ...] = tuple(GATES)

# Streaming scenarios are checked over this many single-step calls (state carried).
STREAM_CHECK_STEPS = 20


@dataclass(frozen=True)
class Scenario:
    """One row of the scenario table."""

    name: str
    batch: int
    steps: int  # timesteps per call (1 for streaming)
    input_dim: int
    units: int
    stream: bool = False  # stateful single-step calls, state carried
    regime: str = ""

    def flops(self, cell: str) -> float:
        """Floating-point operations of one call: 2·B·T·(D+H)·G·H."""
        g = GATES[cell]
        return 2.0 * self.batch * self.steps * (self.input_dim + self.units) * g * self.units


SCENARIOS: tuple[Scenario, ...] = (
    Scenario("stream-u64", 1, 1, 32, 64, stream=True, regime="per-call overhead + latency"),
    Scenario("b1-t100-u64", 1, 100, 32, 64, regime="small-step latency"),
    Scenario("b1-t100-u256", 1, 100, 128, 256, regime="cache bandwidth (GEMV chain)"),
    Scenario("b32-t100-u128", 32, 100, 64, 128, regime="small GEMMs"),
    Scenario("b32-t100-u512", 32, 100, 256, 512, regime="weights larger than one core's L2"),
    Scenario("b256-t50-u256", 256, 50, 128, 256, regime="compute bound"),
)
SCENARIO_NAMES: tuple[str, ...] = tuple(s.name for s in SCENARIOS)


@dataclass(frozen=True)
class Case:
    """A scenario and a cell with the weights (Keras order and shapes, float32) and the input.

    `x` is what the peers' outputs are checked on: (B, T, D) for a sequence scenario, and
    (1, STREAM_CHECK_STEPS, D) for a streaming one (fed one step per call). `timed_x` is the
    input of one timed call.
    """

    scenario: Scenario
    cell: str
    weights: tuple[np.ndarray, ...]
    x: np.ndarray
    timed_x: np.ndarray

    @property
    def units(self) -> int:
        """Number of units H."""
        return self.scenario.units

    @property
    def label(self) -> str:
        """`scenario/cell`, for messages."""
        return f"{self.scenario.name}/{self.cell}"


def make_weights(
    cell: str, input_dim: int, units: int, rng: np.random.Generator
) -> list[np.ndarray]:
    """Random float32 weights in Keras order: kernel (D, G·H), recurrent_kernel (H, G·H), bias.

    The kernel is Glorot-uniform, the recurrent kernel has orthonormal rows scaled by 0.9 (a
    contracting recurrence, so float32 rounding does not grow over 100 steps) and the bias is
    nonzero (U(-0.2, 0.2)) so that a peer mapping biases wrongly fails the check. GRU bias is
    (2, 3H): input bias and recurrent bias (reset_after=True).
    """
    g = GATES[cell]
    limit = np.sqrt(6.0 / (input_dim + g * units))
    kernel = rng.uniform(-limit, limit, (input_dim, g * units))
    q, _ = np.linalg.qr(rng.standard_normal((g * units, units)))  # (G·H, H), orthonormal columns
    recurrent = 0.9 * q.T
    bias_shape: tuple[int, ...] = (2, g * units) if cell == "GRU" else (g * units,)
    bias = rng.uniform(-0.2, 0.2, bias_shape)
    return [np.ascontiguousarray(w, dtype=np.float32) for w in (kernel, recurrent, bias)]


def make_case(scenario: Scenario, cell: str, seed: int = 0) -> Case:
    """Deterministic weights and inputs for one scenario and cell."""
    rng = np.random.default_rng([seed, zlib.crc32(f"{scenario.name}/{cell}".encode())])
    weights = make_weights(cell, scenario.input_dim, scenario.units, rng)
    steps = STREAM_CHECK_STEPS if scenario.stream else scenario.steps
    x = rng.uniform(-1.0, 1.0, (scenario.batch, steps, scenario.input_dim)).astype(np.float32)
    timed_x = np.ascontiguousarray(x[:, :1]) if scenario.stream else x
    return Case(scenario, cell, tuple(weights), x, timed_x)


def select(names: list[str] | None, known: tuple[str, ...], what: str) -> list[str]:
    """Validate a user selection against the known names (None: all of them, in order)."""
    if not names:
        return list(known)
    unknown = [n for n in names if n not in known]
    if unknown:
        raise ValueError(f"unknown {what}: {', '.join(unknown)} (known: {', '.join(known)})")
    return [n for n in known if n in names]

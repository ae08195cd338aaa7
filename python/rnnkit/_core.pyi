"""Typed stub of rnnkit's compiled module (cpp/bindings). Private: use the rnnkit package."""

from collections.abc import Callable

import numpy as np

ACTIVATIONS: tuple[str, ...]
# One dict per built-in cell: {"name": str, "gates": int, "states": int}.
CELLS: tuple[dict[str, str | int], ...]

def weight_shapes(
    cell: str, units: int, input_dim: int, use_bias: bool, reset_after: bool
) -> list[tuple[str, tuple[int, ...]]]: ...

def compiled_isas() -> list[str]: ...
def supported_isas() -> list[str]: ...
def active_isa() -> str: ...
def set_isa(isa: str) -> None: ...
def get_num_threads() -> int: ...
def set_num_threads(threads: int) -> None: ...
def _inject_worker_fault(after: int, kind: str = "memory") -> None: ...

class _Kernel:
    def __init__(
        self,
        cell: str,
        units: int,
        input_dim: int,
        activation: str,
        recurrent_activation: str,
        use_bias: bool,
        reset_after: bool,
        weights: list[np.ndarray],  # in weight_shapes() order and shapes
        bf16_weights: bool = False,
    ) -> None: ...
    def run(
        self,
        x: np.ndarray,
        time_major: bool,
        states: list[np.ndarray],
        mask: np.ndarray | None,
        out: np.ndarray | None,
        last_output: np.ndarray | None,
        go_backwards: bool,
        zero_output_for_mask: bool,
        outputs_in_time_order: bool,
        chunk_steps: int,
    ) -> None: ...
    def workspace_bytes(self, batch: int, steps: int, chunk_steps: int, has_mask: bool) -> int: ...
    def split_parts(self, batch: int, steps: int, chunk_steps: int, has_mask: bool) -> int: ...
    def invalidate(self) -> None: ...
    @property
    def valid(self) -> bool: ...
    @property
    def isa(self) -> str: ...

class Kernel32(_Kernel): ...
class Kernel64(_Kernel): ...

class _Plan:
    def __init__(
        self,
        kernels: list[_Kernel],
        input_shape: list[int],
        time_major: bool,
        go_backwards: bool,
        zero_output_for_mask: bool,
        return_sequences: bool,
        return_state: bool,
        chunk_steps: int,
        carried_states: list[list[np.ndarray]] | None,
        state_lock: StateLock | None,
        stacked: bool,
    ) -> None: ...
    def run(
        self, x: np.ndarray, states: list[list[np.ndarray]], mask: np.ndarray | None
    ) -> object: ...
    def __call__(self, inputs: object) -> object | None: ...
    def function(self) -> Callable[[object], object | None]: ...
    def invalidate(self) -> None: ...
    @property
    def input_shape(self) -> list[int]: ...
    @property
    def holds_gil(self) -> bool: ...

def format_states(
    output: object, groups: list[list[np.ndarray]], stacked: bool, bare: list[bool]
) -> tuple[object, ...]: ...
def run_bidirectional(
    forward: _Plan,
    backward: _Plan,
    x: np.ndarray,
    forward_states: list[list[np.ndarray]],
    backward_states: list[list[np.ndarray]],
    mask: np.ndarray | None,
    merge_mode: str | None,
) -> object: ...

class StateLock:
    def __init__(self) -> None: ...
    def __enter__(self) -> None: ...
    def __exit__(self, *args: object) -> None: ...

class Plan32(_Plan): ...
class Plan64(_Plan): ...

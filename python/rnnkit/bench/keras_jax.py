"""The Keras 3 peers: `keras-jax` (layers and whole models) and, for whole models only,
`keras-numpy` and `keras-torch`. Keras picks its backend once per interpreter, at import, and
the test suite imports it with the NumPy backend, so these peers always run in a worker
subprocess (`python -m rnnkit.bench.keras_jax`) started with KERAS_BACKEND=<backend> and the
thread limits of its thread count; the worker times its own calls (no IPC in the loop).

Protocol: pickled tuples over the worker's stdin/stdout, one reply per request.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import subprocess
import sys
import tempfile
from typing import Any, BinaryIO

import numpy as np

from .measure import Budget, Timing
from .model_cases import ModelCase, ModelInstance
from .peers import Instance, Peer
from .scenarios import Case

# Checks that Keras runs on the backend; prints the versions of Keras and the backend library.
PROBE = ("import keras, {lib}; assert keras.backend.backend() == {backend!r}, "
         "keras.backend.backend(); print(keras.__version__, {lib}.__version__)")
BACKEND_LIBRARIES = {"jax": "jax", "numpy": "numpy", "torch": "torch"}


def worker_env(threads: int | None, backend: str = "jax") -> dict[str, str]:
    """Environment of a worker: Keras on `backend`, CPU only, XLA (JAX), OpenMP (torch) and
    BLAS (NumPy) limited to `threads` threads."""
    env = dict(os.environ, KERAS_BACKEND=backend, JAX_PLATFORMS="cpu",
               TF_CPP_MIN_LOG_LEVEL="3", CUDA_VISIBLE_DEVICES="")
    if threads is not None:
        multi = "true" if threads > 1 else "false"
        env["XLA_FLAGS"] = (f"--xla_cpu_multi_thread_eigen={multi} "
                            f"intra_op_parallelism_threads={threads}")
        env["OMP_NUM_THREADS"] = env["OPENBLAS_NUM_THREADS"] = str(threads)
    return env


class _Worker:
    """Client side of one worker process."""

    def __init__(self, threads: int, backend: str = "jax") -> None:
        self.backend = backend
        self.log = tempfile.TemporaryFile()  # noqa: SIM115 (closed in close())
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "rnnkit.bench.keras_jax"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.log,
            env=worker_env(threads, backend),
        )

    def ask(self, *request: Any) -> Any:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        try:
            pickle.dump(request, self.proc.stdin)
            self.proc.stdin.flush()
            status, payload = pickle.load(self.proc.stdout)
        except (EOFError, BrokenPipeError, pickle.UnpicklingError) as e:
            self.log.seek(0)
            tail = self.log.read().decode(errors="replace").strip().splitlines()[-3:]
            raise RuntimeError(f"keras-{self.backend} worker died: {' | '.join(tail) or e}"
                               ) from e
        if status != "ok":
            raise RuntimeError(payload)
        return payload

    def close(self) -> None:
        if self.proc.poll() is None:
            with contextlib.suppress(RuntimeError):
                self.ask("quit")
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        self.log.close()


class _RemoteInstance(Instance):
    def __init__(self, case: Case | ModelCase, worker: _Worker, key: int) -> None:
        super().__init__(case, run=lambda x: None)  # type: ignore[arg-type]
        self.worker, self.key = worker, key
        self._output: Any = worker.ask("build", key, case)

    def output(self) -> Any:
        """The output computed in the worker (a list of arrays for a model case)."""
        return self._output

    def measure(self, budget: Budget, calls: int = 0) -> Timing:
        samples, calls = self.worker.ask("measure", self.key, budget, calls)
        return Timing(samples, calls)

    def close(self) -> None:
        self.worker.ask("drop", self.key)


class KerasPeer(Peer):
    """Keras 3 on `backend`, for whole models (`build_model`): the model loaded from its file
    with `keras.saving.load_model`; JAX: `model.stateless_call` under `jax.jit`; torch:
    `model(x)` under `torch.inference_mode()`; NumPy: `model(x)`. Layer cases: JAX only
    (`KerasJaxPeer`)."""

    builds_models = True

    def __init__(self, backend: str = "jax") -> None:
        self.backend = backend
        self.name = f"keras-{backend}"
        self.builds_layers = backend == "jax"
        self.workers: dict[int, _Worker] = {}
        self.count = 0

    def load(self) -> None:
        """Import Keras on the backend in a subprocess to check that they work together."""
        probe_code = PROBE.format(lib=BACKEND_LIBRARIES[self.backend], backend=self.backend)
        probe = subprocess.run([sys.executable, "-c", probe_code], capture_output=True,
                               text=True, env=worker_env(None, self.backend), timeout=300)
        if probe.returncode != 0:
            lines = probe.stderr.strip().splitlines()
            raise ImportError(lines[-1] if lines else f"exit code {probe.returncode}")
        keras_version, library_version = probe.stdout.split()[-2:]
        self.version = f"keras {keras_version}, {self.backend} {library_version}"

    def _remote(self, case: Case | ModelCase, threads: int) -> _RemoteInstance:
        if threads not in self.workers:  # started on first use, inside the pinned pass
            self.workers[threads] = _Worker(threads, self.backend)
        self.count += 1
        return _RemoteInstance(case, self.workers[threads], self.count)

    def build(self, case: Case, threads: int) -> Instance:
        """Build and jit the layer in the worker of this thread count (JAX only)."""
        if not self.builds_layers:
            raise NotImplementedError(f"{self.name} runs whole models only")
        return self._remote(case, threads)

    def build_model(self, case: ModelCase, threads: int) -> Instance:
        """Load the model file in the worker of this thread count and prepare its call."""
        return self._remote(case, threads)

    def close(self) -> None:
        """Stop the workers."""
        for worker in self.workers.values():
            worker.close()
        self.workers.clear()


class KerasJaxPeer(KerasPeer):
    """`keras.layers.<Cell>` (Keras 3, JAX backend) called through `stateless_call` under
    `jax.jit`; streaming carries the state as `initial_state` -> returned states. Whole models
    as `KerasPeer`."""

    def __init__(self) -> None:
        super().__init__("jax")


# ----------------------------------------------------------------------------- worker side
def _build_model_instance(case: ModelCase, models: dict[str, Any]) -> Instance:
    """The model of `case` (loaded once per file and worker) called as its backend runs it."""
    import keras

    if case.spec.path not in models:
        models[case.spec.path] = keras.saving.load_model(case.spec.path, compile=False)
    model = models[case.spec.path]
    backend = keras.backend.backend()
    if backend == "jax":
        import jax

        trainable = [v.value for v in model.trainable_variables]
        fixed = [v.value for v in model.non_trainable_variables]
        fn = jax.jit(lambda tv, ntv, x: model.stateless_call(tv, ntv, x)[0])
        return ModelInstance(case, lambda x: jax.block_until_ready(fn(trainable, fixed, x)))
    if backend == "torch":
        import torch

        @torch.inference_mode()
        def run(x: Any) -> Any:
            return model(x)

        return ModelInstance(case, run)
    return ModelInstance(case, model)


def _build_instance(case: Case) -> Instance:
    import jax
    import jax.numpy as jnp
    import keras

    kwargs: dict[str, Any] = {"reset_after": True} if case.cell == "GRU" else {}
    stream = case.scenario.stream
    layer = getattr(keras.layers, case.cell)(
        case.units, return_sequences=True, return_state=stream, **kwargs
    )
    layer.build(case.x.shape)
    layer.set_weights(list(case.weights))
    trainable = [v.value for v in layer.trainable_variables]
    fixed = [v.value for v in layer.non_trainable_variables]
    if not stream:
        fn = jax.jit(lambda tv, ntv, x: layer.stateless_call(tv, ntv, x)[0])
        return Instance(case, lambda x: fn(trainable, fixed, x).block_until_ready())

    step = jax.jit(lambda tv, ntv, x, s: layer.stateless_call(tv, ntv, x, initial_state=s)[0])
    n_states = 2 if case.cell == "LSTM" else 1
    state: list[Any] = []

    def reset() -> None:
        zero = jnp.zeros((case.scenario.batch, case.units), jnp.float32)
        state[:] = [zero] * n_states

    def run_step(x: np.ndarray) -> Any:
        y, *new = step(trainable, fixed, x, state)
        state[:] = new
        return y.block_until_ready()

    reset()
    return Instance(case, run_step, reset)


def serve(inp: BinaryIO, out: BinaryIO) -> None:
    """Answer requests until "quit": build (-> float64 output), measure (-> samples), drop."""
    instances: dict[int, Instance] = {}
    models: dict[str, Any] = {}  # loaded model files, by path
    while True:
        try:
            request = pickle.load(inp)
        except EOFError:
            return
        op, args = request[0], request[1:]
        try:
            if op == "quit":
                reply: Any = None
            elif op == "build":
                key, case = args
                instances[key] = (_build_model_instance(case, models)
                                  if isinstance(case, ModelCase) else _build_instance(case))
                reply = instances[key].output()
            elif op == "measure":
                key, budget, calls = args
                timing = instances[key].measure(budget, calls)
                reply = (timing.samples, timing.calls_per_sample)
            elif op == "drop":
                instances.pop(args[0], None)
                reply = None
            else:
                raise ValueError(f"unknown request {op!r}")
            message: tuple[str, Any] = ("ok", reply)
        except Exception as e:  # reported to the client, which marks the peer as failed
            message = ("error", f"{type(e).__name__}: {e}")
        pickle.dump(message, out)
        out.flush()
        if op == "quit":
            return


def main() -> None:
    """Worker entry point: replies on the original stdout, anything printed goes to stderr."""
    out = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)
    serve(sys.stdin.buffer, out)


if __name__ == "__main__":
    main()

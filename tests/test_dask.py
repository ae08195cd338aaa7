"""Scale-out with Dask: a loaded model mapped over the blocks of a dask.array on a
distributed LocalCluster of two worker processes gives the numbers of one process.

The model travels to the workers by pickle (its compiled kernels are rebuilt there); each
block is a slice of the batch, and rnnkit computes rows independently, so the distributed
result equals the single-process one.
"""

import os

import dask.array as da
import distributed
import numpy as np
import pytest

import rnnkit
from conftest import TOLERANCES

STEPS, FEATURES, VOCAB = 12, 5, 20


@pytest.fixture(scope="module")
def cluster():
    with distributed.LocalCluster(
        n_workers=2, processes=True, threads_per_worker=1, dashboard_address=None,
        silence_logs=40,
    ) as local_cluster, distributed.Client(local_cluster) as client:
        yield local_cluster, client
    assert local_cluster.status.name == "closed"


def make_model(tmp_path, rng):
    """A model as a user would have it: written to a file, loaded back."""
    model = rnnkit.Sequential([
        rnnkit.InputLayer(shape=(STEPS, FEATURES)),
        rnnkit.Masking(),
        rnnkit.Bidirectional(rnnkit.LSTM(16, return_sequences=True)),
        rnnkit.GRU(8),
        rnnkit.Dense(3, activation="softmax"),
    ])
    model.build((None, STEPS, FEATURES))
    model.set_weights([rng.uniform(-0.5, 0.5, w.shape) for w in model.get_weights()])
    rnnkit.save(model, tmp_path / "model.rnnkit")
    return rnnkit.load(tmp_path / "model.rnnkit")


def test_map_blocks_on_a_local_cluster_matches_one_process(cluster, tmp_path, rng):
    local_cluster, client = cluster
    model = make_model(tmp_path, rng)
    x = rng.standard_normal((1000, STEPS, FEATURES)).astype("float32")
    x[::7, STEPS // 2 :] = 0  # padded rows, masked by Masking
    expected = model.predict(x)

    blocks = da.from_array(x, chunks=(125, STEPS, FEATURES))
    out = blocks.map_blocks(
        model.predict, drop_axis=[1, 2], new_axis=1, chunks=(blocks.chunks[0], (3,)),
        meta=np.empty((0, 3), "float32"),
    )
    with distributed.get_task_stream(client) as stream:
        result = out.compute()
    assert result.dtype == np.float32 and result.shape == expected.shape
    np.testing.assert_allclose(result, expected, **TOLERANCES["float32"])
    # Block by block the numbers are the very same ones.
    for start in range(0, len(x), 125):
        np.testing.assert_array_equal(result[start:start + 125],
                                      model.predict(x[start:start + 125]))

    # The blocks ran in the worker processes, not in this one.
    worker_pids = client.run(os.getpid)
    assert len(worker_pids) == 2 and os.getpid() not in worker_pids.values()
    ran_on = {task["worker"] for task in stream.data if "predict" in task["key"][0]}
    assert ran_on and ran_on <= set(worker_pids)


def _predict(block, model):
    return model.predict(block)


def test_scattered_model_over_token_ids(cluster, rng):
    """The same with the model sent to the workers once (`client.scatter`) rather than with
    every task, over token ids for Embedding(mask_zero=True) -> LSTM."""
    local_cluster, client = cluster
    model = rnnkit.Sequential([
        rnnkit.InputLayer(shape=(STEPS,), dtype="int32"),
        rnnkit.Embedding(VOCAB, 6, mask_zero=True),
        rnnkit.LSTM(8),
        rnnkit.Dense(1, activation="sigmoid"),
    ])
    model.build((None, STEPS))
    model.set_weights([rng.uniform(-0.5, 0.5, w.shape) for w in model.get_weights()])
    ids = rng.integers(1, VOCAB, (400, STEPS))
    ids[::3, -4:] = 0  # padding
    remote_model = client.scatter(model, broadcast=True)
    blocks = da.from_array(ids, chunks=(100, STEPS))
    out = blocks.map_blocks(
        _predict, remote_model, drop_axis=1, new_axis=1, chunks=(blocks.chunks[0], (1,)),
        meta=np.empty((0, 1), "float32"),
    )
    result = out.compute()
    np.testing.assert_allclose(result, model.predict(ids), **TOLERANCES["float32"])

"""A task that holds only the rows it needs (parameters living on the executors) trains exactly as one that holds
the whole matrices."""
import numpy as np
import pytest

from w2vspark import compiled
from w2vspark.huffman import huffman_tree
from w2vspark.train.local import pack
from w2vspark.train.task import KernelParams, task_rows, train_partition
from w2vspark.vocab import NoiseSampler

V, D = 400, 8
CASES = [("skipgram", "neg_sampling"), ("skipgram", "hierarchical_softmax"), ("cbow", "neg_sampling"),
         ("cbow", "hierarchical_softmax")]


def _setup(model, loss):
    rng = np.random.default_rng(5)
    # Zipf-like ids over a vocabulary much larger than the task reads: 120 short sentences
    sents = [np.minimum(rng.zipf(1.3, size=rng.integers(2, 12)) - 1, V - 1).astype(np.int32) for _ in range(120)]
    counts = np.sort(rng.integers(1, 5000, size=V))[::-1].astype(np.int64)
    w_in = ((rng.random((V, D)) - 0.5) / D).astype(np.float32)
    w_out = ((rng.random((V, D)) - 0.5) / D).astype(np.float32)
    params = KernelParams(window=3, num_negatives=4, loss=loss, model=model, batch_pairs=64)
    tree = huffman_tree(counts) if loss == "hierarchical_softmax" else None
    return [pack(sents)], w_in, w_out, params, np.full(V, 0.8), NoiseSampler(counts), tree


def _run(batches, w_in, w_out, params, keep, noise, tree, rows=None):
    return train_partition(batches, w_in, w_out, params, keep, noise, np.random.default_rng([7, 1]), 0.05, 0.01,
                           2000, tree, rows=rows)


@pytest.mark.parametrize("numpy_path", [False, True])
@pytest.mark.parametrize("model,loss", CASES)
def test_a_task_on_its_own_rows_gives_the_same_bits(monkeypatch, model, loss, numpy_path):
    if numpy_path:
        monkeypatch.setattr(compiled, "_module", None)
    batches, w_in, w_out, params, keep, noise, tree = _setup(model, loss)
    full = _run(batches, w_in, w_out, params, keep, noise, tree)
    in_rows, out_rows = task_rows(batches, params, keep, noise, np.random.default_rng([7, 1]), tree)
    # the rows listed are exactly the rows the full task moved, and far fewer than the vocabulary
    assert np.array_equal(in_rows, full.in_ids) and np.array_equal(out_rows, full.out_ids)
    assert len(in_rows) < V / 2 and len(out_rows) < V
    part = _run(batches, w_in[in_rows], w_out[out_rows], params, keep, noise, tree, rows=(in_rows, out_rows))
    for field in ("in_ids", "in_delta", "out_ids", "out_delta"):
        assert np.array_equal(getattr(part, field), getattr(full, field)), field
    assert part.loss_sum == full.loss_sum and part.pairs == full.pairs > 0
    assert np.abs(full.in_delta).max() > 0 and np.abs(full.out_delta).max() > 0


def test_rows_depend_on_the_random_stream():
    batches, w_in, w_out, params, keep, noise, tree = _setup("skipgram", "neg_sampling")
    a = task_rows(batches, params, keep, noise, np.random.default_rng([7, 1]))
    b = task_rows(batches, params, keep, noise, np.random.default_rng([7, 2]))
    assert not np.array_equal(a[1], b[1])  # other negatives


def test_the_full_softmax_needs_every_row():
    batches, w_in, w_out, _, keep, noise, _ = _setup("skipgram", "neg_sampling")
    params = KernelParams(window=3, loss="naive_softmax")
    with pytest.raises(ValueError, match="every output row"):
        task_rows(batches, params, keep, noise, np.random.default_rng(1))


@pytest.mark.parametrize("model", ["skipgram", "cbow"])
def test_windows_that_share_negatives_replay_exactly_and_touch_fewer_rows(model):
    """train.negative_group = 4: windows i, i + G', i + 2G', i + 3G' of a chunk (G' = ceil(G / 4)) share one draw
    of negatives; the task's rows are still listed exactly, a task on them gives the same bits, and it moves fewer
    output rows than with a draw per window (the point of the setting)."""
    from dataclasses import replace

    from w2vspark.train.task import _windows

    batches, w_in, w_out, params, keep, noise, tree = _setup(model, "neg_sampling")
    grouped = replace(params, negative_group=4)
    for _, targets, _, _, negatives in _windows(batches, grouped, keep, noise, np.random.default_rng([7, 1])):
        drawn = -(-len(targets) // 4)  # G'
        assert np.array_equal(negatives, negatives[np.arange(len(targets)) % drawn])  # window i shares draw i mod G'
        assert len(np.unique(negatives[:drawn], axis=0)) > drawn // 2  # the G' draws: fresh ones
    full = _run(batches, w_in, w_out, grouped, keep, noise, tree)
    in_rows, out_rows = task_rows(batches, grouped, keep, noise, np.random.default_rng([7, 1]), tree)
    assert np.array_equal(in_rows, full.in_ids) and np.array_equal(out_rows, full.out_ids)
    part = _run(batches, w_in[in_rows], w_out[out_rows], grouped, keep, noise, tree, rows=(in_rows, out_rows))
    for field in ("in_ids", "in_delta", "out_ids", "out_delta"):
        assert np.array_equal(getattr(part, field), getattr(full, field)), field
    single = task_rows(batches, params, keep, noise, np.random.default_rng([7, 1]), tree)
    assert len(out_rows) < len(single[1])

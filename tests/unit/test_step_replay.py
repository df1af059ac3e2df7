"""bench/step_replay.py records the compiled step's arguments during a pass and replays them: the steps it
replays from the pass's starting matrices must give the pass's own result, bit for bit."""
import importlib.util
from pathlib import Path

import numpy as np
import pytest

from w2vspark import compiled
from w2vspark.config import load_config
from w2vspark.huffman import huffman_tree
from w2vspark.train import task
from w2vspark.train.local import corpus_from_sentences, pack
from w2vspark.train.loop import init_params
from w2vspark.vocab import NoiseSampler

_path = Path(__file__).resolve().parents[2] / "bench" / "step_replay.py"
_spec = importlib.util.spec_from_file_location("step_replay", _path)
step_replay = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(step_replay)


@pytest.mark.skipif(not task.native_step(), reason="needs the compiled step")
@pytest.mark.parametrize("model,loss", [("skipgram", "neg_sampling"), ("cbow", "hierarchical_softmax")])
def test_replayed_steps_reproduce_the_recorded_pass(monkeypatch, model, loss):
    rng = np.random.default_rng(0)
    lines = [[f"w{int(t)}" for t in rng.zipf(1.5, size=rng.integers(3, 12)) % 40] for _ in range(300)]
    cfg = load_config(None, ["vocab.min_count=1"])
    vocab, sentences = corpus_from_sentences(lines, cfg)
    ids, offsets = pack(sentences)
    w_in, w_out = init_params(len(vocab), 16, seed=1)
    counts = np.asarray(vocab.counts)
    params = task.KernelParams(model=model, loss=loss, batch_pairs=64)
    tree = huffman_tree(counts) if loss == "hierarchical_softmax" else None
    recorder = step_replay.Recorder(compiled._module, limit=10_000)
    monkeypatch.setattr(compiled, "_module", recorder)
    res = task.train_partition([(ids, offsets)], w_in, w_out, params, np.ones(len(vocab)), NoiseSampler(counts),
                               np.random.default_rng(3), 0.5, 0.5, len(ids), tree)
    monkeypatch.undo()
    assert len(recorder.steps) > 5  # several minibatches, with repeated and damped rows at this rate
    _, a, b = step_replay.replay(compiled._module, recorder.steps, w_in, w_out)
    for moved, start, rows, delta in ((a, w_in, res.in_ids, res.in_delta), (b, w_out, res.out_ids, res.out_delta)):
        np.testing.assert_array_equal(moved[rows] - start[rows], delta)
        untouched = np.setdiff1d(np.arange(len(start)), rows)
        np.testing.assert_array_equal(moved[untouched], start[untouched])

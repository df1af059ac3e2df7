"""Replay one task's compiled minibatch steps with several builds of the compiled helper, in one process.

    python bench/step_replay.py --build A.so --build B.so [--model skipgram|cbow]
                                [--loss neg_sampling|hierarchical_softmax] [--words 400000] [--lr 0.05]
                                [--steps 60] [--reps 7] [--corpus FILE] [--no-damping NAME]

Trains one partition of the first ``--words`` words of the corpus (the bench corpus by default) twice with the
installed build, records the compiled step's arguments during the second pass (the first ``--steps``
minibatches, at the second pass's parameters), then replays those minibatches on copies of the same starting
matrices with every build in turn, ``--reps`` times, alternating builds, and prints each build's thread CPU
seconds (min and median) and its ratio to the first build's. On this shared machine two runs of the same code a
minute apart differ by 10% or more; alternating in one process cancels most of that, so differences of a few
percent between builds become visible. ``--no-damping NAME`` also replays the first build with the damping off
under that name (the damping's share of the step). A build is a compiled ``w2vspark_native`` module file (for
instance one built with ``gcc -O3 -ffp-contract=off -shared -fPIC`` from a changed ``native/w2vspark_native.c``)
or "installed".
"""
from __future__ import annotations

import argparse
import importlib.util
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from w2vspark import compiled  # noqa: E402
from w2vspark.config import load_config  # noqa: E402
from w2vspark.huffman import huffman_tree  # noqa: E402
from w2vspark.train import task  # noqa: E402
from w2vspark.train.local import corpus_from_sentences, pack  # noqa: E402
from w2vspark.train.loop import init_params  # noqa: E402
from w2vspark.vocab import NoiseSampler  # noqa: E402


def load_build(path: str):
    """The compiled module in ``path`` ("installed": the one w2vspark uses), under its own name."""
    if path == "installed":
        return compiled._module
    spec = importlib.util.spec_from_file_location("w2vspark_native", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class Recorder:
    """Stands in for the compiled module: runs the real one and keeps copies of the first ``limit`` steps'
    arguments that are not the matrices or the scratch."""

    def __init__(self, module, limit: int):
        self.module, self.limit, self.steps = module, limit, []

    def __getattr__(self, name):
        return getattr(self.module, name)

    def minibatch_step(self, *args):
        if len(self.steps) < self.limit:
            # the scalars G .. damping, and skip_saturated only when set: a build without it replays the rest
            self.steps.append(tuple(a.copy() for a in args[2:5]) + args[9:18] + tuple(x for x in args[18:] if x))
        return self.module.minibatch_step(*args)


def replay(module, steps, w_in: np.ndarray, w_out: np.ndarray, damping: bool = True):
    """Run ``steps`` with ``module`` on copies of (w_in, w_out) -> (thread CPU seconds, the copies after them)."""
    a, b = w_in.copy(), w_out.copy()
    slot_in, slot_out = np.full(len(a), -1, np.int32), np.full(len(b), -1, np.int32)
    marks = np.zeros(len(a), bool), np.zeros(len(b), bool)
    t0 = time.thread_time()
    for contexts, out_ids, labels, *scalars in steps:  # scalars: G, C, L, label rows, dim, lr, model, with_loss,
        if not damping:                                # damping
            scalars[8] = False
        module.minibatch_step(a, b, contexts, out_ids, labels, slot_in, slot_out, *marks, *scalars)
    return time.thread_time() - t0, a, b


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--build", action="append", default=[], help="a w2vspark_native module file, or 'installed'")
    p.add_argument("--model", default="skipgram", choices=["skipgram", "cbow"])
    p.add_argument("--loss", default="neg_sampling", choices=["neg_sampling", "hierarchical_softmax"])
    p.add_argument("--words", type=int, default=400_000)
    p.add_argument("--lr", type=float, default=0.05, help="the tasks' rate at 2 partitions early in a run")
    p.add_argument("--steps", type=int, default=60)
    p.add_argument("--reps", type=int, default=7)
    p.add_argument("--corpus", default=str(ROOT / "bench" / "cache" / "corpus" / "debian_en.txt"))
    p.add_argument("--no-damping", default="", metavar="NAME")
    args = p.parse_args(argv)
    if compiled._module is None or not hasattr(compiled._module, "minibatch_step"):
        sys.exit("the installed w2vspark has no compiled step to record")
    if not Path(args.corpus).is_file():
        sys.exit(f"no corpus at {args.corpus}: give --corpus FILE, or build the bench corpus once with `make bench`")
    builds = {name: load_build(name) for name in (args.build or ["installed"])}

    cfg = load_config(None, [f"train.model={args.model}", f"train.loss={args.loss}"])
    lines, words = [], 0
    with open(args.corpus, encoding="utf-8", errors="replace") as f:
        for line in f:
            lines.append(line.split())
            words += len(lines[-1])
            if words >= args.words:
                break
    vocab, sentences = corpus_from_sentences(lines, cfg)
    ids, offsets = pack(sentences)
    w_in, w_out = init_params(len(vocab), cfg.train.dim, seed=1)  # (V, d) each (hierarchical softmax: V - 1 used)
    params = task.KernelParams(window=cfg.train.window, num_negatives=cfg.train.num_negatives, loss=args.loss,
                               model=args.model, batch_pairs=cfg.train.batch_pairs)
    counts = np.asarray(vocab.counts)
    tree = huffman_tree(counts) if args.loss == "hierarchical_softmax" else None
    keep, noise = vocab.keep_probs(cfg.train.sample), NoiseSampler(counts)

    def one_pass(seed: int):
        return task.train_partition([(ids, offsets)], w_in, w_out, params, keep, noise,
                                    np.random.default_rng(seed), args.lr, args.lr, len(ids), tree)

    first = one_pass(1)  # a pass from the random start, so that the recorded steps see trained rows
    w_in[first.in_ids] += first.in_delta
    w_out[first.out_ids] += first.out_delta
    recorder = Recorder(compiled._module, args.steps)
    real, compiled._module = compiled._module, recorder
    try:
        one_pass(2)
    finally:
        compiled._module = real
    runs = [(name, module, True) for name, module in builds.items()]
    if args.no_damping:
        runs.append((args.no_damping, next(iter(builds.values())), False))
    seconds = {name: [] for name, _, _ in runs}
    for _ in range(args.reps):
        for name, module, damping in runs:
            seconds[name].append(replay(module, recorder.steps, w_in, w_out, damping)[0])
    base = np.median(seconds[runs[0][0]])
    print(f"{args.model} {args.loss}, {len(recorder.steps)} minibatches of {params.batch_pairs} pairs, lr {args.lr}, "
          f"{args.reps} alternated replays:")
    for name, values in seconds.items():
        print(f"  {name}: min {min(values):.4f} s, median {np.median(values):.4f} s, "
              f"{np.median(values) / base:.3f} x the first")


if __name__ == "__main__":
    main()

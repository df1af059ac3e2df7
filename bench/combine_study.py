"""How close does each combining rule bring a round of P parallel tasks to a sequential pass over the same data?

Trains ``--warm-rounds`` rounds in-process (the Spark trainer's model, see w2vspark.train.local) on the corpus of a run
folder written by jobs/build_vocab.py, then, from that state, runs the next round twice:
- as P tasks from the same parameters (the deltas D_p that the rules combine),
- as one sequential pass over the union of the P slices (the update S that the rules try to match),
each with two seeds; the sequential pass at the base learning rate, the tasks at ``--task-lr-scale`` m times it
with every rule's factors capped at 1 / m (as the trainer does; m = 1 by default). With independent seeds the
sampling noise cancels in cross products: <R_1, S_2> estimates <E R, E S>. Per band of rank and matrix it prints,
for every rule R, the cosine between E R and E S and the scale <E R, E S> / |E R|^2 that would make R as long as S.

    .venv/bin/python bench/combine_study.py bench/cache/work/w2vspark-base --partitions 8 --warm-rounds 48
    .venv/bin/python bench/combine_study.py RUN --set train.loss=hierarchical_softmax --set train.step=sequential
"""
from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from w2vspark.train.combine import DeltaAccumulator, rule_factors, scale_rows  # noqa: E402
from w2vspark.config import load_config  # noqa: E402
from w2vspark.train.local import load_run_corpus, local_runner, pack  # noqa: E402
from w2vspark.train.task import take_slice  # noqa: E402
from w2vspark.train.loop import fit, init_params, learning_rate, round_specs, run_task, task_plan  # noqa: E402
from w2vspark.vocab import Vocabulary  # noqa: E402

RULES = ("sum", "average", "scaled_row", "scaled")
BANDS = (0, 30, 100, 300, 1000, 3000, 10000, 30000)


def read_vocab_local(run_dir: Path) -> Vocabulary:
    import pyarrow.parquet as pq

    table = pq.read_table(run_dir / "vocab").sort_by("id")
    return Vocabulary(tuple(table.column("word").to_pylist()), table.column("count").to_numpy())


def interleave(slices):
    """P (ids, offsets) slices -> one, taking their sentences in turn."""
    lists = [[ids[o[i]:o[i + 1]] for i in range(len(o) - 1)] for ids, o in slices]
    return pack([s[k] for k in range(max(map(len, lists))) for s in lists if k < len(s)])


def one_round(parts, spec, plan, w_in, w_out, seed, task_scale=1.0):
    """-> {"in"/"out": (Combined of the P tasks, dense sequential update (V, d))}."""
    plan = dataclasses.replace(plan, seed=seed)
    acc = {m: DeltaAccumulator(*w_in.shape) for m in ("in", "out")}
    task_spec = dataclasses.replace(spec, lr_start=task_scale * spec.lr_start, lr_end=task_scale * spec.lr_end)
    for p, part in enumerate(parts):
        res = run_task([part], p, task_spec, plan, w_in, w_out)
        acc["in"].add(res.in_ids, res.in_delta)
        acc["out"].add(res.out_ids, res.out_delta)
    union = interleave([next(take_slice([part], spec.sync, spec.syncs_per_epoch)) for part in parts])
    seq_spec = dataclasses.replace(spec, sync=0, syncs_per_epoch=1, planned_words=spec.planned_words * len(parts))
    seq = run_task([union], 0, seq_spec, plan, w_in, w_out, sliced=True)
    out = {}
    for m, ids, delta in (("in", seq.in_ids, seq.in_delta), ("out", seq.out_ids, seq.out_delta)):
        dense = np.zeros(w_in.shape, dtype=np.float64)
        dense[ids] = delta
        out[m] = (acc[m].combined(m), dense)
    return out


def dense_update(combined, rule, shape, max_factor=1.0):
    out = np.zeros(shape, dtype=np.float64)
    out[combined.ids] = scale_rows(combined.total, rule_factors([combined], rule, max_factor)[0])
    return out


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("run_dir", type=Path, help="a run folder with vocab/ and corpus/ (jobs/build_vocab.py)")
    p.add_argument("--partitions", type=int, default=8)
    p.add_argument("--warm-rounds", type=int, default=48, help="rounds trained before the studied one")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--task-lr-scale", type=float, default=1.0, help="m: the tasks' learning-rate multiplier")
    p.add_argument("--state", type=Path, help="an .npz file: the warm parameters, saved on the first run with "
                   "these settings and read on the next ones")
    p.add_argument("--set", action="append", default=[], metavar="train.key=value",
                   help="a training setting (repeatable), e.g. train.loss=hierarchical_softmax")
    args = p.parse_args(argv)

    vocab = read_vocab_local(args.run_dir)
    parts = load_run_corpus(args.run_dir, args.partitions)
    cfg = load_config(None, [f"train.num_partitions={args.partitions}", f"train.seed={args.seed}", *args.set])
    t, plan = cfg.train, task_plan(cfg, vocab)
    w_in, w_out = init_params(len(vocab), t.dim, t.seed)
    specs = round_specs(t, int(sum(len(ids) for ids, _ in parts)), args.partitions)
    if args.state and args.state.exists():
        with np.load(args.state) as saved:
            w_in[...], w_out[...] = saved["w_in"], saved["w_out"]
    else:
        fit(t, local_runner(parts, plan), w_in, w_out, specs[:args.warm_rounds])
        if args.state:
            np.savez(args.state, w_in=w_in, w_out=w_out)
    k = args.warm_rounds
    spec = dataclasses.replace(specs[k], lr_start=learning_rate(t, k / len(specs)),
                               lr_end=learning_rate(t, (k + 1) / len(specs)))  # base learning rate
    scale = args.task_lr_scale
    first, second = (one_round(parts, spec, plan, w_in, w_out, seed, scale) for seed in (11, 12))
    rank = np.arange(len(vocab))
    for m in ("in", "out"):
        (c1, s1), (c2, s2) = first[m], second[m]
        print(f"w_{m}: per band of rank, for each rule: cosine(E rule, E sequential) / scale to match its length")
        print(f"  {'ranks':>13}  " + "".join(f"{r:>16}" for r in RULES))
        updates = {r: (dense_update(c1, r, w_in.shape, 1 / scale), dense_update(c2, r, w_in.shape, 1 / scale))
                   for r in RULES}
        for lo, hi in zip(BANDS, BANDS[1:] + (len(vocab),)):
            rows = (rank >= lo) & (rank < hi)
            dot = lambda a, b: float((a[rows] * b[rows]).sum())  # noqa: E731
            ss = dot(s1, s2)
            cells = []
            for r in RULES:
                r1, r2 = updates[r]
                rr, rs = dot(r1, r2), (dot(r1, s2) + dot(r2, s1)) / 2
                cells.append(f"{rs / np.sqrt(max(rr * ss, 1e-300)):7.2f} / {rs / max(rr, 1e-300):5.2f}")
            print(f"  {lo:>6}-{hi:<6}  " + "".join(f"{c:>16}" for c in cells))


if __name__ == "__main__":
    main()

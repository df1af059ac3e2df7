"""Stress matrix: the default training settings on corpora of other shapes than English prose, at every partition
count, against the 1-partition run of the same seed.

    python bench/stress.py [--shapes dense,walks,zipf,short,long] [--partitions 1,2,3,4,8,16] [--seeds 1,2,3]
                           [--scale 1.0] [--set train.key=value ...] [--out bench/results] [--workers 1]

Each cell trains in-process (w2vspark.train.local: the same tasks and combining as on Spark, bit for bit) on a corpus
from w2vspark.synthetic and reports the trained model's loss over the whole corpus (w2vspark.train.local.model_loss:
the training's own sampling, no update, the same draws in every cell), the last and the lowest round loss (as
the tasks measured them while training, at m x the learning rate), the divergence guard's rollbacks, and the
planted class purity@5 of the input vectors (the fraction of a word's 5 nearest labelled words that share its
class). A cell passes when its model loss is within 5% of the 1-partition run's and its purity is at least 0.95
and within 0.03 of the 1-partition run's. ``--scale`` multiplies the corpus sizes (the test suite runs 0.1).
Writes stress-<time>.json and a Markdown table.
"""
from __future__ import annotations

import argparse
import json
import math
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from w2vspark import synthetic  # noqa: E402
from w2vspark.config import load_config  # noqa: E402
from w2vspark.train.local import corpus_from_sentences, model_loss, split_round_robin, train_local  # noqa: E402
from w2vspark.train.loop import TrainingDiverged, init_params  # noqa: E402

LOSS_TOLERANCE = 0.05  # final loss within 5% of the 1-partition run's
MIN_PURITY = 0.95
PURITY_TOLERANCE = 0.03
EVAL_SEED = 7  # draws of the final model's loss (model_loss), the same for every cell


@dataclass(frozen=True)
class Shape:
    make: Callable[[float, int], synthetic.Synthetic]  # (scale, data seed) -> corpus
    settings: tuple[str, ...]  # --set overrides besides the defaults (the corpus' own needs: dim, min_count)
    what: str


SHAPES = {
    "dense": Shape(lambda s, seed: synthetic.planted_classes(tokens=int(300_000 * s), seed=seed),
                   ("train.dim=32", "train.epochs=3"),
                   "315 words: 12 classes of 25 + 15 glue words taking 40% of the tokens; sentences of 8-15"),
    "walks": Shape(lambda s, seed: synthetic.planted_walks(num_nodes=int(10_000 * s), num_communities=max(5, int(50 * s)),
                                                           seed=seed),
                   ("train.dim=64",),
                   "random walks of 20 steps, 4 per node, planted communities; every node about equally frequent"),
    "zipf": Shape(lambda s, seed: synthetic.zipf_text(tokens=int(1_000_000 * s), vocab_size=int(10_000 * s) or 1,
                                                      seed=seed),
                  ("train.dim=64",), "Zipf words in 10 topics + 50 function words; sentences of 5-25"),
    "short": Shape(lambda s, seed: synthetic.zipf_text(tokens=int(1_000_000 * s), vocab_size=int(10_000 * s) or 1,
                                                       min_length=2, max_length=3, seed=seed),
                   ("train.dim=64",), "as zipf, sentences of 2-3 tokens (baskets)"),
    "long": Shape(lambda s, seed: synthetic.zipf_text(tokens=int(1_000_000 * s), vocab_size=int(10_000 * s) or 1,
                                                      min_length=500, max_length=1500, seed=seed),
                  ("train.dim=64",), "as zipf, sentences of 500-1500 tokens (cut at 1000)"),
}


def run_cell(data: synthetic.Synthetic, settings: list[str], partitions: int, seed: int) -> dict:
    cfg = load_config(None, ["vocab.min_count=1", *settings, f"train.num_partitions={partitions}",
                             f"train.seed={seed}"])
    vocab, sentences = corpus_from_sentences(data.sentences, cfg)
    records, events = [], []
    parts = split_round_robin(sentences, partitions)
    w_in, w_out = init_params(len(vocab), cfg.train.dim, cfg.train.seed)
    t0 = time.perf_counter()
    try:
        model = train_local(cfg, parts, vocab, on_round=records.append, on_rollback=events.append,
                            params=(w_in, w_out))
    except TrainingDiverged as exc:  # a finding of the matrix, not the end of it
        return {"partitions": partitions, "seed": seed, "final_loss": math.nan, "min_loss": math.nan,
                "last_round_loss": math.nan, "rollbacks": len(events), "purity": 0.0,
                "seconds": time.perf_counter() - t0,
                "words": int(sum(len(s) for s in sentences)) * cfg.train.epochs, "vocab_size": len(vocab),
                "diverged": str(exc).split(";")[0]}
    seconds = time.perf_counter() - t0
    kept = {r["round"]: r for r in records if r["pairs"]}  # a rolled-back round's record is replaced by its re-run
    losses = [kept[k]["loss"] for k in sorted(kept)]
    # the trained model's loss over the whole corpus (same sampling seed in every cell of a shape): the last
    # round's loss is measured by tasks training at m x the learning rate, which differs with P
    final = model_loss(cfg, vocab, [split_round_robin(sentences, 1)[0]], w_in, w_out, seed=EVAL_SEED)
    return {"partitions": partitions, "seed": seed, "final_loss": final, "last_round_loss": losses[-1],
            "min_loss": min(losses),
            "rollbacks": len(events), "purity": synthetic.class_purity(vocab.words, model.vectors, data.labels),
            "seconds": seconds, "words": int(sum(len(s) for s in sentences)) * cfg.train.epochs,
            "vocab_size": len(vocab)}


def judge(cells: list[dict]) -> list[dict]:
    """Mark every cell against the 1-partition cell of its shape and seed."""
    base = {(c["shape"], c["seed"]): c for c in cells if c["partitions"] == 1}
    for c in cells:
        ref = base.get((c["shape"], c["seed"]))
        problems = [c["diverged"]] if c.get("diverged") else []
        if ref is not None and c["final_loss"] > ref["final_loss"] * (1 + LOSS_TOLERANCE):
            problems.append(f"loss {c['final_loss']:.3f} > {1 + LOSS_TOLERANCE:g} x {ref['final_loss']:.3f}")
        if c["purity"] < MIN_PURITY:
            problems.append(f"purity {c['purity']:.3f} < {MIN_PURITY}")
        if ref is not None and c["purity"] < ref["purity"] - PURITY_TOLERANCE:
            problems.append(f"purity {c['purity']:.3f} more than {PURITY_TOLERANCE} below {ref['purity']:.3f}")
        c["problems"] = problems
    return cells


def run_matrix(shapes: list[str], partitions: list[int], seeds: list[int], scale: float,
               settings: list[str] = (), log: Callable[[str], None] = print, workers: int = 1) -> list[dict]:
    """Every cell of shapes x seeds x partitions (1 always included), judged. ``workers`` > 1 trains that many
    cells at a time in forked processes (each cell is a pure function of its inputs, so the results are the same;
    only the cells' words/s then share the cores)."""
    jobs = []
    for name in shapes:
        shape = SHAPES[name]
        data = shape.make(scale, 0)
        jobs += [(name, data, [*shape.settings, *settings], p, seed)
                 for seed in seeds for p in sorted(set(partitions) | {1})]
    if workers > 1 and len(jobs) > 1:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        with ProcessPoolExecutor(min(workers, len(jobs)), mp_context=multiprocessing.get_context("fork")) as pool:
            futures = [pool.submit(run_cell, data, cell_settings, p, seed) for _, data, cell_settings, p, seed in jobs]
            results = [f.result() for f in futures]
    else:
        results = (run_cell(data, cell_settings, p, seed) for _, data, cell_settings, p, seed in jobs)
    cells = []
    for (name, *_), result in zip(jobs, results):
        cells.append({"shape": name, **result})
        log(json.dumps(cells[-1]))
    return judge(cells)


def table(cells: list[dict]) -> str:
    lines = ["| shape | P | seed | model loss | last round's loss | lowest round loss | rollbacks | purity@5 | words/s "
             "| verdict |", "|---|---|---|---|---|---|---|---|---|---|"]
    for c in cells:
        verdict = "ok" if not c["problems"] else "; ".join(c["problems"])
        lines.append(f"| {c['shape']} | {c['partitions']} | {c['seed']} | {c['final_loss']:.4f} | "
                     f"{c['last_round_loss']:.4f} | {c['min_loss']:.4f} | {c['rollbacks']} | {c['purity']:.3f} | "
                     f"{c['words'] / c['seconds'] / 1000:.0f}k | {verdict} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--shapes", default=",".join(SHAPES))
    p.add_argument("--partitions", default="1,2,3,4,8,16")
    p.add_argument("--seeds", default="1,2,3")
    p.add_argument("--scale", type=float, default=1.0)
    p.add_argument("--set", action="append", default=[], help="train.key=value for every cell")
    p.add_argument("--out", default=str(ROOT / "bench" / "results"))
    p.add_argument("--workers", type=int, default=1, help="cells trained at a time (processes); 1 for timings")
    a = p.parse_args(argv)
    shapes = [s for s in a.shapes.split(",") if s]
    unknown = [s for s in shapes if s not in SHAPES]
    if unknown:
        p.error(f"unknown shape(s) {unknown}; known: {', '.join(SHAPES)}")
    cells = run_matrix(shapes, [int(x) for x in a.partitions.split(",")], [int(x) for x in a.seeds.split(",")],
                       a.scale, a.set, workers=a.workers)
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    (out / f"stress-{stamp}.json").write_text(json.dumps(cells, indent=1) + "\n")
    text = table(cells)
    (out / f"stress-{stamp}.md").write_text(text + "\n")
    print(text)
    failed = [c for c in cells if c["problems"]]
    print(f"{len(cells) - len(failed)} of {len(cells)} cells pass")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

"""Graph benchmark: node embeddings from random walks, w2vspark against gensim and Spark MLlib on the same walks.

    python bench/graph_bench.py [--nodes 100000] [--communities 50] [--per-node 4] [--length 20]
                                [--epochs 1,5] [--partitions 2] [--gensim-workers 2] [--mllib-partitions 2]
                                [--mllib-epochs 1] [--label-sample N] [--steps auto] [--reuse] [--work DIR]

A planted-community graph (w2vspark.graphs) -> jobs/walks.py (10% of the edges held out) -> the same walks train
w2vspark (jobs/build_vocab.py + jobs/train.py), gensim (skip-gram, negative sampling, the walks in memory) and
Spark MLlib's Word2Vec, all with dim 64, window 5, 5 negatives, min_count 1, sample 1e-3, lr 0.025. Every model
is scored by the same code (w2vspark.graph_eval): node classification micro/macro-F1 and link prediction AUC.
``--steps`` trains w2vspark once per value of train.step given (e.g. ``minibatch,sequential``) on the same walks;
``--set train.key=value`` adds a training setting to every w2vspark run (and to its name).
Words/s = walk tokens x epochs / training seconds for every system. The walk job's seconds per million edges
are reported. Writes results/graph-bench-<time>.json and .md.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from run_bench import run_measured  # noqa: E402

from w2vspark.graphs import planted_graph, write_graph  # noqa: E402

SETTINGS = dict(dim=64, window=5, negatives=5, min_count=1, sample=1e-3, lr=0.025, min_lr=0.0001)
TRAIN_SETS = ["--set", f"train.dim={SETTINGS['dim']}", "--set", f"train.window={SETTINGS['window']}",
              "--set", f"train.num_negatives={SETTINGS['negatives']}", "--set", f"vocab.min_count={SETTINGS['min_count']}",
              "--set", f"train.sample={SETTINGS['sample']}", "--set", f"train.lr={SETTINGS['lr']}",
              "--set", f"train.min_lr={SETTINGS['min_lr']}", "--set", "train.checkpoint_every=0"]


def submit(cores: int) -> list[str]:
    return [str(ROOT / "spark-submit.sh"), "--master", f"local[{cores}]", "--driver-memory", "6g"]


def gensim_script(walks: Path, model_dir: Path, epochs: int, workers: int, timing: Path) -> str:
    s = SETTINGS
    return f"""
import json, time
import pyarrow.parquet as pq
from gensim.models import Word2Vec
from w2vspark.model import Word2VecModel
walks = pq.read_table({str(walks)!r}).column("walk").to_pylist()
t0 = time.perf_counter()
m = Word2Vec(vector_size={s['dim']}, window={s['window']}, min_count={s['min_count']}, sg=1, hs=0,
             negative={s['negatives']}, sample={s['sample']}, alpha={s['lr']}, min_alpha={s['min_lr']},
             workers={workers}, seed=1)
m.build_vocab(walks)
t1 = time.perf_counter()
m.train(walks, total_examples=m.corpus_count, epochs={epochs})
t2 = time.perf_counter()
Word2VecModel(list(m.wv.index_to_key), m.wv.vectors).save({str(model_dir)!r}, overwrite=True)
json.dump({{"vocab_seconds": t1 - t0, "train_seconds": t2 - t1}}, open({str(timing)!r}, "w"))
"""


def mllib_script(walks: Path, model_dir: Path, epochs: int, partitions: int, timing: Path) -> str:
    s = SETTINGS
    return f"""
import json, time
import numpy as np
from pyspark.sql import SparkSession
from pyspark.ml.feature import Word2Vec
from w2vspark.model import Word2VecModel
spark = SparkSession.builder.getOrCreate()
df = spark.read.parquet({str(walks)!r}).cache()
df.count()
t0 = time.perf_counter()
model = Word2Vec(vectorSize={s['dim']}, windowSize={s['window']}, minCount={s['min_count']}, maxIter={epochs},
                 stepSize={s['lr']}, numPartitions={partitions}, seed=1, inputCol="walk").fit(df)
t1 = time.perf_counter()
rows = model.getVectors().collect()
Word2VecModel([r.word for r in rows], np.array([r.vector.toArray() for r in rows], dtype=np.float32)).save(
    {str(model_dir)!r}, overwrite=True)
json.dump({{"train_seconds": t1 - t0}}, open({str(timing)!r}, "w"))
spark.stop()
"""


def eval_script(models: dict, labels: Path, pairs: Path, result: Path) -> str:
    return f"""
import json
from pyspark.sql import SparkSession
from w2vspark.graph_eval import link_prediction, node_classification, read_labels
from w2vspark.io.hadoop import HadoopFS
from w2vspark.io.model_files import model_rows
spark = SparkSession.builder.getOrCreate()
labels = read_labels(spark, HadoopFS(spark), {str(labels)!r}).cache()
out = {{}}
for name, folder in {json.dumps({k: str(v) for k, v in models.items()})}.items():
    dim = json.load(open(folder + "/w2vspark.json"))["dim"]
    out[name] = {{"node_classification": node_classification(spark, folder, labels),
                 "link_prediction": link_prediction(spark, model_rows(spark, folder), dim, {str(pairs)!r})}}
json.dump(out, open({str(result)!r}, "w"), indent=2)
spark.stop()
"""


def write_label_sample(graph: Path, community, count: int) -> None:
    """labels_sample/: the labels of ``count`` nodes drawn without replacement (seed 0): node classification on a
    large graph scored on a sample (its micro-F1's standard error about sqrt(F1 (1 - F1) / (count / 2)))."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    ids = np.sort(np.random.default_rng(0).choice(len(community), size=min(count, len(community)), replace=False))
    (graph / "labels_sample").mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.table({"id": ids.astype(np.int64), "label": [f"c{c}" for c in community[ids].tolist()]}),
                   graph / "labels_sample" / "part-0.parquet")


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--nodes", type=int, default=100_000)
    p.add_argument("--communities", type=int, default=50)
    p.add_argument("--degree", type=float, default=10.0)
    p.add_argument("--mixing", type=float, default=0.3)
    p.add_argument("--per-node", type=int, default=4)
    p.add_argument("--length", type=int, default=20)
    p.add_argument("--p", type=float, default=1.0)
    p.add_argument("--q", type=float, default=1.0)
    p.add_argument("--epochs", default="1,5")
    p.add_argument("--partitions", default="2", help="w2vspark partition counts, comma-separated")
    p.add_argument("--gensim-workers", type=int, default=2, help="0 skips gensim")
    p.add_argument("--mllib-partitions", default="2", help="comma-separated; '' skips MLlib")
    p.add_argument("--mllib-epochs", default="1", help="the epoch counts MLlib runs (it is slow); '' for all")
    p.add_argument("--cores", type=int, default=2)
    p.add_argument("--steps", default="auto", help="w2vspark's train.step values, comma-separated (one run each)")
    p.add_argument("--set", action="append", default=[], metavar="train.key=value",
                   help="more w2vspark training settings (repeatable); the run's name shows them")
    p.add_argument("--label-sample", type=int, default=0,
                   help="classify this many nodes drawn at random (seed 0) instead of all; 0 = all")
    p.add_argument("--reuse", action="store_true",
                   help="keep the graph, walks and vocabulary already in --work when they were made with the same "
                        "graph and walk settings (a long run resumed, or more epochs on the same walks)")
    p.add_argument("--work", default=str(ROOT / "bench" / "cache" / "graph-work"))
    p.add_argument("--out", default=str(ROOT / "bench" / "results"))
    args = p.parse_args(argv)
    work, out = Path(args.work).resolve(), Path(args.out).resolve()
    work.mkdir(parents=True, exist_ok=True)
    out.mkdir(parents=True, exist_ok=True)
    epochs_list = [int(e) for e in args.epochs.split(",") if e]
    extra_sets = [arg for item in args.set for arg in ("--set", item)]
    set_suffix = "".join("-" + item.split(".")[-1].replace("=", "_") for item in args.set)  # a folder name
    set_label = "".join(f" {item.split('.')[-1]}" for item in args.set)

    graph, run = work / "graph", work / "run"
    made_with = {k: getattr(args, k) for k in ("nodes", "communities", "degree", "mixing", "per_node", "length",
                                               "p", "q", "label_sample")}
    done_file = work / "walks_run.json"  # the settings and timings of the graph, walks and vocabulary in work/
    done = json.loads(done_file.read_text()) if args.reuse and done_file.exists() else {}
    common = ["--config", str(ROOT / "conf" / "graph.toml"), "--set", f"output.dir={run}",
              "--set", "output.overwrite=true", "--set", f"input.path={run / 'walks'}"]
    if done.get("settings") == made_with:
        walk_s, walk_peaks, vocab_s = done["walk_s"], done["walk_peaks"], done["vocab_s"]
        print(f"reusing the graph, walks and vocabulary in {work}", flush=True)
    else:
        done_file.unlink(missing_ok=True)
        src, dst, community = planted_graph(args.nodes, args.communities, args.degree, args.mixing, seed=0)
        write_graph(graph, src, dst, community)
        if args.label_sample:
            write_label_sample(graph, community, args.label_sample)
        walk_s, walk_peaks = run_measured(submit(args.cores) + [str(ROOT / "jobs" / "walks.py"), *common,
                                          "--set", f"walks.edges={graph / 'edges'}",
                                          "--set", f"walks.per_node={args.per_node}",
                                          "--set", f"walks.length={args.length}", "--set", f"walks.p={args.p}",
                                          "--set", f"walks.q={args.q}"], work / "walks.log")
        vocab_s, _ = run_measured(submit(args.cores) + [str(ROOT / "jobs" / "build_vocab.py"), *common, *TRAIN_SETS],
                                  work / "vocab.log")
        done_file.write_text(json.dumps({"settings": made_with, "walk_s": walk_s, "walk_peaks": walk_peaks,
                                         "vocab_s": vocab_s}))
    walk_stats = json.loads((run / "walks_stats.json").read_text())
    print(json.dumps({"walks": walk_stats, "wall_seconds": walk_s}), flush=True)
    tokens = walk_stats["tokens"]

    rows, models = [], {}
    for epochs in epochs_list:
        if args.gensim_workers:
            folder, timing = work / f"gensim-e{epochs}", work / "gensim.json"
            script = work / "gensim_run.py"
            script.write_text(gensim_script(run / "walks", folder, epochs, args.gensim_workers, timing))
            run_measured([sys.executable, str(script)], work / f"gensim-e{epochs}.log")
            t = json.loads(timing.read_text())["train_seconds"]
            rows.append({"system": "gensim", "partitions": args.gensim_workers, "epochs": epochs,
                         "train_seconds": t, "words_per_sec": tokens * epochs / t})
            models[f"gensim-e{epochs}"] = folder
        mllib_epochs = [int(e) for e in args.mllib_epochs.split(",") if e] or epochs_list
        for mp in [int(x) for x in args.mllib_partitions.split(",") if x] if epochs in mllib_epochs else []:
            folder, timing = work / f"mllib-p{mp}-e{epochs}", work / "mllib.json"
            script = work / "mllib_run.py"
            script.write_text(mllib_script(run / "walks", folder, epochs, mp, timing))
            run_measured(submit(args.cores) + [str(script)], work / f"mllib-p{mp}-e{epochs}.log")
            t = json.loads(timing.read_text())["train_seconds"]
            rows.append({"system": "mllib", "partitions": mp, "epochs": epochs, "train_seconds": t,
                         "words_per_sec": tokens * epochs / t})
            models[f"mllib-p{mp}-e{epochs}"] = folder
        for partitions, step in [(int(x), st) for x in args.partitions.split(",") if x
                                 for st in args.steps.split(",") if st]:
            name = f"w2vspark-p{partitions}-e{epochs}" + ("" if step == "auto" else f"-{step}") + set_suffix
            train_dir = work / name
            train_dir.mkdir(exist_ok=True)
            for item in ("vocab", "corpus", "corpus_stats.json"):
                if not (train_dir / item).exists():
                    (train_dir / item).symlink_to(run / item)
            run_measured(submit(args.cores) + [str(ROOT / "jobs" / "train.py"), *common, *TRAIN_SETS,
                                               "--set", f"output.dir={train_dir}", "--set", f"train.epochs={epochs}",
                                               "--set", f"train.num_partitions={partitions}",
                                               "--set", f"train.step={step}", *extra_sets], work / f"{name}.log")
            metrics = [json.loads(line) for line in (train_dir / "metrics.jsonl").read_text().splitlines()]
            t = sum(m["seconds"] for m in metrics if "event" not in m)
            rows.append({"system": "w2vspark" + ("" if step == "auto" else f" ({step})") + set_label,
                         "partitions": partitions,
                         "epochs": epochs, "train_seconds": t, "words_per_sec": tokens * epochs / t})
            models[name] = train_dir / "model"

    result_file = work / "graph_eval.json"
    script = work / "graph_eval_run.py"
    labels = graph / ("labels_sample" if args.label_sample else "labels")
    script.write_text(eval_script(models, labels, run / "link_pairs", result_file))
    run_measured(submit(args.cores) + [str(script)], work / "eval.log")
    scores = json.loads(result_file.read_text())
    for row, name in zip(rows, models):
        nc, lp = scores[name]["node_classification"], scores[name]["link_prediction"]
        row.update(micro_f1=nc["micro_f1"], macro_f1=nc["macro_f1"], auc=lp["auc"], auc_centered=lp["auc_centered"])
        print(json.dumps(row), flush=True)

    stamp = time.strftime("%Y%m%d-%H%M%S")
    gensim_speed = {r["epochs"]: r["words_per_sec"] for r in rows if r["system"] == "gensim"}
    lines = [f"Graph: {args.nodes:,} nodes, {walk_stats['edges']:,} edges, {args.communities} communities, mixing "
             f"{args.mixing}; walks: {args.per_node} per node x {args.length} (p={args.p}, q={args.q}), "
             f"{tokens:,} tokens, walk job {walk_stats['seconds']:.0f} s "
             f"({walk_stats['seconds_per_million_edges']:.0f} s per million edges); vocabulary job {vocab_s:.0f} s", "",
             "| system | partitions | epochs | train s | words/s | x gensim | micro-F1 | macro-F1 | link AUC | "
             "centred AUC |", "|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        ratio = r["words_per_sec"] / gensim_speed[r["epochs"]] if r["epochs"] in gensim_speed else float("nan")
        lines.append(f"| {r['system']} | {r['partitions']} | {r['epochs']} | {r['train_seconds']:.1f} | "
                     f"{r['words_per_sec']:,.0f} | {ratio:.2f} | {r['micro_f1']:.3f} | {r['macro_f1']:.3f} | "
                     f"{r['auc']:.3f} | {r['auc_centered']:.3f} |")
    table = "\n".join(lines) + "\n"
    (out / f"graph-bench-{stamp}.json").write_text(json.dumps(
        {"args": vars(args), "settings": SETTINGS, "walks": walk_stats, "walk_wall_seconds": walk_s,
         "walk_peak_rss_bytes": walk_peaks["total"], "rows": rows}, indent=2) + "\n")
    (out / f"graph-bench-{stamp}.md").write_text(table)
    print(table)


if __name__ == "__main__":
    main()

"""Peer benchmark: w2vspark against gensim and Spark MLlib on one corpus, in one run, on this machine.

    python bench/run_bench.py --corpus FILE [--runs 1:scaled:4,2:scaled:4,...] [--gensim-workers 2]
                              [--mllib-partitions 2] [--epochs 5] [--cores 2] [--out bench/results]

Every system gets the same settings (dim 100, window 5, min_count 5, 5 negatives, sample 1e-3, lr 0.025) and
is scored with w2vspark.evaluate on the same data. Training words/s = corpus tokens x epochs / training
seconds for every system (the same base for all). Writes results/bench-<time>.json and a Markdown table.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from w2vspark.evaluate import evaluate_model  # noqa: E402
from w2vspark.model import Word2VecModel  # noqa: E402

SETTINGS = dict(dim=100, window=5, min_count=5, negatives=5, sample=1e-3, lr=0.025, min_lr=0.0001)


class PeakRSS:
    """Peak resident memory of a process tree (sampled every 0.5 s from /proc), in bytes."""

    def __init__(self, pid: int):
        self.pid, self.peak, self._stop = pid, 0, threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _tree(self):
        pids, frontier = {self.pid}, [self.pid]
        while frontier:
            p = frontier.pop()
            try:
                children = Path(f"/proc/{p}/task/{p}/children").read_text().split()
            except OSError:
                continue
            for c in map(int, children):
                if c not in pids:
                    pids.add(c)
                    frontier.append(c)
        return pids

    def _run(self):
        while not self._stop.is_set():
            total = 0
            for p in self._tree():
                try:
                    for line in Path(f"/proc/{p}/status").read_text().splitlines():
                        if line.startswith("VmRSS:"):
                            total += int(line.split()[1]) * 1024
                except OSError:
                    pass
            self.peak = max(self.peak, total)
            self._stop.wait(0.5)

    def stop(self) -> int:
        self._stop.set()
        self._thread.join()
        return self.peak


def run_measured(cmd: list[str], log_path: Path) -> tuple[float, int]:
    t0 = time.perf_counter()
    with open(log_path, "w") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT)
        mem = PeakRSS(proc.pid)
        code = proc.wait()
        peak = mem.stop()
    if code != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed (exit {code}); see {log_path}")
    return time.perf_counter() - t0, peak


def count_tokens(corpus: str) -> int:
    n = 0
    with open(corpus, encoding="utf-8", errors="replace") as f:
        for line in f:
            n += len(line.split())
    return n


def scores_row(model: Word2VecModel) -> dict:
    s = evaluate_model(model)
    a = s["analogy"]["total"]
    return {"ws353": s["ws353"]["spearman"], "ws353_coverage": s["ws353"]["coverage"],
            "simlex": s["simlex999"]["spearman"], "simlex_coverage": s["simlex999"]["coverage"],
            "analogy": a["accuracy"], "analogy_coverage": a["coverage"]}


def bench_w2vspark(corpus: str, work: Path, runs: list[tuple[int, str, int]], epochs: int, cores: int,
                   tokens: int) -> list[dict]:
    submit = [str(ROOT / "spark-submit.sh"), "--master", f"local[{cores}]"]
    base = work / "w2vspark-base"
    vocab_s, vocab_peak = run_measured(submit + [str(ROOT / "jobs" / "build_vocab.py"), "--set", f"input.path={corpus}",
                                                 "--set", f"output.dir={base}", "--set", "output.overwrite=true"],
                                       work / "w2vspark-vocab.log")
    out = []
    for partitions, combine, syncs in runs:
        run = work / f"w2vspark-p{partitions}-{combine}-s{syncs}"
        run.mkdir(parents=True, exist_ok=True)
        for name in ("vocab", "corpus", "corpus_stats.json"):
            if not (run / name).exists():
                os.symlink(base / name, run / name)
        wall, peak = run_measured(submit + [str(ROOT / "jobs" / "train.py"), "--set", f"output.dir={run}",
                                            "--set", "output.overwrite=true", "--set", f"train.epochs={epochs}",
                                            "--set", f"train.num_partitions={partitions}",
                                            "--set", f"train.combine={combine}",
                                            "--set", f"train.syncs_per_epoch={syncs}",
                                            "--set", "train.checkpoint_every=0"], run.with_suffix(".log"))
        metrics = [json.loads(l) for l in (run / "metrics.jsonl").read_text().splitlines()]
        train_s = sum(m["seconds"] for m in metrics)
        model = Word2VecModel.load(run / "model")
        row = {"system": "w2vspark", "partitions": partitions, "combine": combine, "syncs_per_epoch": syncs,
               "train_seconds": train_s, "total_seconds": vocab_s + wall, "vocab_seconds": vocab_s,
               "words_per_sec": tokens * epochs / train_s, "peak_rss_bytes": max(peak, vocab_peak),
               "model_bytes": 2 * len(model.words) * model.dim * 4, "vocab_size": len(model.words),
               "final_loss": metrics[-1]["loss"], **scores_row(model)}
        print(json.dumps(row), flush=True)
        out.append(row)
    return out


def bench_gensim(corpus: str, work: Path, workers: int, epochs: int, tokens: int) -> dict:
    script = work / "gensim_run.py"
    script.write_text(f"""
import json, time, sys
from gensim.models import Word2Vec
from gensim.models.word2vec import LineSentence
t0 = time.perf_counter()
m = Word2Vec(vector_size={SETTINGS['dim']}, window={SETTINGS['window']}, min_count={SETTINGS['min_count']}, sg=1, hs=0,
             negative={SETTINGS['negatives']}, sample={SETTINGS['sample']}, alpha={SETTINGS['lr']},
             min_alpha={SETTINGS['min_lr']}, workers={workers}, seed=1)
m.build_vocab(LineSentence({corpus!r}))
t1 = time.perf_counter()
m.train(LineSentence({corpus!r}), total_examples=m.corpus_count, epochs={epochs})
t2 = time.perf_counter()
m.wv.save_word2vec_format({str(work / 'gensim.bin')!r}, binary=True)
json.dump({{"vocab_seconds": t1 - t0, "train_seconds": t2 - t1}}, open({str(work / 'gensim.json')!r}, "w"))
""")
    wall, peak = run_measured([sys.executable, str(script)], work / "gensim.log")
    times = json.loads((work / "gensim.json").read_text())
    from gensim.models import KeyedVectors
    kv = KeyedVectors.load_word2vec_format(str(work / "gensim.bin"), binary=True)
    model = Word2VecModel(kv.index_to_key, kv.vectors)
    row = {"system": "gensim", "partitions": workers, "train_seconds": times["train_seconds"],
           "total_seconds": wall, "vocab_seconds": times["vocab_seconds"],
           "words_per_sec": tokens * epochs / times["train_seconds"], "peak_rss_bytes": peak,
           "vocab_size": len(model.words), **scores_row(model)}
    print(json.dumps(row), flush=True)
    return row


def bench_mllib(corpus: str, work: Path, partitions: int, epochs: int, cores: int, tokens: int) -> dict:
    script = work / "mllib_run.py"
    out_dir = work / f"mllib-p{partitions}"
    script.write_text(f"""
import json, time
from pyspark.sql import SparkSession, functions as F
from pyspark.ml.feature import Word2Vec
spark = SparkSession.builder.getOrCreate()
t0 = time.perf_counter()
df = spark.read.text({corpus!r}).select(F.split("value", " ").alias("tokens")).cache()
df.count()
t1 = time.perf_counter()
w2v = Word2Vec(vectorSize={SETTINGS['dim']}, windowSize={SETTINGS['window']}, minCount={SETTINGS['min_count']},
               maxIter={epochs}, stepSize={SETTINGS['lr']}, numPartitions={partitions}, seed=1, inputCol="tokens")
model = w2v.fit(df)
t2 = time.perf_counter()
model.write().overwrite().save({str(out_dir)!r})
json.dump({{"read_seconds": t1 - t0, "train_seconds": t2 - t1}}, open({str(work / 'mllib.json')!r}, "w"))
spark.stop()
""")
    submit = [str(ROOT / "spark-submit.sh"), "--master", f"local[{cores}]", "--driver-memory", "6g", str(script)]
    wall, peak = run_measured(submit, work / f"mllib-p{partitions}.log")
    times = json.loads((work / "mllib.json").read_text())
    import pyarrow.parquet as pq
    table = pq.read_table(out_dir / "data")
    rows = sorted(zip(table.column("word").to_pylist(), table.column("vector").to_pylist()))
    import numpy as np
    counts = {}
    model = Word2VecModel([w for w, _ in rows], np.array([v for _, v in rows], dtype=np.float32))
    # MLlib stores words unordered: order them by corpus frequency so that the top-30k restriction matches
    with open(corpus, encoding="utf-8", errors="replace") as f:
        for line in f:
            for w in line.split():
                counts[w] = counts.get(w, 0) + 1
    order = sorted(range(len(model.words)), key=lambda i: (-counts.get(model.words[i], 0), model.words[i]))
    model = Word2VecModel([model.words[i] for i in order], model.vectors[order])
    row = {"system": "mllib", "partitions": partitions, "train_seconds": times["train_seconds"],
           "total_seconds": wall, "words_per_sec": tokens * epochs / times["train_seconds"], "peak_rss_bytes": peak,
           "vocab_size": len(model.words), **scores_row(model)}
    print(json.dumps(row), flush=True)
    return row


def markdown(rows: list[dict]) -> str:
    gensim = next((r for r in rows if r["system"] == "gensim"), None)
    mllib = next((r for r in rows if r["system"] == "mllib"), None)
    head = ("| system | partitions / workers | rule | syncs | words/s | × gensim | × MLlib | WS353 | SimLex | analogy "
            "| train s | total s | peak RSS GB |\n|---|---|---|---|---|---|---|---|---|---|---|---|---|\n")
    body = []
    for r in rows:
        vs_g = f"{r['words_per_sec'] / gensim['words_per_sec']:.2f}" if gensim else ""
        vs_m = f"{r['words_per_sec'] / mllib['words_per_sec']:.2f}" if mllib else ""
        body.append(f"| {r['system']} | {r['partitions']} | {r.get('combine', '')} | {r.get('syncs_per_epoch', '')} "
                    f"| {r['words_per_sec'] / 1000:.0f}k | {vs_g} | {vs_m} | {r['ws353']:.3f} | {r['simlex']:.3f} "
                    f"| {r['analogy']:.1%} | {r['train_seconds']:.0f} | {r['total_seconds']:.0f} "
                    f"| {r['peak_rss_bytes'] / 2**30:.2f} |")
    return head + "\n".join(body) + "\n"


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--corpus", required=True)
    p.add_argument("--runs", default="1:scaled:4,2:scaled:4,4:scaled:4,8:scaled:4",
                   help="w2vspark runs as PARTITIONS:COMBINE:SYNCS_PER_EPOCH, comma-separated ('' for none)")
    p.add_argument("--gensim-workers", type=int, default=2, help="0 skips gensim")
    p.add_argument("--mllib-partitions", default="2", help="comma-separated; '' skips MLlib")
    p.add_argument("--epochs", type=int, default=5)
    p.add_argument("--cores", type=int, default=2)
    p.add_argument("--work", default=str(ROOT / "bench" / "cache" / "work"))
    p.add_argument("--out", default=str(ROOT / "bench" / "results"))
    args = p.parse_args(argv)
    work, out = Path(args.work), Path(args.out)
    work.mkdir(parents=True, exist_ok=True)
    out.mkdir(parents=True, exist_ok=True)
    tokens = count_tokens(args.corpus)
    runs = [(int(a), b, int(c)) for a, b, c in (r.split(":") for r in args.runs.split(",") if r)]
    rows = []
    if args.gensim_workers:
        rows.append(bench_gensim(args.corpus, work, args.gensim_workers, args.epochs, tokens))
    for mp in [int(x) for x in args.mllib_partitions.split(",") if x]:
        rows.append(bench_mllib(args.corpus, work, mp, args.epochs, args.cores, tokens))
    rows += bench_w2vspark(args.corpus, work, runs, args.epochs, args.cores, tokens)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    result = {"corpus": args.corpus, "tokens": tokens, "epochs": args.epochs, "cores": args.cores,
              "settings": SETTINGS, "rows": rows, "max_rss_self": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}
    (out / f"bench-{stamp}.json").write_text(json.dumps(result, indent=2) + "\n")
    table = markdown(rows)
    (out / f"bench-{stamp}.md").write_text(table)
    print(table)


if __name__ == "__main__":
    main()

"""Peer benchmark: w2vspark against gensim and Spark MLlib on one corpus, in one run, on this machine.

    python bench/run_bench.py [--corpus FILE] [--runs 1:scaled:4,2:scaled:4,...] [--gensim-workers 2]
                              [--mllib-partitions 2] [--epochs 5] [--cores 2] [--out bench/results]
                              [--model skipgram|cbow] [--loss neg_sampling|hierarchical_softmax]
                              [--set train.key=value ...]

Every system gets the same settings (dim 100, window 5, min_count 5, 5 negatives, sample 1e-3, lr 0.025) and
is scored with w2vspark.evaluate on the same data. Training words/s = corpus tokens x epochs / training
seconds for every system (the same base for all). Peak memory is sampled from /proc for the whole process
tree and per role (Spark JVM, the job's Python, Python workers); a do-nothing Spark application gives the
baseline. Writes results/bench-<time>.json, a Markdown table and bench-<time>-scaling.png (words/s and
analogy accuracy against partitions). ``--model`` and ``--loss`` choose the architecture for w2vspark and gensim
alike (gensim's sg and hs/negative); Spark MLlib only trains skip-gram with hierarchical softmax and runs
whatever they are. ``--set`` passes further settings to w2vspark's training runs only (their run folders and
rows are named by them, so runs with and without a setting can share a results file).
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

from w2vspark.config import COMBINE_RULES, TrainConfig  # noqa: E402
from w2vspark.evaluate import evaluate_model  # noqa: E402
from w2vspark.model import Word2VecModel  # noqa: E402

SETTINGS = dict(dim=100, window=5, min_count=5, negatives=5, sample=1e-3, lr=0.025, min_lr=0.0001)


def process_role(pid: int) -> str:
    """jvm (the Spark driver; in local mode it also holds the executors' JVM side), python-workers
    (pyspark.daemon and the workers it forks: the tasks' numpy), or python-main (the job's own Python, which
    is the driver's Python side for Spark jobs and the whole trainer for gensim; also the launcher shell)."""
    try:
        cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return "gone"
    if "java" in cmd.split(" ", 1)[0]:
        return "jvm"
    if "pyspark.daemon" in cmd or "pyspark.worker" in cmd or "pyspark/daemon" in cmd:
        return "python-workers"
    return "python-main"


class PeakRSS:
    """Peak resident memory of a process tree (sampled every 0.5 s from /proc), in bytes: in total and per
    role (see ``process_role``); each role's peak is its own, so they need not add up to the total's."""

    def __init__(self, pid: int):
        self.pid, self.peak, self.roles, self._stop = pid, 0, {}, threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _tree(self):
        """The pid and all its descendants: a JVM starts its children from many threads, and
        /proc/PID/task/TID/children lists only the children of thread TID, so every thread is read."""
        pids, frontier = {self.pid}, [self.pid]
        while frontier:
            p = frontier.pop()
            children = []
            for task in Path(f"/proc/{p}/task").glob("*"):
                try:
                    children += (task / "children").read_text().split()
                except OSError:
                    continue
            for c in map(int, children):
                if c not in pids:
                    pids.add(c)
                    frontier.append(c)
        return pids

    def _run(self):
        while not self._stop.is_set():
            total, by_role = 0, {}
            for p in self._tree():
                try:
                    for line in Path(f"/proc/{p}/status").read_text().splitlines():
                        if line.startswith("VmRSS:"):
                            rss = int(line.split()[1]) * 1024
                            role = process_role(p)  # read every time: spark-submit's shell execs the JVM
                            total += rss
                            by_role[role] = by_role.get(role, 0) + rss
                except OSError:
                    pass
            self.peak = max(self.peak, total)
            for role, rss in by_role.items():
                self.roles[role] = max(self.roles.get(role, 0), rss)
            self._stop.wait(0.5)

    def stop(self) -> int:
        self._stop.set()
        self._thread.join()
        return self.peak


def run_measured(cmd: list[str], log_path: Path) -> tuple[float, dict]:
    """Run a command -> (wall seconds, {"total": peak bytes, role: peak bytes, ...})."""
    t0 = time.perf_counter()
    with open(log_path, "w") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT)
        mem = PeakRSS(proc.pid)
        code = proc.wait()
        peak = mem.stop()
    if code != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed (exit {code}); see {log_path}")
    return time.perf_counter() - t0, {"total": peak, **mem.roles}


def memory_fields(peaks: dict) -> dict:
    return {"peak_rss_bytes": peaks["total"],
            **{f"peak_{role.replace('-', '_')}_bytes": v for role, v in peaks.items() if role != "total"}}


def spark_baseline(work: Path, cores: int) -> dict:
    """Peak memory of a Spark application that does almost nothing (a session and one tiny job): the
    baseline that the driver-memory target is measured above."""
    script = work / "baseline_run.py"
    script.write_text("from pyspark.sql import SparkSession\n"
                      "spark = SparkSession.builder.getOrCreate()\n"
                      "spark.range(1000).selectExpr('sum(id)').collect()\n"
                      "spark.stop()\n")
    _, peaks = run_measured([str(ROOT / "spark-submit.sh"), "--master", f"local[{cores}]", str(script)],
                            work / "baseline.log")
    return memory_fields(peaks)


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


def bench_w2vspark(corpus: str, work: Path, runs: list[tuple[int, str, int, int]], epochs: int, cores: int,
                   tokens: int, arch: str = "skipgram", loss: str = "neg_sampling",
                   settings: tuple[str, ...] = ()) -> list[dict]:
    submit = [str(ROOT / "spark-submit.sh"), "--master", f"local[{cores}]"]
    base = work / "w2vspark-base"
    vocab_s, vocab_peaks = run_measured(submit + [str(ROOT / "jobs" / "build_vocab.py"), "--set", f"input.path={corpus}",
                                                 "--set", f"output.dir={base}", "--set", "output.overwrite=true"],
                                       work / "w2vspark-vocab.log")
    out = []
    for partitions, combine, syncs, seed in runs:
        tag = "" if (arch, loss) == ("skipgram", "neg_sampling") else f"-{arch}-{loss}"
        tag += "".join("-" + s.split(".", 1)[-1].replace("=", "_") for s in settings)
        run = work / (f"w2vspark{tag}-p{partitions}-{combine}-s{syncs}"
                      + (f"-seed{seed}" if seed != TrainConfig.seed else ""))
        run.mkdir(parents=True, exist_ok=True)
        for name in ("vocab", "corpus", "corpus_stats.json"):
            if not (run / name).exists():
                os.symlink(base / name, run / name)
        wall, peaks = run_measured(submit + [str(ROOT / "jobs" / "train.py"), "--set", f"output.dir={run}",
                                            "--set", "output.overwrite=true", "--set", f"train.epochs={epochs}",
                                            "--set", f"train.num_partitions={partitions}",
                                            "--set", f"train.combine={combine}",
                                            "--set", f"train.syncs_per_epoch={syncs}",
                                            "--set", f"train.seed={seed}",
                                            "--set", f"train.model={arch}", "--set", f"train.loss={loss}",
                                            # MLlib's rule as MLlib runs it: no step limit
                                            *(["--set", "train.max_step=0"] if combine == "average" else []),
                                            *[a for s in settings for a in ("--set", s)],
                                            "--set", "train.checkpoint_every=0"], run.with_suffix(".log"))
        metrics = [json.loads(l) for l in (run / "metrics.jsonl").read_text().splitlines()]
        train_s = sum(m["seconds"] for m in metrics)
        model = Word2VecModel.load(run / "model")
        row = {"system": "w2vspark", "model": arch, "loss": loss, "settings": list(settings),
               "partitions": partitions, "combine": combine,
               "syncs_per_epoch": metrics[-1]["rounds"] // epochs,  # the effective value when 0 = automatic
               "syncs_setting": syncs, "seed": seed,
               "train_seconds": train_s, "total_seconds": vocab_s + wall, "vocab_seconds": vocab_s,
               "words_per_sec": tokens * epochs / train_s, **memory_fields(peaks),
               "vocab_peak_rss_bytes": vocab_peaks["total"],
               "model_bytes": 2 * len(model.words) * model.dim * 4, "vocab_size": len(model.words),
               "final_loss": metrics[-1]["loss"], **scores_row(model)}
        print(json.dumps(row), flush=True)
        out.append(row)
    return out


def bench_gensim(corpus: str, work: Path, workers: int, epochs: int, tokens: int, arch: str = "skipgram",
                 loss: str = "neg_sampling") -> dict:
    sg, hs = int(arch == "skipgram"), int(loss == "hierarchical_softmax")
    negative = 0 if hs else SETTINGS["negatives"]
    script = work / "gensim_run.py"
    script.write_text(f"""
import json, time, sys
from gensim.models import Word2Vec
from gensim.models.word2vec import LineSentence
t0 = time.perf_counter()
m = Word2Vec(vector_size={SETTINGS['dim']}, window={SETTINGS['window']}, min_count={SETTINGS['min_count']}, sg={sg}, hs={hs},
             negative={negative}, sample={SETTINGS['sample']}, alpha={SETTINGS['lr']},
             min_alpha={SETTINGS['min_lr']}, workers={workers}, seed=1)
m.build_vocab(LineSentence({corpus!r}))
t1 = time.perf_counter()
m.train(LineSentence({corpus!r}), total_examples=m.corpus_count, epochs={epochs})
t2 = time.perf_counter()
m.wv.save_word2vec_format({str(work / 'gensim.bin')!r}, binary=True)
json.dump({{"vocab_seconds": t1 - t0, "train_seconds": t2 - t1}}, open({str(work / 'gensim.json')!r}, "w"))
""")
    wall, peaks = run_measured([sys.executable, str(script)], work / "gensim.log")
    times = json.loads((work / "gensim.json").read_text())
    from gensim.models import KeyedVectors
    kv = KeyedVectors.load_word2vec_format(str(work / "gensim.bin"), binary=True)
    model = Word2VecModel(kv.index_to_key, kv.vectors)
    row = {"system": "gensim", "model": arch, "loss": loss, "partitions": workers,
           "train_seconds": times["train_seconds"],
           "total_seconds": wall, "vocab_seconds": times["vocab_seconds"],
           "words_per_sec": tokens * epochs / times["train_seconds"], **memory_fields(peaks),
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
    wall, peaks = run_measured(submit, work / f"mllib-p{partitions}.log")
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
    row = {"system": "mllib", "model": "skipgram", "loss": "hierarchical_softmax", "partitions": partitions,
           "train_seconds": times["train_seconds"],
           "total_seconds": wall, "words_per_sec": tokens * epochs / times["train_seconds"], **memory_fields(peaks),
           "vocab_size": len(model.words), **scores_row(model)}
    print(json.dumps(row), flush=True)
    return row


ABBREV = {"neg_sampling": "NS", "hierarchical_softmax": "HS"}


def gb(x) -> str:
    return f"{x / 2**30:.2f}" if x else ""


def markdown(rows: list[dict], baseline: dict | None) -> str:
    gensim = next((r for r in rows if r["system"] == "gensim"), None)
    mllib = next((r for r in rows if r["system"] == "mllib"), None)
    head = ("| system | partitions / workers | rule | syncs | seed | words/s | × gensim | × MLlib | WS353 | SimLex "
            "| analogy | train s | total s | peak RSS GB | JVM + job's Python GB | Python workers GB |\n"
            "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n")
    body = []
    for r in rows:
        vs_g = f"{r['words_per_sec'] / gensim['words_per_sec']:.2f}" if gensim else ""
        vs_m = f"{r['words_per_sec'] / mllib['words_per_sec']:.2f}" if mllib else ""
        driver = r.get("peak_jvm_bytes", 0) + r.get("peak_python_main_bytes", 0)
        arch = (r.get("model", "skipgram"), r.get("loss", "neg_sampling"))
        system = r["system"] + ("" if arch == ("skipgram", "neg_sampling") else f" {arch[0]} {ABBREV[arch[1]]}")
        system += "".join(f" {s}" for s in r.get("settings", ()))
        body.append(f"| {system} | {r['partitions']} | {r.get('combine', '')} | {r.get('syncs_per_epoch', '')} "
                    f"| {r.get('seed', '')} "
                    f"| {r['words_per_sec'] / 1000:.0f}k | {vs_g} | {vs_m} | {r['ws353']:.3f} | {r['simlex']:.3f} "
                    f"| {r['analogy']:.1%} | {r['train_seconds']:.0f} | {r['total_seconds']:.0f} "
                    f"| {gb(r['peak_rss_bytes'])} | {gb(driver)} | {gb(r.get('peak_python_workers_bytes', 0))} |")
    text = head + "\n".join(body) + "\n"
    if baseline:
        jvm0, py0 = baseline.get("peak_jvm_bytes", 0), baseline.get("peak_python_main_bytes", 0)
        text += (f"\nSpark baseline (a session and one tiny job): JVM {gb(jvm0)} GB, job's Python {gb(py0)} GB. "
                 "In local mode the one JVM is both the driver and the executors.\n")
        for r in rows:
            if r["system"] == "w2vspark":
                model = r["model_bytes"]
                text += (f"w2vspark P={r['partitions']} {r['combine']}: above the baseline, job's Python "
                         f"{(r.get('peak_python_main_bytes', 0) - py0) / model:.1f}x the model "
                         f"({model / 2**20:.0f} MiB), JVM {(r.get('peak_jvm_bytes', 0) - jvm0) / model:.1f}x\n")
    return text


def scaling_plot(rows: list[dict], path: Path) -> None:
    """words/s and analogy accuracy against partitions, one line per w2vspark rule and syncs, peers as lines."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax_speed, ax_quality) = plt.subplots(1, 2, figsize=(10, 3.8))
    series = {}
    for r in rows:
        if r["system"] == "w2vspark":
            syncs = "max(4, 2P)" if r.get("syncs_setting") == 0 else r["syncs_per_epoch"]
            seed = f", seed {r['seed']}" if r.get("seed", TrainConfig.seed) != TrainConfig.seed else ""
            series.setdefault(f"w2vspark {r['combine']}, {syncs} syncs{seed}", []).append(r)
    for label, rs in sorted(series.items()):
        rs = sorted(rs, key=lambda r: r["partitions"])
        xs = [r["partitions"] for r in rs]
        ax_speed.plot(xs, [r["words_per_sec"] / 1000 for r in rs], marker="o", label=label)
        ax_quality.plot(xs, [100 * r["analogy"] for r in rs], marker="o", label=label)
    for r, style in ((next((r for r in rows if r["system"] == "gensim"), None), "--"),
                     (next((r for r in rows if r["system"] == "mllib"), None), ":")):
        if r:
            label = f"{r['system']} ({r['partitions']} {'workers' if r['system'] == 'gensim' else 'partitions'})"
            ax_speed.axhline(r["words_per_sec"] / 1000, linestyle=style, color="gray", label=label)
            ax_quality.axhline(100 * r["analogy"], linestyle=style, color="gray", label=label)
    ticks = sorted({r["partitions"] for r in rows if r["system"] == "w2vspark"})
    for ax, title in ((ax_speed, "training words/s (thousands)"), (ax_quality, "analogy accuracy (%)")):
        ax.set_xscale("log", base=2)
        ax.set_xticks(ticks, [str(t) for t in ticks])
        ax.set_xlabel("partitions")
        ax.set_title(title)
        ax.grid(alpha=0.3)
    ax_quality.legend(fontsize=7, loc="lower left")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def parse_run(text: str) -> tuple[int, str, int, int]:
    """'PARTITIONS:COMBINE:SYNCS[:SEED]' -> (partitions, combine, syncs, seed); the seed defaults to
    train.seed's default."""
    fields = text.split(":")
    if len(fields) not in (3, 4):
        raise SystemExit(f"--runs: cannot read {text!r}; expected PARTITIONS:COMBINE:SYNCS_PER_EPOCH[:SEED]")
    partitions, combine, syncs, seed = (fields + [str(TrainConfig.seed)])[:4]
    if combine not in COMBINE_RULES:
        raise SystemExit(f"--runs: unknown combine rule {combine!r} in {text!r}; expected one of {COMBINE_RULES}")
    return int(partitions), combine, int(syncs), int(seed)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--corpus", help="a text file, one sentence a line (default: build the Debian corpus with "
                                    "bench/debian_corpus.py, cached under bench/cache/corpus)")
    p.add_argument("--runs", default="1:scaled:0,2:scaled:0,4:scaled:0,8:scaled:0,16:scaled:0,8:scaled:4,"
                                     "8:scaled_row:0,2:average:4,8:average:4",
                   help="w2vspark runs as PARTITIONS:COMBINE:SYNCS_PER_EPOCH[:SEED] (syncs 0 = automatic, seed "
                        f"default {TrainConfig.seed}), comma-separated ('' for none)")
    p.add_argument("--gensim-workers", type=int, default=2, help="0 skips gensim")
    p.add_argument("--mllib-partitions", default="2", help="comma-separated; '' skips MLlib")
    p.add_argument("--epochs", type=int, default=5)
    p.add_argument("--cores", type=int, default=2)
    p.add_argument("--model", choices=("skipgram", "cbow"), default="skipgram")
    p.add_argument("--loss", choices=("neg_sampling", "hierarchical_softmax"), default="neg_sampling")
    p.add_argument("--set", action="append", default=[], metavar="train.key=value",
                   help="a further setting of w2vspark's runs (repeatable)")
    p.add_argument("--work", default=str(ROOT / "bench" / "cache" / "work"))
    p.add_argument("--out", default=str(ROOT / "bench" / "results"))
    args = p.parse_args(argv)
    work, out = Path(args.work).resolve(), Path(args.out).resolve()  # symlinks in run folders need absolute paths
    work.mkdir(parents=True, exist_ok=True)
    out.mkdir(parents=True, exist_ok=True)
    if not args.corpus:
        from debian_corpus import build, PACKAGES
        cached = ROOT / "bench" / "cache" / "corpus" / "debian_en.txt"
        args.corpus = str(cached if cached.exists() else build(cached.parent, list(PACKAGES), 10_000_000))
    tokens = count_tokens(args.corpus)
    runs = [parse_run(r) for r in args.runs.split(",") if r]
    rows = []
    if args.gensim_workers:
        rows.append(bench_gensim(args.corpus, work, args.gensim_workers, args.epochs, tokens, args.model, args.loss))
    for mp in [int(x) for x in args.mllib_partitions.split(",") if x]:
        rows.append(bench_mllib(args.corpus, work, mp, args.epochs, args.cores, tokens))
    baseline = spark_baseline(work, args.cores) if runs else None
    rows += bench_w2vspark(args.corpus, work, runs, args.epochs, args.cores, tokens, args.model, args.loss,
                           tuple(args.set))
    stamp = time.strftime("%Y%m%d-%H%M%S")
    result = {"corpus": args.corpus, "tokens": tokens, "epochs": args.epochs, "cores": args.cores,
              "model": args.model, "loss": args.loss,
              "settings": SETTINGS, "spark_baseline": baseline, "rows": rows,
              "max_rss_self": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}
    (out / f"bench-{stamp}.json").write_text(json.dumps(result, indent=2) + "\n")
    table = markdown(rows, baseline)
    (out / f"bench-{stamp}.md").write_text(table)
    if runs:
        scaling_plot(rows, out / f"bench-{stamp}-scaling.png")
    print(table)


if __name__ == "__main__":
    main()

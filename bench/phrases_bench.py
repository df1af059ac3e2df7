"""Phrase benchmark: jobs/phrases.py against gensim's Phrases on the same tokens and settings.

    python bench/phrases_bench.py [--corpus FILE] [--lines N] [--cores 2] [--common-words] [--passes 1]

The corpus (default: the cached Debian benchmark corpus) is tokenized once by Spark as build_vocab would and
written as Parquet; jobs/phrases.py (spark-submit, local[cores]) and gensim (Phrases, then every sentence
rewritten, single process: gensim's Phrases has no workers) read those same tokens. Reported: wall seconds of
each (the Spark job's own seconds without JVM start too), words/s, the ratio, the Jaccard overlap of the phrase
sets of the first pass and the share of rewritten rows that are identical. Writes bench/results/phrases-bench-*.json/md.
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

DEFAULT_CORPUS = ROOT / "bench" / "cache" / "corpus" / "debian_en.txt"


def submit(cores: int) -> list[str]:
    return [str(ROOT / "spark-submit.sh"), "--master", f"local[{cores}]", "--driver-memory", "6g"]


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS)
    ap.add_argument("--lines", type=int, default=0, help="use only the first N lines (0: all)")
    ap.add_argument("--cores", type=int, default=2)
    ap.add_argument("--passes", type=int, default=1)
    ap.add_argument("--common-words", action="store_true", help="gensim's ENGLISH_CONNECTOR_WORDS as connectors")
    args = ap.parse_args(argv)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    work = ROOT / "bench" / "cache" / f"phrases-{stamp}"
    work.mkdir(parents=True)
    corpus = args.corpus
    if args.lines:
        corpus = work / "corpus.txt"
        with open(args.corpus, encoding="utf-8", errors="replace") as src, open(corpus, "w", encoding="utf-8") as dst:
            for i, line in enumerate(src):
                if i >= args.lines:
                    break
                dst.write(line)
    tokens = work / "tokens"
    prep = work / "prep.py"
    prep.write_text(f"""
from w2vspark.config import load_config
from w2vspark.io.hadoop import HadoopFS
from w2vspark.phrases import input_rows
from w2vspark.session import build_spark
spark = build_spark("tokenize")
cfg = load_config(None, ["input.path={corpus}"])
input_rows(spark, HadoopFS(spark), cfg).where("size(tokens) > 0").coalesce(1).write.parquet({str(tokens)!r})
""")
    run_measured(submit(args.cores) + [str(prep)], work / "prep.log")

    from gensim.models.phrases import ENGLISH_CONNECTOR_WORDS
    connectors = sorted(ENGLISH_CONNECTOR_WORDS) if args.common_words else []
    sets = ["--set", f"input.path={tokens}", "--set", "input.format=parquet", "--set", "input.tokens_column=tokens",
            "--set", f"output.dir={work / 'ours'}", "--set", f"phrases.passes={args.passes}"]
    if connectors:
        sets += ["--set", f"phrases.common_words={','.join(connectors)}"]
    ours_wall, ours_mem = run_measured(submit(args.cores) + [str(ROOT / "jobs" / "phrases.py"), *sets],
                                       work / "ours.log")
    stats = json.loads((work / "ours" / "phrases_stats.json").read_text())

    gensim_out = work / "gensim.json"
    script = work / "gensim_run.py"
    script.write_text(f"""
import json, time
import pyarrow.parquet as pq
from gensim.models.phrases import Phrases
sents = pq.read_table({str(tokens)!r}).column("tokens").to_pylist()
t0 = time.perf_counter()
first = None
for n in range({args.passes}):
    model = Phrases(sents, min_count=5, threshold=10.0, connector_words=frozenset({connectors!r}))
    first = first or model.export_phrases()
    sents = [model[s] for s in sents]
seconds = time.perf_counter() - t0
pq.write_table(__import__("pyarrow").table({{"tokens": sents}}), {str(work / 'gensim_rows.parquet')!r})
json.dump({{"seconds": seconds, "phrases": sorted(first)}}, open({str(gensim_out)!r}, "w"))
""")
    gensim_wall, gensim_mem = run_measured([sys.executable, str(script)], work / "gensim.log")
    g = json.loads(gensim_out.read_text())

    import pyarrow.parquet as pq
    ours_phrases = pq.read_table(work / "ours" / "phrases").to_pandas()
    ours_set = set(ours_phrases.phrase[ours_phrases["pass"] == 1])
    gensim_set = set(g["phrases"])
    jaccard = len(ours_set & gensim_set) / max(len(ours_set | gensim_set), 1)
    ours_rows = sorted(map(tuple, pq.read_table(work / "ours" / "phrased").column("tokens").to_pylist()))
    gensim_rows = sorted(map(tuple, pq.read_table(work / "gensim_rows.parquet").column("tokens").to_pylist()))
    same_rows = sum(a == b for a, b in zip(ours_rows, gensim_rows)) / max(len(gensim_rows), 1)
    words = stats["tokens"]
    result = {
        "corpus": str(args.corpus), "lines": args.lines, "words": words, "cores": args.cores, "passes": args.passes,
        "common_words": bool(connectors),
        "w2vspark": {"wall_seconds": round(ours_wall, 1), "job_seconds": stats["seconds"],
                     "words_per_second": round(words * args.passes / stats["seconds"]),
                     "phrases_pass1": len(ours_set), "peak_rss_bytes": ours_mem["total"]},
        "gensim": {"seconds": round(g["seconds"], 1), "words_per_second": round(words * args.passes / g["seconds"]),
                   "phrases_pass1": len(gensim_set), "peak_rss_bytes": gensim_mem["total"]},
        "speed_ratio_job": round(g["seconds"] / stats["seconds"], 2),
        "speed_ratio_wall": round(g["seconds"] / ours_wall, 2),
        "jaccard_pass1": round(jaccard, 6), "identical_rows": round(same_rows, 6),
        "only_w2vspark": sorted(ours_set - gensim_set)[:20], "only_gensim": sorted(gensim_set - ours_set)[:20]}
    out = ROOT / "bench" / "results"
    out.mkdir(exist_ok=True)
    (out / f"phrases-bench-{stamp}.json").write_text(json.dumps(result, indent=2) + "\n")
    md = (f"# Phrases benchmark {stamp}\n\n{words} words, {args.passes} pass(es), connectors: {bool(connectors)}, "
          f"local[{args.cores}]\n\n| | seconds | words/s | phrases (pass 1) |\n|---|---|---|---|\n"
          f"| w2vspark (job) | {stats['seconds']} | {result['w2vspark']['words_per_second']} | {len(ours_set)} |\n"
          f"| w2vspark (wall, with JVM start) | {result['w2vspark']['wall_seconds']} | | |\n"
          f"| gensim Phrases | {result['gensim']['seconds']} | {result['gensim']['words_per_second']} | "
          f"{len(gensim_set)} |\n\nspeed ratio (gensim seconds / w2vspark job seconds): {result['speed_ratio_job']}; "
          f"Jaccard of the phrase sets: {jaccard:.4f}; identical rewritten rows: {same_rows:.4%}\n")
    (out / f"phrases-bench-{stamp}.md").write_text(md)
    print(md)


if __name__ == "__main__":
    main()

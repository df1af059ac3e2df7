"""Time stage 1 (jobs/build_vocab.py through spark-submit.sh, local[2]) against gensim's vocabulary scan
(Word2Vec.build_vocab) on the same text file, in one run. Usage: python bench/vocab_stage.py CORPUS.txt [OUT.json]"""
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def gensim_scan(corpus: str) -> tuple[float, int]:
    from gensim.models import Word2Vec
    from gensim.models.word2vec import LineSentence

    t0 = time.perf_counter()
    model = Word2Vec(vector_size=100, window=5, min_count=5, sg=1, workers=2)
    model.build_vocab(LineSentence(corpus))
    return time.perf_counter() - t0, len(model.wv)


def w2vspark_stage(corpus: str, out_dir: str) -> tuple[float, dict]:
    t0 = time.perf_counter()
    subprocess.run([str(ROOT / "spark-submit.sh"), "--master", "local[2]", str(ROOT / "jobs" / "build_vocab.py"),
                    "--set", f"input.path={corpus}", "--set", f"output.dir={out_dir}", "--set",
                    "output.overwrite=true"], check=True, stdout=subprocess.DEVNULL)
    seconds = time.perf_counter() - t0
    return seconds, json.loads((Path(out_dir) / "corpus_stats.json").read_text())


if __name__ == "__main__":
    corpus = sys.argv[1]
    with tempfile.TemporaryDirectory() as tmp:
        g_sec, g_vocab = gensim_scan(corpus)
        s_sec, stats = w2vspark_stage(corpus, tmp)
    result = {"corpus": corpus, "tokens": stats["tokens"], "gensim_build_vocab_s": round(g_sec, 2),
              "gensim_vocab": g_vocab, "w2vspark_stage_s": round(s_sec, 2),
              "w2vspark_stage_internal_s": stats["seconds"], "w2vspark_vocab": stats["vocab_size"],
              "ratio_w2vspark_over_gensim": round(s_sec / g_sec, 2)}
    print(json.dumps(result, indent=2))
    if len(sys.argv) > 2:
        Path(sys.argv[2]).write_text(json.dumps(result, indent=2) + "\n")

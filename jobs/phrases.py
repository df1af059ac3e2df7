"""Phrases (word2phrase / gensim Phrases): joins frequent word pairs of input.path into one token ("new_york")
and writes phrases/ (Parquet: phrase, count, score, pass), phrased/ (Parquet, tokens: array<string>, one row per
input row) and phrases_stats.json under output.dir. Build the vocabulary on the result with
input.path=<output.dir>/phrased, input.format=parquet, input.tokens_column=tokens."""
import json

from w2vspark.cli import run_job
from w2vspark.phrases import build_phrases


def stage(spark, cfg):
    stats = build_phrases(spark, cfg)
    print(json.dumps(stats, indent=2, sort_keys=True))


if __name__ == "__main__":
    run_job(__doc__, "w2vspark phrases", stage)

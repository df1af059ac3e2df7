"""Stage 1: tokenize input.path, build the vocabulary and write vocab/, corpus/ and corpus_stats.json
under output.dir."""
import json

from w2vspark.cli import run_job
from w2vspark.corpus import build_corpus


def stage(spark, cfg):
    stats = build_corpus(spark, cfg)
    print(json.dumps(stats, indent=2, sort_keys=True))


if __name__ == "__main__":
    run_job(__doc__, "w2vspark build_vocab", stage)

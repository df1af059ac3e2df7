"""Random walks (DeepWalk, or node2vec with walks.p / walks.q) on the edge list walks.edges; writes walks/
(Parquet, walk: array<string>) and walks_stats.json under output.dir. Train on them with
input.path=<output.dir>/walks, input.format=parquet, input.tokens_column=walk."""
import json

from w2vspark.cli import run_job
from w2vspark.walks import generate_walks


def stage(spark, cfg):
    stats = generate_walks(spark, cfg)
    print(json.dumps(stats, indent=2, sort_keys=True))


if __name__ == "__main__":
    run_job(__doc__, "w2vspark walks", stage)

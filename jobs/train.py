"""Stage 2: train skip-gram on vocab/ and corpus/ under output.dir; writes metrics.jsonl, checkpoints/ and
model/. --resume continues from the newest complete checkpoint."""
from w2vspark.cli import run_job
from w2vspark.train.stage import train_on_spark

if __name__ == "__main__":
    run_job(__doc__, "w2vspark train", train_on_spark)

"""Train in this process (no Spark) on input.path and write the model under output.dir/model."""
from w2vspark.cli import parse_config
from w2vspark.train.local import run_local

if __name__ == "__main__":
    run_local(parse_config(__doc__))

"""Stage 4: evaluate output.dir/model (WS353, SimLex-999, analogies) and write output.dir/report/."""
from w2vspark.cli import run_job
from w2vspark.report import evaluate_run

if __name__ == "__main__":
    run_job(__doc__, "w2vspark evaluate", evaluate_run)

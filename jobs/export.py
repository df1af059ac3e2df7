"""Stage 3: export output.dir/model as word2vec text and binary and as projector TSV under output.dir/export/."""
from w2vspark.cli import run_job
from w2vspark.export import export_model

if __name__ == "__main__":
    run_job(__doc__, "w2vspark export", export_model)

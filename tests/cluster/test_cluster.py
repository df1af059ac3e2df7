"""The pipeline through spark-submit.sh on a real standalone cluster: both workers used, the model equal bit for
bit to local mode's, and a run that survives losing a worker in the middle of a training round. (The export job
runs on the driver only; tests/spark covers it.)"""
import gzip
import re
import shutil
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest

from w2vspark.config import load_config
from w2vspark.model import Word2VecModel
from w2vspark.partition import native_step
from w2vspark.training import train_on_spark

ROOT = Path(__file__).parents[2]
SETTINGS = ["--set", "train.dim=32", "--set", "train.epochs=2", "--set", "train.syncs_per_epoch=2",
            "--set", "train.num_partitions=2", "--set", "vocab.min_count=3", "--set", "output.overwrite=true"]


def submit(master_args, job, run_dir, *extra, env=None, timeout=300):
    cmd = [str(ROOT / "spark-submit.sh"), *master_args, f"jobs/{job}.py", "--config", "conf/demo.toml",
           "--set", f"output.dir={run_dir}", *SETTINGS, *extra]
    res = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=timeout, env=env)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    return res.stdout


def cluster_args(cluster):
    return ["--master", cluster.url, "--conf", "spark.driver.host=127.0.0.1", "--executor-memory", "1g",
            "--total-executor-cores", "2"]


def words_per_sec(output: str) -> float:
    return float(re.search(r"trained in [\d.]+s: ([\d.]+)k words/s", output).group(1)) * 1000


def copy_corpus(src: Path, dst: Path) -> Path:
    dst.mkdir(parents=True)
    for name in ("vocab", "corpus", "corpus_stats.json"):
        (shutil.copytree if (src / name).is_dir() else shutil.copy)(src / name, dst / name)
    return dst


@pytest.fixture(scope="module")
def corpus_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("cluster-data") / "kjv-part.txt"
    with gzip.open(ROOT / "data" / "kjv.txt.gz", "rt", encoding="utf-8") as f:
        path.write_text("".join(next(f) for _ in range(2500)))
    return path


@pytest.fixture(scope="module")
def pipeline_runs(cluster, corpus_file, tmp_path_factory, spark):
    """The vocabulary and corpus built on the cluster, trained there and, on a copy, in local mode (the test
    run's local SparkSession, the train job's stage with the same settings): -> (cluster run folder, local run
    folder, the cluster train job's output, the local run's log). The local model is also the reference of the
    worker-loss test."""
    root = tmp_path_factory.mktemp("pipeline")
    on_cluster = root / "cluster"
    submit(cluster_args(cluster), "build_vocab", on_cluster, "--set", f"input.path={corpus_file}", env=cluster.env)
    out = submit(cluster_args(cluster), "train", on_cluster, env=cluster.env)
    local = copy_corpus(on_cluster, root / "local")
    lines = []
    train_on_spark(spark, load_config(str(ROOT / "conf" / "demo.toml"), [f"output.dir={local}", *SETTINGS[1::2]]),
                   log=lines.append)
    return on_cluster, local, out, "\n".join(lines)


def test_pipeline_on_the_cluster_matches_local_mode(pipeline_runs):
    on_cluster, local, out, local_out = pipeline_runs
    workers = re.search(r"tasks ran on: (.*)", out).group(1)
    assert "executor=0" in workers and "executor=1" in workers, workers  # both workers trained
    assert "code=shipped" in workers and "code=installed" not in workers  # executors ran the zipped source
    if native_step():  # spark-submit.sh shipped the compiled helper with --files
        assert "kernel=numpy" not in workers and "kernel=native" in workers, workers
    a, b = Word2VecModel.load(on_cluster / "model"), Word2VecModel.load(local / "model")
    assert a.words == b.words and np.array_equal(a.vectors, b.vectors)
    print(f"\nwords/s cluster {words_per_sec(out):.0f}, local[2] {words_per_sec(local_out):.0f}, "
          f"ratio {words_per_sec(out) / words_per_sec(local_out):.2f}")


def test_losing_a_worker_mid_round_gives_the_same_model(cluster, pipeline_runs, tmp_path):
    env = dict(cluster.env)
    base = reference = pipeline_runs[1]  # the corpus, and its model trained in local mode

    run = copy_corpus(base, tmp_path / "faulty")
    cmd = [str(ROOT / "spark-submit.sh"), *cluster_args(cluster), "jobs/train.py", "--config", "conf/demo.toml",
           "--set", f"output.dir={run}", *SETTINGS]
    log_path = tmp_path / "faulty.log"
    with open(log_path, "w") as log:
        proc = subprocess.Popen(cmd, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, text=True, env=env)
        try:
            deadline = time.time() + 240
            while "round 2/" not in log_path.read_text():  # round 3 of 4 is running now
                assert proc.poll() is None and time.time() < deadline, log_path.read_text()[-3000:]
                time.sleep(0.2)
            cluster.kill("worker1")
            assert proc.wait(timeout=300) == 0, log_path.read_text()[-3000:]
        finally:
            if proc.poll() is None:
                proc.kill()
    output = log_path.read_text()
    assert "round 4/4" in output
    assert cluster.alive_workers() == 1  # the worker really is gone; its tasks ran again on the other one
    a, b = Word2VecModel.load(run / "model"), Word2VecModel.load(reference / "model")
    assert np.array_equal(a.vectors, b.vectors)

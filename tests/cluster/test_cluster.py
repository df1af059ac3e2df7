"""The train job through spark-submit.sh on a real standalone cluster: it loses a worker in the middle of a
training round and still writes local mode's model bit for bit. (The vocabulary and export jobs are covered in
local mode by tests/spark: the corpus here is built in the test run's local session.) Each spark-submit on the
cluster costs 40-60 s of JVM, executor and Python worker start-up on a 2-core machine, so one train job checks the
distribution, the shipped code and the recovery."""
import gzip
import re
import shutil
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest

from w2vspark.config import load_config
from w2vspark.corpus import build_corpus, read_vocab
from w2vspark.model import Word2VecModel
from w2vspark.train.local import load_run_corpus, train_local
from w2vspark.train.task import native_step

ROOT = Path(__file__).parents[2]
SETTINGS = ["--set", "train.dim=32", "--set", "train.epochs=2", "--set", "train.syncs_per_epoch=2",
            "--set", "train.num_partitions=2", "--set", "vocab.min_count=3", "--set", "output.overwrite=true"]


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
def corpus_run(corpus_file, tmp_path_factory, spark):
    """The vocabulary and corpus (the vocabulary job's stage, in the test run's local session) -> the run folder
    that the cluster's train jobs copy."""
    run = tmp_path_factory.mktemp("pipeline") / "cluster"
    build_corpus(spark, load_config(str(ROOT / "conf" / "demo.toml"), [
        f"output.dir={run}", f"input.path={corpus_file}", *SETTINGS[1::2]]), log=lambda *_: None)
    return run


@pytest.fixture(scope="module")
def local_reference(corpus_run, spark):
    """The same corpus and settings trained by the in-process trainer: what every Spark task runs, combined the
    same way, so local mode's model bit for bit (tests/spark/test_training.py)."""
    cfg = load_config(str(ROOT / "conf" / "demo.toml"), [f"output.dir={corpus_run}", *SETTINGS[1::2]])
    return train_local(cfg, load_run_corpus(corpus_run, cfg.train.num_partitions), read_vocab(spark, str(corpus_run)))


def train_losing_a_worker(cluster, corpus_run, name: str, *extra: str) -> tuple[Path, str]:
    """The train job on the cluster (a copy of the corpus in folder ``name``), its second worker killed (with its
    executor) while round 3 of 4 runs -> (run folder, the job's output); the job must succeed."""
    run = copy_corpus(corpus_run, corpus_run.parent / name)
    cmd = [str(ROOT / "spark-submit.sh"), *cluster_args(cluster), "jobs/train.py", "--config", "conf/demo.toml",
           "--set", f"output.dir={run}", *SETTINGS, *extra]
    log_path = run.parent / f"{name}.log"
    with open(log_path, "w") as log:
        proc = subprocess.Popen(cmd, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, text=True, env=cluster.env)
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
    return run, output


def test_cluster_training_survives_a_lost_worker_and_equals_local_mode(cluster, corpus_run,
                                                                        local_reference):
    """One train job on the cluster with the parameters held on the executors in two copies
    (train.params_replicas=2), its second worker killed (with its executor) while round 3 of 4 runs. Both workers
    trained before the loss, the executors ran the shipped source and compiled helper, the worker's copy of every
    block and its tasks' shuffle outputs were lost, Spark ran those tasks again from the other copy, and the model
    equals the in-process trainer's (local mode's, parameters on the driver) bit for bit: the cluster run as a
    whole, not only the retry, computes what local mode does. (One spark-submit costs 40-60 s here, so the
    driver-held path's recovery is checked by task retries in local mode, tests/spark/test_training.py; with one
    copy the same loss stops the run with ExecutorLost, tests/spark/test_executor_params.py.)"""
    run, output = train_losing_a_worker(cluster, corpus_run, "faulty", "--set", "train.params_on=executors",
                                        "--set", "train.params_replicas=2")
    assert "parameters held on the executors" in output
    assert cluster.alive_workers() == 1  # the worker really is gone; its tasks ran again on the other one
    workers = re.search(r"tasks ran on: (.*)", output).group(1)
    assert "executor=0" in workers and "executor=1" in workers, workers  # both workers trained
    assert "code=shipped" in workers and "code=installed" not in workers  # executors ran the zipped source
    if native_step():  # spark-submit.sh shipped the compiled helper with --files
        assert "kernel=numpy" not in workers and "kernel=native" in workers, workers
    trained = Word2VecModel.load(run / "model")
    assert trained.words == local_reference.words and np.array_equal(trained.vectors, local_reference.vectors)
    print(f"\nwords/s on the cluster (one worker lost): {words_per_sec(output):.0f}")

"""Shared by every test: one BLAS thread per process, and one local SparkSession for the whole test run (local[2],
no UI, 2 shuffle partitions, small Arrow batches), used by tests/spark and as the cluster tests' local-mode
reference."""
import os

import pytest

from w2vspark.session import build_spark

# one BLAS thread per process in every test, as in production tasks
for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(var, "1")

SPARK_TEST_CONF = {
    "spark.master": "local[2,2]",  # two attempts per task: retries can be tested
    "spark.ui.enabled": "false",
    "spark.sql.shuffle.partitions": "2",
    "spark.default.parallelism": "2",
    "spark.sql.execution.arrow.maxRecordsPerBatch": "64",
    "spark.driver.memory": "2g",
    "spark.sql.session.timeZone": "UTC",
    "spark.executorEnv.OPENBLAS_NUM_THREADS": "1",
}


@pytest.fixture(scope="session")
def spark():
    session = build_spark("w2vspark-tests", SPARK_TEST_CONF)
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()

"""The only place in the library that builds a SparkSession."""
from __future__ import annotations

from typing import Mapping


def build_spark(app_name: str, conf: Mapping[str, str] | None = None):
    """A SparkSession for ``app_name``; properties from spark-submit (--conf, spark-defaults.conf) win over
    ``conf``, which only fills in what is not set."""
    import os
    import sys

    from pyspark.sql import SparkSession

    # Python workers must run the interpreter that has w2vspark's dependencies; spark-submit.sh or the user
    # may already have chosen one (a cluster's own Python), which is kept.
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    builder = SparkSession.builder.appName(app_name)
    for key, value in (conf or {}).items():
        builder = builder.config(key, value)
    return builder.getOrCreate()


def sized_shuffles(job):
    """Decorator for a job ``job(spark, cfg, log, set_partitions)`` that sizes its own shuffles: the result is
    ``job(spark, cfg, log=print)``, and ``set_partitions(n)`` sets ``spark.sql.shuffle.partitions`` until the job
    returns, when the session's own value is put back."""
    import functools

    key = "spark.sql.shuffle.partitions"

    @functools.wraps(job)
    def run(spark, cfg, log=print):
        saved = spark.conf.get(key)
        try:
            return job(spark, cfg, log, lambda n: spark.conf.set(key, str(max(int(n), 1))))
        finally:
            spark.conf.set(key, saved)
    return run


_WORKER_MODULES = ("numpy", "pandas", "pyarrow", "w2vspark")


def _missing_modules(_):
    import importlib

    missing = []
    for name in _WORKER_MODULES:
        try:
            importlib.import_module(name)
        except ImportError:
            missing.append(name)
    yield ",".join(missing)


def worker_python_problem(sc) -> str:
    """'' when the interpreter ``sc.pythonExec`` can import w2vspark and its dependencies, else what went wrong."""
    try:
        missing = sc.parallelize([0], 1).mapPartitions(_missing_modules).collect()[0]
        return f"cannot import {missing}" if missing else ""
    except Exception as e:  # the worker could not even start: name the JVM's reason, not Py4J's wrapper
        lines = [line.strip() for line in str(e).splitlines() if line.strip()]
        reason = next((line[line.index("Cannot run"):] for line in lines if "Cannot run program" in line),
                      lines[-1] if lines else repr(e))
        return f"failed: {reason[:300]}"


def use_driver_python(spark) -> None:
    """Make a session built by someone else start Python workers that can run w2vspark.

    A SparkContext reads ``PYSPARK_PYTHON`` once, when it starts, and falls back to ``python3`` from the PATH,
    which is not the interpreter of a virtual environment that was not activated. In local mode the workers run
    on this machine, so they are given this interpreter; on a cluster they are asked once whether they can import
    w2vspark's dependencies, and a one-line error says what to set when they cannot.
    """
    import os
    import sys

    from .errors import UserError

    sc = spark.sparkContext
    if os.environ.get("PYSPARK_PYTHON") or sc.pythonExec != "python3" or getattr(sc, "_w2vspark_checked", False):
        return
    if sc.master.startswith("local"):
        sc.pythonExec = sys.executable
    else:
        problem = worker_python_problem(sc)
        if problem:
            raise UserError(f"Spark's Python workers run 'python3' from the PATH (PYSPARK_PYTHON is not set), which "
                            f"{problem}; set PYSPARK_PYTHON (or spark.pyspark.python with spark-submit) to a "
                            f"Python that has w2vspark installed, before the SparkSession starts")
    sc._w2vspark_checked = True

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

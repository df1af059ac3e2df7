"""Reading a user's table (Parquet, CSV with a header, or any Spark source) with errors that name the file."""
from __future__ import annotations

from ..errors import InputError
from .hadoop import HadoopFS


def source_format(path: str, fmt: str = "") -> str:
    """``fmt``, or when it is empty: csv for a path ending in .csv, parquet otherwise."""
    return fmt or ("csv" if path.lower().rstrip("/").endswith(".csv") else "parquet")


def first_line(exc: Exception) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def read_table(spark, fs: HadoopFS, path: str, fmt: str, what: str, key: str):
    """-> DataFrame of ``path`` read as ``fmt`` (CSV files have a header line). A missing path or an unreadable
    file is an :class:`InputError` naming ``what`` (e.g. "edge list"), the path and the setting ``key``."""
    if not fs.glob(path):
        raise InputError(f"{what} not found: {path} ({key})")
    reader = spark.read.option("header", True) if fmt == "csv" else spark.read
    try:
        return reader.format(fmt).load(path)
    except Exception as exc:  # unknown format or unreadable file: report it without the JVM stack
        raise InputError(f"cannot read {what} {path} as {fmt}: {first_line(exc)}") from None

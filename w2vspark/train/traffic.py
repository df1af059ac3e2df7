"""The bytes a sync round moves, read from Spark's own metrics: broadcast, shuffled, and sent to the driver.

Every Spark job of a round runs under one job group (:class:`RoundJobs`); once the round's result is on the
driver, the round's stages are looked up in the application's status store (the same data as the UI and the
status REST API, which exists whether or not the UI is enabled) and their shuffle writes and task result sizes
are summed. The broadcast size is the serialized size of what the driver broadcast; each executor fetches one
copy of it.
"""
from __future__ import annotations

import itertools
import os
import time

TRAFFIC_KEYS = ("broadcast_bytes", "shuffle_bytes", "driver_bytes")
_GROUP = "spark.jobGroup.id"
_sequence = itertools.count()


def broadcast_size(bc, fallback: int) -> int:
    """Serialized bytes of a PySpark broadcast made on the driver: its pickle file when it has one (the
    unencrypted path), else ``fallback`` (e.g. the arrays' nbytes, which the pickle exceeds by a few hundred
    bytes)."""
    path = getattr(bc, "_path", None)
    try:
        return os.path.getsize(path) if path else int(fallback)
    except OSError:
        return int(fallback)


class RoundJobs:
    """``with RoundJobs(sc) as jobs:`` runs the Spark jobs inside under a job group of their own (the caller's
    group is put back afterwards); ``jobs.bytes()`` then sums their stages' metrics."""

    def __init__(self, sc, name: str = "w2vspark-round"):
        self.sc = sc
        self.group = f"{name}-{os.getpid()}-{next(_sequence)}"
        self.saved = None

    def __enter__(self):
        self.saved = self.sc.getLocalProperty(_GROUP)
        self.sc.setLocalProperty(_GROUP, self.group)
        return self

    def __exit__(self, *exc):
        self.sc.setLocalProperty(_GROUP, self.saved)  # None removes the property
        return False

    def bytes(self, timeout: float = 10.0) -> dict:
        """{"shuffle_bytes": ..., "driver_bytes": ...} of the group's finished jobs: shuffle bytes written and
        task result bytes of the last attempt of each of their stages. Waits (up to ``timeout`` seconds) for the
        status store, which Spark updates from its event queue shortly after a job returns; values are None
        when it cannot be read."""
        tracker = self.sc.statusTracker()
        deadline = time.monotonic() + timeout
        while True:
            infos = [tracker.getJobInfo(j) for j in tracker.getJobIdsForGroup(self.group)]
            if all(i is not None and i.status in ("SUCCEEDED", "FAILED") for i in infos) or \
                    time.monotonic() > deadline:
                break
            time.sleep(0.005)
        stage_ids = sorted({s for i in infos if i is not None for s in i.stageIds})
        try:
            store = self.sc._jsc.sc().statusStore()
        except Exception:  # a JVM without the status store: no figures rather than a failed round
            return {"shuffle_bytes": None, "driver_bytes": None}
        shuffle = result = 0
        for stage in stage_ids:
            try:
                data = store.lastStageAttempt(stage)
            except Exception:  # a skipped stage has no attempt
                continue
            shuffle += int(data.shuffleWriteBytes())
            result += int(data.resultSize())
        return {"shuffle_bytes": shuffle, "driver_bytes": result}


def epoch_totals(records: list[dict]) -> dict[int, dict]:
    """Per-epoch sums of the traffic fields of metrics records (rounds that have them) -> {epoch: {key: bytes}}."""
    totals: dict[int, dict] = {}
    for r in records:
        if "event" in r or not all(r.get(k) is not None for k in TRAFFIC_KEYS):
            continue
        epoch = totals.setdefault(r["epoch"], dict.fromkeys(TRAFFIC_KEYS, 0))
        for k in TRAFFIC_KEYS:
            epoch[k] += r[k]
    return totals


def format_bytes(n: float) -> str:
    for unit, size in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= size:
            return f"{n / size:.1f} {unit}"
    return f"{n:.0f} B"


def traffic_line(records: list[dict]) -> str | None:
    """One sentence with the mean bytes per epoch, or None when no round has traffic figures."""
    totals = epoch_totals(records)
    if not totals:
        return None
    mean = {k: sum(t[k] for t in totals.values()) / len(totals) for k in TRAFFIC_KEYS}
    return (f"traffic per epoch: {format_bytes(mean['broadcast_bytes'])} broadcast, "
            f"{format_bytes(mean['shuffle_bytes'])} shuffled, {format_bytes(mean['driver_bytes'])} sent to the "
            f"driver (mean of {len(totals)} epoch(s))")

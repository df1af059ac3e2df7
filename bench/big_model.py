"""A model larger than the driver's memory, trained with the parameters on the executors of a standalone cluster.

Starts a Spark standalone master and two workers on 127.0.0.1, writes a corpus of ID sequences (``--ids`` IDs in
planted communities, every ID about ``--per-id`` times, sequences of ``--length`` IDs from one community), runs
jobs/build_vocab.py and jobs/train.py through spark-submit.sh with ``--driver-memory`` (512m by default) and
``train.params_on=executors``, polls the application's REST API for each executor's storage (memory and disk)
while it trains, and reports the time, the traffic per epoch, the largest storage per executor and the model's
row count (the model folder is written by the executors; nothing reads it whole here); then jobs/export.py with
the same driver memory, its time and the exports' sizes; then jobs/evaluate.py with the same driver memory, with
the neighbours of a few IDs and link prediction on ``--pairs`` pairs (half of them two IDs of one community, the
"edges"; half two random IDs), its time and scores.

    .venv/bin/python bench/big_model.py --ids 2000000 --dim 64 --work bench/cache/big
"""
from __future__ import annotations

import argparse
import json
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def write_sequences(path: Path, ids: int, per_id: int, length: int, communities: int, seed: int) -> int:
    """Parquet of ``seq: list<int64>`` sequences, each from one community (id mod communities); -> tokens."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.default_rng(seed)
    count = ids * per_id // length
    members = ids // communities
    path.parent.mkdir(parents=True, exist_ok=True)
    writer = None
    for lo in range(0, count, 200_000):
        n = min(200_000, count - lo)
        community = rng.integers(0, communities, size=n)  # (n,)
        flat = (rng.integers(0, members, size=(n, length)) * communities + community[:, None]).reshape(-1)
        offsets = pa.array(np.arange(0, n * length + 1, length, dtype=np.int32))
        table = pa.table({"seq": pa.ListArray.from_arrays(offsets, pa.array(flat, pa.int64()))})
        writer = writer or pq.ParquetWriter(path, table.schema)
        writer.write_table(table)
    writer.close()
    return count * length


def write_pairs(path: Path, ids: int, communities: int, count: int, seed: int) -> None:
    """link_pairs/ as jobs/walks.py writes it (src, dst, edge): ``count`` pairs, half of two IDs of one community
    (edge true), half of two random IDs (edge false)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.default_rng(seed)
    half = count // 2
    src = rng.integers(0, ids, size=count)  # (count,)
    members = ids // communities
    same = rng.integers(0, members, size=half) * communities + src[:half] % communities  # (half,) same community
    dst = np.concatenate([same, rng.integers(0, ids, size=count - half)])
    path.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.table({"src": src.astype(str), "dst": dst.astype(str), "edge": np.arange(count) < half}),
                   path / "part-00000.parquet")


def poll_storage(stop: threading.Event, peaks: dict) -> None:
    """Every 2 s, each executor's memoryUsed + diskUsed from the driver's REST API -> the peak per executor."""
    while not stop.is_set():
        try:
            with urllib.request.urlopen("http://127.0.0.1:4040/api/v1/applications", timeout=2) as r:
                app = json.load(r)[0]["id"]
            with urllib.request.urlopen(f"http://127.0.0.1:4040/api/v1/applications/{app}/executors",
                                        timeout=2) as r:
                for e in json.load(r):
                    if e["id"] != "driver":
                        used = e["memoryUsed"] + e["diskUsed"]
                        peaks[e["id"]] = max(peaks.get(e["id"], 0), used)
        except (OSError, ValueError, KeyError, IndexError):
            pass
        stop.wait(2.0)


def submit(master: list[str], job: str, sets: list[str], log: Path, env) -> tuple[int, float]:
    cmd = [str(ROOT / "spark-submit.sh"), *master, f"jobs/{job}.py"]
    for s in sets:
        cmd += ["--set", s]
    t0 = time.perf_counter()
    with open(log, "w") as out:
        rc = subprocess.run(cmd, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT, env=env).returncode
    return rc, time.perf_counter() - t0


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ids", type=int, default=2_000_000)
    ap.add_argument("--per-id", type=int, default=5)
    ap.add_argument("--length", type=int, default=10)
    ap.add_argument("--communities", type=int, default=100)
    ap.add_argument("--dim", type=int, default=64)
    ap.add_argument("--partitions", type=int, default=2)
    ap.add_argument("--syncs", type=int, default=4, help="train.syncs_per_epoch")
    ap.add_argument("--driver-memory", default="512m", help="the train job's driver")
    ap.add_argument("--vocab-driver-memory", default=None, help="the vocabulary job's driver (default: "
                    "--driver-memory; above 1M words it ranks the vocabulary in Spark, below as Arrow on the driver)")
    ap.add_argument("--executor-memory", default="2g")
    ap.add_argument("--worker-memory", default="3g")
    ap.add_argument("--set", action="append", default=[], help="more train settings, section.key=value")
    ap.add_argument("--no-export", action="store_true", help="skip the export job (run after training, with the "
                    "train job's driver memory)")
    ap.add_argument("--no-eval", action="store_true", help="skip the evaluation job (run last, with the train "
                    "job's driver memory)")
    ap.add_argument("--pairs", type=int, default=200_000, help="pairs scored by the evaluation's link prediction")
    ap.add_argument("--work", type=Path, required=True)
    args = ap.parse_args(argv)

    from tests.cluster.conftest import StandaloneCluster

    signal.signal(signal.SIGTERM, lambda *_: sys.exit("stopped"))  # so that the cluster below is stopped too
    args.work.mkdir(parents=True, exist_ok=True)
    data = args.work / "sequences.parquet"
    if not data.exists():
        tokens = write_sequences(data, args.ids, args.per_id, args.length, args.communities, seed=1)
        print(f"corpus: {tokens:,} tokens over {args.ids:,} IDs", flush=True)
    cluster = StandaloneCluster(args.work)
    cluster.start(workers=2, memory=args.worker_memory)
    try:
        master = ["--master", cluster.url, "--conf", "spark.driver.host=127.0.0.1", "--executor-memory",
                  args.executor_memory, "--total-executor-cores", "2", "--conf", "spark.ui.enabled=true"]
        run = args.work / "run"
        common = [f"output.dir={run}", "output.overwrite=true", f"input.path={data}", "input.format=parquet",
                  "input.tokens_column=seq", "vocab.min_count=1"]
        rc, seconds = submit([*master, "--driver-memory", args.vocab_driver_memory or args.driver_memory],
                             "build_vocab", common, args.work / "vocab.log", cluster.env)
        print(f"vocabulary job: rc {rc}, {seconds:.0f} s", flush=True)
        if rc:
            raise SystemExit(f"the vocabulary job failed: {args.work / 'vocab.log'}")
        stop, peaks = threading.Event(), {}
        poller = threading.Thread(target=poll_storage, args=(stop, peaks), daemon=True)
        poller.start()
        train = [*common, f"train.dim={args.dim}", "train.epochs=1", f"train.num_partitions={args.partitions}",
                 f"train.syncs_per_epoch={args.syncs}", "train.params_on=executors", "train.checkpoint_every=0",
                 *args.set]
        rc, seconds = submit([*master, "--driver-memory", args.driver_memory], "train", train,
                             args.work / "train.log", cluster.env)
        stop.set()
        poller.join()
        exported = evaluated = None
        if rc == 0 and not args.no_export:
            exported = submit([*master, "--driver-memory", args.driver_memory], "export", common,
                              args.work / "export.log", cluster.env)
        if rc == 0 and not args.no_eval:
            write_pairs(run / "link_pairs", args.ids, args.communities, args.pairs, seed=2)
            evaluated = submit([*master, "--driver-memory", args.driver_memory], "evaluate",
                               [*common, f"eval.data_dir={ROOT / 'data' / 'eval'}", "eval.words=0,1,2"],
                               args.work / "evaluate.log", cluster.env)
    finally:
        cluster.stop()
    log = (args.work / "train.log").read_text()
    model_bytes = 2 * args.ids * args.dim * 4
    print(f"train job: rc {rc}, {seconds:.0f} s (parameters {model_bytes / 2**30:.2f} GiB, driver "
          f"{args.driver_memory})")
    for pattern in (r"training: .*", r"trained in .*", r"traffic per epoch: .*", r"model written to .*"):
        m = re.search(pattern, log)
        print("  " + (m.group(0) if m else f"(no line matching {pattern!r})"))
    for executor, used in sorted(peaks.items()):
        print(f"  executor {executor}: storage peak {used / 2**30:.2f} GiB (memory + disk)")
    data_dir = run / "model" / "data"
    if data_dir.exists():
        import pyarrow.parquet as pq

        rows = sum(pq.ParquetFile(f).metadata.num_rows for f in sorted(data_dir.glob("*.parquet")))
        print(f"  model/data: {rows:,} rows")
    if rc:
        raise SystemExit(f"the train job failed: {args.work / 'train.log'}")
    if exported is not None:
        export_rc, export_seconds = exported
        sizes = ", ".join(f"{f.name} {f.stat().st_size / 2**30:.2f} GiB" for f in sorted((run / "export").glob("*")))
        print(f"export job (driver {args.driver_memory}): rc {export_rc}, {export_seconds:.0f} s: {sizes}")
        if export_rc:
            raise SystemExit(f"the export job failed: {args.work / 'export.log'}")
        with open(run / "export" / "vectors.bin", "rb") as f:
            print(f"  vectors.bin header: {f.readline().decode().strip()}")
    if evaluated is not None:
        eval_rc, eval_seconds = evaluated
        print(f"evaluation job (driver {args.driver_memory}): rc {eval_rc}, {eval_seconds:.0f} s")
        if eval_rc:
            raise SystemExit(f"the evaluation job failed: {args.work / 'evaluate.log'}")
        for line in (args.work / "evaluate.log").read_text().splitlines():
            if line.startswith(("link prediction", "  ")) or "WS353" in line:
                print("  " + line.strip())


if __name__ == "__main__":
    main()

"""A real Spark standalone cluster on 127.0.0.1: one master and two workers (1 core, 2 GB each).

Every process is started in its own session and stopped by process group at teardown, even when a test fails.
"""
import json
import os
import signal
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class StandaloneCluster:
    def __init__(self, workdir: Path):
        import pyspark

        self.spark_home = Path(pyspark.__file__).parent
        self.workdir = workdir
        self.port, self.ui_port = free_port(), free_port()
        self.url = f"spark://127.0.0.1:{self.port}"
        self.env = {**os.environ, "SPARK_LOCAL_IP": "127.0.0.1", "SPARK_HOME": str(self.spark_home),
                    "SPARK_WORKER_DIR": str(workdir / "work"), "SPARK_LOG_DIR": str(workdir / "logs")}
        self.procs: dict[str, subprocess.Popen] = {}

    def _start(self, name: str, *args: str) -> None:
        log = open(self.workdir / f"{name}.log", "w")
        self.procs[name] = subprocess.Popen([str(self.spark_home / "bin" / "spark-class"), *args], env=self.env,
                                            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)

    def start(self, workers: int = 2, timeout: float = 90.0, memory: str = "2g") -> None:
        self._start("master", "org.apache.spark.deploy.master.Master", "--host", "127.0.0.1", "--port",
                    str(self.port), "--webui-port", str(self.ui_port))
        self.memory = memory
        for i in range(workers):
            self.start_worker(i)
        self.wait_for(workers, timeout)

    def start_worker(self, i: int) -> None:
        self._start(f"worker{i}", "org.apache.spark.deploy.worker.Worker", "--host", "127.0.0.1", "--cores",
                    "1", "--memory", self.memory, "--webui-port", str(free_port()), "--work-dir",
                    str(self.workdir / f"work{i}"), self.url)

    def wait_for(self, workers: int, timeout: float = 90.0) -> None:
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.alive_workers() == workers:
                return
            time.sleep(1)
        raise RuntimeError(f"only {self.alive_workers()} of {workers} workers registered within {timeout}s; "
                           f"see {self.workdir}")

    def alive_workers(self) -> int:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.ui_port}/json/", timeout=2) as r:
                return int(json.load(r).get("aliveworkers", 0))
        except OSError:
            return 0

    def kill(self, name: str) -> None:
        """SIGKILL a process and everything it started (a worker and its executor)."""
        proc = self.procs[name]
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait(timeout=30)

    def stop(self) -> None:
        for name in list(self.procs):
            self.kill(name)


@pytest.fixture(scope="session")
def cluster(tmp_path_factory):
    c = StandaloneCluster(tmp_path_factory.mktemp("standalone"))
    try:
        c.start()
        yield c
    finally:
        c.stop()

"""The benchmark's --runs parser (bench/run_bench.py is a script, not part of the package)."""
import importlib.util
from pathlib import Path

import pytest

_path = Path(__file__).resolve().parents[2] / "bench" / "run_bench.py"
_spec = importlib.util.spec_from_file_location("run_bench", _path)
run_bench = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(run_bench)


def test_parse_run_fields_and_default_seed():
    assert run_bench.parse_run("8:scaled:0") == (8, "scaled", 0, 1)
    assert run_bench.parse_run("8:scaled_row:16:3") == (8, "scaled_row", 16, 3)


@pytest.mark.parametrize("text, message", [("8:scaled", "expected PARTITIONS"),
                                           ("8:median:0", "unknown combine rule 'median'")])
def test_parse_run_rejects_bad_runs(text, message):
    with pytest.raises(SystemExit, match=message):
        run_bench.parse_run(text)

"""Parameters and deltas through files (local mode): what a task reads is what the driver wrote, what the driver
reads is what the task wrote, and nothing is left behind."""
import os

import numpy as np
import pytest

from w2vspark.train.file_exchange import FileExchange, delta_path, load_params, read_deltas, write_deltas
from w2vspark.train.task import PartitionResult


def _result(rng, dim=3):
    in_ids = np.array([0, 4, 9], dtype=np.int64)  # int64 in, int32 out: the files hold int32 ids
    out_ids = np.array([2], dtype=np.int32)
    return PartitionResult(in_ids=in_ids, in_delta=rng.standard_normal((3, dim)).astype(np.float32),
                           out_ids=out_ids, out_delta=rng.standard_normal((1, dim)).astype(np.float32),
                           loss_sum=1.0, pairs=4, words=5, seconds=0.1)


def test_a_task_maps_the_parameters_the_driver_published_read_only(tmp_path):
    rng = np.random.default_rng(1)
    w_in, w_out = (rng.standard_normal((10, 3)).astype(np.float32) for _ in range(2))
    ex = FileExchange(str(tmp_path))
    path_in, path_out, size = ex.publish(7, w_in, w_out)
    assert size == w_in.nbytes + w_out.nbytes + 2 * 128  # two .npy headers of 128 bytes
    got_in, got_out = load_params(path_in, path_out)
    assert np.array_equal(got_in, w_in) and np.array_equal(got_out, w_out)
    assert got_in.dtype == np.float32 and got_in.shape == (10, 3)
    with pytest.raises(ValueError):  # a task can never write into the shared parameters
        got_in[0, 0] = 1.0
    del got_in, got_out
    ex.withdraw([path_in, path_out])
    ex.withdraw([path_in])  # already gone: no error
    assert os.listdir(ex.dir) == []
    ex.close()
    assert not os.path.exists(ex.dir) and os.listdir(tmp_path) == []


def test_deltas_come_back_as_written_with_int32_ids_and_no_temporary_file(tmp_path):
    res = _result(np.random.default_rng(2))
    ex = FileExchange(str(tmp_path))
    path = delta_path(os.path.join(ex.dir, "params-3-in.npy"), 3, 1, 0)
    assert os.path.dirname(path) == ex.dir and os.path.basename(path) == "deltas-3-1-0.npy"
    size = write_deltas(path, res)
    assert os.listdir(ex.dir) == ["deltas-3-1-0.npy"]  # renamed into place, no .tmp left
    in_ids, in_delta, out_ids, out_delta = read_deltas(path)
    assert size == os.path.getsize(path) == 4 * 128 + (3 + 1) * 4 + (3 + 1) * 3 * 4
    assert in_ids.dtype == np.int32 and in_ids.tolist() == [0, 4, 9]
    assert np.array_equal(in_delta, res.in_delta) and np.array_equal(out_delta, res.out_delta)
    assert out_ids.tolist() == [2]
    ex.close()


def test_an_attempt_of_another_number_never_overwrites_a_finished_file(tmp_path):
    params = os.path.join(str(tmp_path), "params-0-in.npy")
    first, retry = delta_path(params, 0, 2, 0), delta_path(params, 0, 2, 1)
    assert first != retry and delta_path(params, 1, 2, 0) != first and delta_path(params, 0, 3, 0) != first
    rng = np.random.default_rng(3)
    a, b = _result(rng), _result(rng)
    write_deltas(first, a)
    write_deltas(retry, b)
    assert np.array_equal(read_deltas(first)[1], a.in_delta)
    assert np.array_equal(read_deltas(retry)[1], b.in_delta)

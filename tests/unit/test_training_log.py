from w2vspark.train.stage import mixed_kernels


def test_mixed_kernels_warns_only_when_tasks_ran_both_kernels():
    same = {"a/executor=0/code=shipped/kernel=native", "b/executor=1/code=shipped/kernel=native"}
    assert mixed_kernels(same) is None
    assert mixed_kernels({"a/executor=driver/code=installed/kernel=numpy"}) is None
    assert mixed_kernels(set()) is None
    warning = mixed_kernels(same | {"c/executor=2/code=shipped/kernel=numpy"})
    assert warning.startswith("warning:") and "native, numpy" in warning and "bit-reproducible" in warning

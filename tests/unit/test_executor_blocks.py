"""The parameter blocks of train.params_on=executors, without Spark: the random start made block by block, and
the block keys."""
import numpy as np
import pytest

from w2vspark.train.executor_params import BlockKeys, block_count, initial_block
from w2vspark.train.loop import init_params


@pytest.mark.parametrize("vocab_size, dim, block_rows", [(20_000, 7, 8192), (1000, 3, 64), (5, 16, 8192)])
def test_the_start_made_by_block_is_init_params_bit_for_bit(vocab_size, dim, block_rows):
    w_in, w_out = init_params(vocab_size, dim, seed=3)
    blocks = block_count(vocab_size, block_rows)
    rebuilt_in = np.concatenate([initial_block(3, dim, vocab_size, "w_in", b, block_rows) for b in range(blocks)])
    rebuilt_out = np.concatenate([initial_block(3, dim, vocab_size, "w_out", b, block_rows) for b in range(blocks)])
    assert np.array_equal(rebuilt_in, w_in) and np.array_equal(rebuilt_out, w_out)
    assert not np.array_equal(initial_block(4, dim, vocab_size, "w_in", 0, block_rows), w_in[:block_rows])


def test_block_keys_go_both_ways():
    keys = BlockKeys(20_000, 8192)  # 3 blocks per matrix
    pairs = [(m, b) for m in ("w_in", "w_out") for b in range(3)]
    assert [keys.key(m, b) for m, b in pairs] == list(range(6))
    assert [(keys.matrix(k), keys.block(k)) for k in range(6)] == pairs

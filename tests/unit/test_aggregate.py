import numpy as np
import pytest

from w2vspark.train.combine import (Combined, DeltaAccumulator, add_rows, combine, default_task_lr_scale,
                                    frequency_band, row_norms, rule_updates, scale_rows, step_limits)

# row 0 touched by both tasks with equal deltas, row 1 by both with orthogonal deltas, row 2 by task A only
A = (np.array([0, 1, 2]), np.array([[1.0, 0.0], [1.0, 0.0], [2.0, 2.0]], dtype=np.float32))
B = (np.array([0, 1]), np.array([[1.0, 0.0], [0.0, 1.0]], dtype=np.float32))


def dense(result, rows=4):
    ids, upd = result
    out = np.zeros((rows, 2), dtype=np.float32)
    out[ids] = upd
    return out


def test_sum_and_average_by_hand():
    assert np.array_equal(dense(combine([A, B], 4, 2, "sum")), [[2, 0], [1, 1], [2, 2], [0, 0]])
    assert np.array_equal(dense(combine([A, B], 4, 2, "average")), [[1, 0], [0.5, 0.5], [2, 2], [0, 0]])


def test_scaled_averages_agreement_and_sums_unrelated():
    got = dense(combine([A, B], 4, 2, "scaled"))
    # row 0: |d|^2 sum = 2, |U|^2 = 4 -> f = 0.5 (average); row 1: 2 / 2 = 1 (sum); row 2: one task -> 1
    assert np.allclose(got, [[1, 0], [1, 1], [2, 2], [0, 0]])
    # opposite deltas: |U| = 0 -> the (zero) sum is kept
    C = (np.array([3]), np.array([[1.0, 1.0]], dtype=np.float32))
    D = (np.array([3]), np.array([[-1.0, -1.0]], dtype=np.float32))
    assert np.allclose(dense(combine([C, D], 4, 2, "scaled"))[3], 0)


def test_frequency_bands_by_hand():
    # floor(4 log2(id + 1)): 4 log2(9) = 12.7 and 4 log2(10) = 13.3, so ids 7 and 8 share band 12
    assert frequency_band(np.array([0, 1, 2, 3, 4, 7, 8, 9, 90, 106, 107])).tolist() == [0, 4, 6, 8, 9, 12, 12, 13,
                                                                                        26, 26, 27]


def test_scaled_pools_agreement_over_a_frequency_band():
    # rows 95 and 96 share band 26: row 95 gets equal deltas (own agreement 2/4), row 96 orthogonal ones (2/2);
    # pooled: (2 + 2) / (4 + 2) = 2/3 for both. Row 200 (band 30) is alone in its band: its own 2/4.
    ids = np.array([95, 96, 200])
    a = (ids, np.array([[1.0, 0.0], [1.0, 0.0], [1.0, 0.0]], dtype=np.float32))
    b = (ids, np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0]], dtype=np.float32))
    got_ids, got = combine([a, b], 300, 2, "scaled")
    assert got_ids.tolist() == [95, 96, 200]
    assert np.allclose(got, [[4 / 3, 0], [2 / 3, 2 / 3], [1, 0]])
    _, own = combine([a, b], 300, 2, "scaled_row")
    assert np.allclose(own, [[1, 0], [1, 1], [1, 0]])


def test_scaled_does_not_depend_on_the_blocks():
    rng = np.random.default_rng(5)
    acc = DeltaAccumulator(5000, 4)
    for _ in range(4):
        ids = np.unique(rng.integers(0, 5000, size=3000))
        acc.add(ids, rng.normal(size=(len(ids), 4)).astype(np.float32))
    whole = acc.combined("in")
    cuts = [0, 7, 1000, 1001, 2500, len(whole.ids)]  # uneven blocks, given out of order
    blocks = [type(whole)("in", whole.ids[a:b], whole.total[a:b], whole.square_sum[a:b], whole.count[a:b])
              for a, b in zip(cuts, cuts[1:])][::-1]
    assert np.array_equal(np.concatenate(rule_updates(blocks, "scaled")[::-1]), whole.update("scaled"))
    assert not np.allclose(whole.update("scaled"), whole.update("scaled_row"))  # pooling changed something


def test_one_part_is_exact_for_every_rule():
    rng = np.random.default_rng(0)
    delta = rng.normal(size=(5, 3)).astype(np.float32)
    for rule in ("sum", "average", "scaled", "scaled_row"):
        ids, upd = combine([(np.arange(5), delta)], 5, 3, rule)
        assert np.array_equal(upd, delta), rule
    with pytest.raises(ValueError, match="unknown combine rule"):
        combine([(np.arange(5), delta)], 5, 3, "median")


def test_default_lr_scale():
    assert [default_task_lr_scale("scaled", p) for p in (1, 2, 3, 4, 6, 8, 16)] == [1, 2, 3, 4, 4, 4, 4]
    assert default_task_lr_scale("scaled_row", 3) == 3.0
    assert default_task_lr_scale("scaled_row", 16) == 4.0
    assert default_task_lr_scale("average", 8) == 1.0
    assert default_task_lr_scale("sum", 8) == 1.0
    hs = [default_task_lr_scale("scaled", p, "hierarchical_softmax") for p in (1, 2, 3, 8)]
    assert hs == [1, 2, 2, 2]  # every task moves the top of the tree: a lower cap
    assert default_task_lr_scale("scaled", 8, "neg_sampling") == 4.0
    cbow = [default_task_lr_scale("scaled", p, "neg_sampling", "cbow") for p in (1, 2, 4, 8, 16)]
    assert cbow == [1, 2, 4, 8, 8]  # CBOW's updates agree more across partitions: a higher cap
    assert default_task_lr_scale("scaled", 8, "hierarchical_softmax", "cbow") == 2.0
    assert default_task_lr_scale("average", 8, "neg_sampling", "cbow") == 1.0


def limit_steps(lengths, counts, updates, max_step):
    """The step limit as the trainer applies it: factors from the update lengths, then each block scaled."""
    blocks = [_block(c) for c in counts]
    factors, shortened = step_limits(lengths, blocks, [row_norms(u) for u in updates], max_step)
    return [scale_rows(u, f) for u, f in zip(updates, factors)], shortened


def _block(count):
    count = np.asarray(count, dtype=np.int32)
    m = len(count)
    return Combined("in", np.arange(m, dtype=np.int32), np.zeros((m, 2), np.float32), np.ones(m), count)


def test_limit_steps_by_hand():
    updates = np.array([[1.0, 0.0], [0.0, 2.0], [12.0, 0.0]], dtype=np.float32)  # steps 1, 2, 12
    shared = [np.full(3, 2)]  # every row moved by two tasks
    # grown rows (lengths 4): typical = max(median length 4, median step 2) = 4 -> only the 12 is cut, to 4
    (got,), shortened = limit_steps([np.full(3, 4.0)], shared, [updates], 1.0)
    assert shortened == 1 and np.allclose(got, [[1, 0], [0, 2], [4, 0]])
    # rows at zero (w_out at the start): typical = the median step 2; the step of exactly 2 is not cut
    (got,), shortened = limit_steps([np.zeros(3)], shared, [updates], 1.0)
    assert shortened == 1 and np.allclose(got, [[1, 0], [0, 2], [2, 0]])
    # a row longer than the typical (2) may move up to its own length; max_step scales the limit
    (got,), shortened = limit_steps([np.array([0.0, 0.0, 6.0])], shared, [updates], 0.5)
    assert shortened == 2 and np.allclose(got, [[1, 0], [0, 1], [3, 0]])
    # ... but not more than 4 x the typical: with steps 10, 20, 120 (typical 20) a row of length 100 moves 80
    (got,), shortened = limit_steps([np.array([0.0, 0.0, 100.0])], shared, [updates * 10], 1.0)
    assert shortened == 1 and np.allclose(got, [[10, 0], [0, 20], [80, 0]])
    # a row moved by one task alone is never cut: its step is that task's own
    (got,), shortened = limit_steps([np.zeros(3)], [np.array([2, 2, 1])], [updates], 1.0)
    assert shortened == 0 and np.array_equal(got, updates)
    # 0 disables the limit: the very arrays come back
    out, shortened = limit_steps([np.zeros(3)], shared, [updates], 0.0)
    assert shortened == 0 and out[0] is updates


def test_limit_steps_keeps_directions_and_ignores_blocks():
    rng = np.random.default_rng(3)
    lengths = rng.uniform(0, 3, size=40)
    lengths[5] = 50.0  # one very long row
    counts = np.full(40, 3)
    updates = (rng.normal(size=(40, 5)) * rng.lognormal(0, 1.5, size=(40, 1))).astype(np.float32)
    updates[5] *= 100
    (whole,), shortened = limit_steps([lengths], [counts], [updates], 1.0)
    assert 0 < shortened < 40
    cuts = [0, 3, 17, 40]  # the same rows in uneven blocks (as the Spark runner yields them)
    blocks, shortened_blocks = limit_steps([lengths[a:b] for a, b in zip(cuts, cuts[1:])],
                                           [counts[a:b] for a, b in zip(cuts, cuts[1:])],
                                           [updates[a:b] for a, b in zip(cuts, cuts[1:])], 1.0)
    assert shortened_blocks == shortened and np.array_equal(np.concatenate(blocks), whole)
    steps, new_steps = np.linalg.norm(updates, axis=1), np.linalg.norm(whole, axis=1)
    typical = max(np.median(lengths), np.median(steps))
    bound = np.maximum(np.minimum(lengths, 4 * typical), typical)
    assert np.all(new_steps <= bound * (1 + 1e-6))
    assert new_steps[5] == pytest.approx(4 * typical, rel=1e-5)  # the long row moves 4 typical lengths at most
    cos = np.einsum("md,md->m", updates, whole) / (steps * new_steps)
    assert np.allclose(cos, 1.0, atol=1e-6)
    assert np.array_equal(whole[steps <= bound], updates[steps <= bound])


@pytest.mark.parametrize("rule", ["scaled_row", "sum"])
def test_apply_round_caps_each_rows_factor(rule):
    """With tasks at m x the learning rate, max_factor = 1/m: row 0 (two tasks agreeing: the rule's 1/2) keeps
    its factor under a cap of 0.7; row 1 (orthogonal: 1) and row 2 (one task: 1) are cut to 0.7, so they move
    exactly the plain sum of the tasks' steps at the configured rate."""
    from w2vspark.train.loop import apply_round, local_round
    from w2vspark.train.task import PartitionResult

    def result(ids, delta):
        return PartitionResult(ids.astype(np.int32), delta, ids.astype(np.int32), delta, 0.0, 1, 1, 0.0)

    for cap in (1.0, 0.7):
        w_in, w_out = np.zeros((4, 2), np.float32), np.zeros((4, 2), np.float32)
        apply_round(local_round(enumerate([result(*A), result(*B)]), w_in, w_out), w_in, w_out, rule,
                    max_factor=cap)
        total = np.array([[2, 0], [1, 1], [2, 2], [0, 0]], np.float32)  # A + B
        own = {"scaled_row": [0.5, 1, 1], "sum": [1, 1, 1]}[rule]
        expected = total * np.r_[np.minimum(own, cap), 0][:, None]
        assert np.allclose(w_in, expected) and np.allclose(w_out, expected), (rule, cap)


@pytest.mark.parametrize("native", [True, False])
def test_add_rows_adds_each_row_once(native, monkeypatch):
    """The driver's and the executors' row additions (compiled scatter-add, or numpy's fancy indexing when the
    helper is not built) give the bits of w[ids] += rows."""
    from w2vspark import compiled

    if native and not compiled.available("scatter_add"):
        pytest.skip("the compiled helpers are not built")
    if not native:
        monkeypatch.setattr(compiled, "helper", lambda name, use=None: None)
    rng = np.random.default_rng(5)
    w = rng.standard_normal((50, 7)).astype(np.float32)  # (V, d)
    ids = rng.choice(50, size=20, replace=False).astype(np.int32)  # (n,) unique, unsorted
    rows = rng.standard_normal((20, 7)).astype(np.float32) * 1e-3  # (n, d)
    expected = w.copy()
    for i, r in enumerate(ids):
        expected[r] = expected[r] + rows[i]
    add_rows(w, ids, rows)
    assert np.array_equal(w, expected)
    if native:
        with pytest.raises(IndexError):
            add_rows(w, np.array([50], np.int32), rows[:1])


def test_band_partials_of_whole_blocks_add_up_to_the_same_bits():
    """Executors that each hold whole blocks of rows pool the same agreement as the driver holding them all."""
    from w2vspark.train.combine import band_agreement, band_partials, sum_band_partials
    rng = np.random.default_rng(8)
    ids = np.unique(rng.integers(0, 40_000, size=20_000))
    square_sum, norm2 = rng.random(len(ids)) * 3, rng.random(len(ids))
    whole = band_agreement(sum_band_partials([band_partials(ids, square_sum, norm2, block_rows=1000)]))
    pieces = []
    for block in np.unique(ids // 1000)[::-1]:  # one piece per block, arriving in any order
        rows = ids // 1000 == block
        pieces.append(band_partials(ids[rows], square_sum[rows], norm2[rows], block_rows=1000))
    assert np.array_equal(band_agreement(sum_band_partials(pieces)), whole)
    # the pooled agreement is the bands' ratio of sums (checked by hand on one band)
    band = (4 * np.log2(ids + 1.0)).astype(int)
    last = band == band.max()
    assert whole[band.max()] == pytest.approx(square_sum[last].sum() / norm2[last].sum(), rel=1e-12)

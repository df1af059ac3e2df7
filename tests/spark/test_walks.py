"""The walk job on Spark: walks follow the edges and the weights, node2vec's p is felt, runs are reproducible,
and bad edge lists get clear errors."""
import re
from collections import Counter

import pytest

from w2vspark.config import load_config
from w2vspark.errors import InputError
from w2vspark.walks import generate_walks

EDGES = [("a", "b", 1.0), ("b", "c", 2.0), ("c", "a", 1.0), ("c", "d", 1.0), ("e", "e", 1.0)]  # e: a self-loop


def run(spark, tmp_path, edges, *overrides, schema="src string, dst string, weight double", name="edges"):
    path = tmp_path / name
    if edges is not None and not path.exists():
        spark.createDataFrame(edges, schema).write.parquet(str(path))
    cfg = load_config(None, [f"walks.edges={path}", f"output.dir={tmp_path / 'out'}", "output.overwrite=true",
                             *overrides])
    stats = generate_walks(spark, cfg, log=lambda *_: None)
    return stats, [list(r.walk) for r in spark.read.parquet(str(tmp_path / "out" / "walks")).collect()]


def test_walks_follow_the_weighted_edges_and_repeat(spark, tmp_path):
    stats, walks = run(spark, tmp_path, EDGES, "walks.per_node=400", "walks.length=3")
    both_ways = {(s, d) for s, d, _ in EDGES if s != d} | {(d, s) for s, d, _ in EDGES if s != d}
    assert all((x, y) in both_ways for w in walks for x, y in zip(w, w[1:]))
    assert Counter(w[0] for w in walks) == {n: 400 for n in "abcde"}  # every node starts per_node walks
    assert sorted({len(w) for w in walks if w[0] != "e"}) == [3] and all(w == ["e"] for w in walks if w[0] == "e")
    assert (stats["nodes"], stats["self_loops"], stats["nodes_without_out_edges"], stats["walks"]) == (5, 1, 1, 2000)
    # first steps from c go to b, a, d with weights 2, 1, 1: b's share is binomial(400, 0.5), sd 10; allow 5 sd
    assert abs(sum(w[1] == "b" for w in walks if w[0] == "c") - 200) < 50
    _, again = run(spark, tmp_path, EDGES, "walks.per_node=400", "walks.length=3")
    _, other = run(spark, tmp_path, EDGES, "walks.per_node=400", "walks.length=3", "walks.seed=2")
    assert sorted(again) == sorted(walks) and sorted(other) != sorted(walks)


def test_node2vec_return_parameter_and_directed_dead_ends(spark, tmp_path):
    # p = 0.001: going back to the previous node weighs 1000x more than any other step
    _, walks = run(spark, tmp_path, EDGES, "walks.per_node=20", "walks.length=3", "walks.p=0.001")
    moved = [w for w in walks if len(w) == 3]
    assert sum(w[2] == w[0] for w in moved) > 0.95 * len(moved)
    # directed: d has no out-edge, so walks reaching it stop there; ids that are numbers become their string
    edges = [(1, 2), (2, 3), (3, 1), (3, 4)]
    stats, walks = run(spark, tmp_path, edges, "walks.per_node=30", "walks.length=6", "walks.directed=true",
                       schema="src bigint, dst bigint", name="directed")
    assert all(w[-1] == "4" for w in walks if len(w) < 6)
    assert any(len(w) < 6 for w in walks if w[0] != "4") and stats["nodes_without_out_edges"] == 1
    assert all((int(x), int(y)) in edges for w in walks for x, y in zip(w, w[1:]))


A_TO_C = {"a": 1 / 2, "b": 2 / 3}  # first steps by the weights: a's neighbours b 1, c 1; b's a 1, c 2


@pytest.mark.parametrize("p, q, proposals, from_a, from_b", [
    # c's neighbours: b (weight 2, a neighbour of a), a (1), d (1, a neighbour of neither a nor b).
    # p = 2, q = 0.5: reached from a, a 1 x 0.5, b 2 x 1, d 1 x 2 -> 1/9, 4/9, 4/9; from b, b 2 x 0.5, a 1 x 1,
    # d 1 x 2 -> 1/4, 1/4, 1/2. Every proposal is drawn by the weights and kept with probability alpha / 2.
    (2.0, 0.5, (2, 8), {"a": 1 / 9, "b": 4 / 9, "d": 4 / 9}, {"b": 1 / 4, "a": 1 / 4, "d": 1 / 2}),
    # p = 0.5, q = 2: from a, a 1 x 2, b 2 x 1, d 1 x 0.5 -> 4/9, 4/9, 1/9; from b, b 2 x 2, a 1, d 0.5 -> 8/11,
    # 2/11, 1/11. 1/p is above max(1, 1/q): the step back has a region of its own in the proposals' envelope.
    (0.5, 2.0, (2, 8), {"a": 4 / 9, "b": 4 / 9, "d": 1 / 9}, {"b": 8 / 11, "a": 2 / 11, "d": 1 / 11}),
    # one round of one proposal: the exact step takes the walkers whose proposal was rejected
    (2.0, 0.5, (1,), {"a": 1 / 9, "b": 4 / 9, "d": 4 / 9}, {"b": 1 / 4, "a": 1 / 4, "d": 1 / 2}),
])
def test_node2vec_steps_have_the_second_order_probabilities(spark, tmp_path, monkeypatch, p, q, proposals,
                                                           from_a, from_b):
    """The second step of walks a -> c and b -> c, counted over 2,000 walks per node, against node2vec's
    probabilities worked out by hand."""
    import w2vspark.walks

    monkeypatch.setattr(w2vspark.walks, "PROPOSALS", proposals)
    stats, walks = run(spark, tmp_path, EDGES, "walks.per_node=2000", "walks.length=3", f"walks.p={p}",
                       f"walks.q={q}")
    # step 1 is first-order; step 2 keeps about every second proposal here, so of its 8,000 walkers more than
    # 1/64 keep none of the first round's proposals and go on to the second round (of 8 more)
    assert stats["node2vec_proposal_rounds"] == len(proposals)
    if proposals == (1,):  # the walkers whose one proposal was rejected: the exact step's
        assert stats["node2vec_exact_step_walkers"] > 1000
    for start, expected in (("a", from_a), ("b", from_b)):
        third = Counter(w[2] for w in walks if w[0] == start and w[1] == "c")
        n, to_c = sum(third.values()), A_TO_C[start]
        assert abs(n - 2000 * to_c) < 5 * (2000 * to_c * (1 - to_c)) ** 0.5
        assert set(third) == set(expected)
        for node, share in expected.items():  # binomial counts, 5 standard deviations
            assert abs(third[node] - n * share) < 5 * (n * share * (1 - share)) ** 0.5, (start, node, third)


def test_bad_edge_lists_are_named(spark, tmp_path):
    with pytest.raises(InputError, match="edge list not found: .*nowhere"):
        run(spark, tmp_path, None, f"walks.edges={tmp_path / 'nowhere'}")
    with pytest.raises(InputError, match=r"2 edges have a negative weight, e.g. a -> b \(weight -1.0\)"):
        run(spark, tmp_path, [("a", "b", -1.0), ("b", "c", 1.0), ("c", "a", -2.0)], name="negative")
    with pytest.raises(InputError, match="only self-loops"):
        run(spark, tmp_path, [("a", "a", 1.0), ("b", "b", 1.0)], name="loops")
    csv = tmp_path / "edges.csv"
    csv.write_text("from,to\na,b\n")
    with pytest.raises(InputError, match=re.escape(f"edge list {csv} has no column 'src'; its columns are: from, to")):
        run(spark, tmp_path, None, f"walks.edges={csv}")
    csv.write_text("src,dst,weight\na,b,1\nb,c,heavy\n")
    with pytest.raises(InputError, match="1 edges have a weight that is missing, not a number"):
        run(spark, tmp_path, None, f"walks.edges={csv}")

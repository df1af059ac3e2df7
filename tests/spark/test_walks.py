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

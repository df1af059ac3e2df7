"""The walk step against node2vec's transition probabilities written out by hand, one walker at a time; the alias
tables of the first-order step against the probabilities they must give."""
import numpy as np
import pytest

from w2vspark.walk_step import alias_table, alias_tables, choose_next, neighbour_of_previous

# a small weighted graph: node -> {neighbour: weight}
GRAPH = {0: {1: 1.0, 2: 2.0, 3: 1.0}, 1: {0: 1.0, 2: 1.0}, 2: {0: 2.0, 1: 1.0, 3: 0.5, 4: 3.0},
         3: {0: 1.0, 2: 0.5}, 4: {2: 3.0}, 5: {}}


def expected(cur, prev, p, q):
    """node2vec's normalised transition probabilities from ``cur`` having come from ``prev`` (None: first step)."""
    weights = {}
    for x, w in GRAPH[cur].items():
        alpha = 1.0 if prev is None else 1.0 / p if x == prev else 1.0 if x in GRAPH[prev] else 1.0 / q
        weights[x] = w * alpha
    total = sum(weights.values())
    return {x: w / total for x, w in weights.items()}


def csr(nodes):
    offsets = np.cumsum([0] + [len(GRAPH[v]) for v in nodes])
    nbrs = np.array([x for v in nodes for x in GRAPH[v]], dtype=np.int64)
    weights = np.array([w for v in nodes for w in GRAPH[v].values()], dtype=np.float64)
    return offsets, nbrs, weights


@pytest.mark.parametrize("p, q", [(1.0, 1.0), (0.25, 4.0), (4.0, 0.5)])
def test_transition_frequencies_match_node2vec(p, q):
    states = [(0, None), (2, 0), (2, 1), (0, 2), (2, 4), (1, 0)]  # (current, previous)
    reps = 20_000
    cur = [c for c, _ in states for _ in range(reps)]
    prev = np.array([-1 if t is None else t for _, t in states for _ in range(reps)], dtype=np.int64)
    offsets, nbrs, weights = csr(cur)
    prev_offsets, prev_nbrs, _ = csr([max(t, 0) if t is not None else 5 for _, t in states for _ in range(reps)])
    u = np.random.default_rng(0).random(len(cur))
    nxt, moved = choose_next(offsets, nbrs, weights, u, prev, prev >= 0, prev_offsets, prev_nbrs, p, q)
    assert moved.all()
    for k, (c, t) in enumerate(states):
        got = nxt[k * reps:(k + 1) * reps]
        for x, prob in expected(c, t, p, q).items():
            # a frequency of 20,000 draws: sd = sqrt(p(1-p)/20000) <= 0.0036; allow 5 sd
            assert abs(np.mean(got == x) - prob) < 5 * np.sqrt(prob * (1 - prob) / reps) + 1e-9, (c, t, x)
        assert set(got.tolist()) <= set(GRAPH[c])


def test_inverse_transform_is_exact_at_the_edges_of_the_draw():
    offsets, nbrs, weights = csr([0, 0, 0, 0])  # weights 1, 2, 1 -> cumulative 0.25, 0.75, 1.0
    u = np.array([0.0, 0.2499, 0.25, 0.9999999])
    nxt, _ = choose_next(offsets, nbrs, weights, u)
    assert nxt.tolist() == [1, 1, 2, 3]


def test_dead_ends_do_not_move():
    offsets, nbrs, weights = csr([5, 4, 5])
    nxt, moved = choose_next(offsets, nbrs, weights, np.array([0.5, 0.5, 0.5]))
    assert moved.tolist() == [False, True, False] and nxt.tolist() == [-1, 2, -1]


def test_membership_is_per_walker():
    # walker 0 has candidate 7 and its previous node has 7; walker 1 has 7 but its previous node only 8
    found = neighbour_of_previous(np.array([0, 2, 4]), np.array([7, 9, 7, 8], dtype=np.int64),
                                  np.array([0, 1, 2]), np.array([7, 8], dtype=np.int64))
    assert found.tolist() == [True, False, False, True]


def implied(accept, alias):
    """Each slot's probability under the alias draw: its own share accept[j] / k plus the shares (1 - accept[i]) / k
    of the slots i that give way to it."""
    k = len(accept)
    return (accept + np.bincount(alias, weights=1.0 - accept, minlength=k)) / k


@pytest.mark.parametrize("weights", [[1.0], [1.0, 1.0, 1.0], [2.0, 1.0, 1.0], [1e-9, 1.0, 3.0, 1e6],
                                     np.random.default_rng(0).exponential(size=257).tolist(),
                                     np.random.default_rng(1).integers(1, 4, size=40).astype(float).tolist()])
def test_alias_table_gives_each_slot_its_weight(weights):
    accept, alias = alias_table(np.array(weights))
    w = np.array(weights) / np.sum(weights)
    assert np.all((0 <= accept) & (accept <= 1)) and np.all((0 <= alias) & (alias < len(weights)))
    np.testing.assert_allclose(implied(accept, alias), w, rtol=1e-9, atol=1e-15)


def test_alias_tables_of_a_graph_map_slots_to_neighbours():
    nodes = [0, 1, 2, 3, 4]  # 1 and 4 have equal weights: no table, every slot kept
    offsets, nbrs, weights = csr(nodes)
    accept, alias_nbr = alias_tables(offsets, nbrs, weights)
    for i, v in enumerate(nodes):
        a, b = offsets[i], offsets[i + 1]
        if len(set(GRAPH[v].values())) == 1:
            assert accept[a:b].tolist() == [1.0] * (b - a)
        prob = {x: 0.0 for x in GRAPH[v]}
        for e in range(a, b):  # slot e keeps nbrs[e] with accept[e], else gives way to alias_nbr[e]
            prob[int(nbrs[e])] += accept[e] / (b - a)
            prob[int(alias_nbr[e])] += (1 - accept[e]) / (b - a)
        total = sum(GRAPH[v].values())
        assert prob == pytest.approx({x: w / total for x, w in GRAPH[v].items()}, rel=1e-12)


def test_alias_draw_frequencies():
    # the draw the Spark step makes, done here in numpy: slot floor(k u), kept when the fraction < accept
    accept, alias = alias_table(np.array([2.0, 1.0, 1.0, 4.0]))
    u = np.random.default_rng(3).random(200_000)
    slot = np.floor(u * 4).astype(int)
    got = np.where(u * 4 - slot < accept[slot], slot, alias[slot])
    expect = np.array([2.0, 1.0, 1.0, 4.0]) / 8
    # binomial sd sqrt(p (1 - p) / n) <= 0.0012 at n = 200,000; 5 sd
    np.testing.assert_allclose(np.bincount(got, minlength=4) / len(u), expect, atol=5 * 0.0012)

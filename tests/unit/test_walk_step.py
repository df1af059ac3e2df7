"""The walk step against node2vec's transition probabilities written out by hand, one walker at a time."""
import numpy as np
import pytest

from w2vspark.walk_step import choose_next, neighbour_of_previous

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

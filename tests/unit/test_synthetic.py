"""The synthetic corpora of planted structure and the class-purity measure."""
from collections import Counter

import numpy as np
import pytest

from w2vspark import synthetic


def test_planted_classes_shape():
    data = synthetic.planted_classes(tokens=20_000, seed=3)
    assert data.tokens == 20_000
    assert all(8 <= len(s) <= 15 for s in data.sentences[:-1]) and 1 <= len(data.sentences[-1]) <= 15
    counts = Counter(t for s in data.sentences for t in s)
    assert len(data.labels) == 300 and set(data.labels.values()) == set(range(12))
    glue = sum(c for w, c in counts.items() if w.startswith("glue"))
    assert glue / 20_000 == pytest.approx(0.40, abs=0.02)  # the glue words' share
    # a sentence's own class dominates its class words: about 45 of the 60 class tokens in 100
    for sentence in data.sentences[:50]:
        classes = Counter(data.labels[t] for t in sentence if t in data.labels)
        if sum(classes.values()) >= 6:
            assert classes.most_common(1)[0][1] >= 2
    assert synthetic.planted_classes(tokens=20_000, seed=3).sentences == data.sentences  # deterministic
    assert synthetic.planted_classes(tokens=20_000, seed=4).sentences != data.sentences


@pytest.mark.parametrize("degree", [10, 0])
def test_planted_walks_stay_mostly_in_their_community(degree):
    data = synthetic.planted_walks(num_nodes=500, num_communities=5, walks_per_node=2, walk_length=10,
                                   degree=degree, p_in=0.85, seed=1)
    assert len(data.sentences) == 1000 and all(len(s) == 10 for s in data.sentences)
    assert [s[0] for s in data.sentences[:500]] == [f"n{i}" for i in range(500)]  # a walk from every node
    steps = [(a, b) for s in data.sentences for a, b in zip(s, s[1:])]
    same = np.mean([data.labels[a] == data.labels[b] for a, b in steps])
    # 0.85 stay by construction, plus the random steps that land in the same community by chance (1/5 of 0.15)
    assert same == pytest.approx(0.85 + 0.15 / 5, abs=0.03)
    counts = Counter(t for s in data.sentences for t in s)
    assert len(counts) > 450  # walks visit nearly every node


@pytest.mark.parametrize("lengths", [(5, 25), (2, 3), (500, 1500)])
def test_zipf_text_counts_span_orders_of_magnitude(lengths):
    data = synthetic.zipf_text(tokens=50_000, vocab_size=1000, min_length=lengths[0], max_length=lengths[1],
                               seed=2)
    assert data.tokens == 50_000
    assert all(lengths[0] <= len(s) <= lengths[1] for s in data.sentences[:-1])
    counts = sorted(Counter(t for s in data.sentences for t in s).values(), reverse=True)
    assert counts[0] / counts[len(counts) // 2] > 30


def test_class_purity_by_hand():
    words = ["a1", "a2", "a3", "b1", "b2", "b3", "glue"]
    labels = {"a1": 0, "a2": 0, "a3": 0, "b1": 1, "b2": 1, "b3": 1}
    vectors = np.array([[1, 0.1], [1, 0.2], [1, 0.3], [0.1, 1], [0.2, 1], [0.3, 1], [1, 1]], dtype=np.float32)
    assert synthetic.class_purity(words, vectors, labels, k=2) == 1.0  # both neighbours of each word share it
    # with k = 3 every word has 2 same-class neighbours among its 3 nearest labelled words (glue is ignored)
    assert synthetic.class_purity(words, vectors, labels, k=3) == pytest.approx(2 / 3)
    swapped = vectors[[0, 3, 1, 4, 2, 5, 6]]  # classes interleaved: a word's nearest are mostly the other class
    assert synthetic.class_purity(words, swapped, labels, k=2) < 0.5
    # chunking and max_queries do not change the result on the queried words
    assert synthetic.class_purity(words, vectors, labels, k=2, chunk=1, max_queries=4) == 1.0


def test_class_purity_of_random_vectors_is_chance():
    rng = np.random.default_rng(0)
    words = [f"w{i}" for i in range(1200)]
    labels = {w: i % 12 for i, w in enumerate(words)}
    got = synthetic.class_purity(words, rng.normal(size=(1200, 16)), labels, k=5)
    assert got == pytest.approx(1 / 12, abs=0.02)

"""Metrics on hand-made vectors where the answer is known, and agreement with gensim on the same vectors."""
import numpy as np
import pytest

from w2vspark.evaluate import (DATA_DIR, analogy_accuracy, rank, read_pairs, read_questions, spearman,
                               word_similarity)
from w2vspark.model import Word2VecModel


def test_rank_and_spearman():
    assert rank([10, 20, 20, 5]).tolist() == [2.0, 3.5, 3.5, 1.0]
    assert spearman([1, 2, 3, 4], [10, 20, 30, 40]) == pytest.approx(1.0)
    assert spearman([1, 2, 3, 4], [4, 3, 2, 1]) == pytest.approx(-1.0)
    # hand-computed: d = rank differences (0, 0, -1, 1) -> 1 - 6*2/(4*15) = 0.8
    assert spearman([1, 2, 3, 4], [1, 2, 4, 3]) == pytest.approx(0.8)


def test_similarity_with_known_answer_and_coverage(tmp_path):
    angles = np.radians([0, 30, 60, 90])  # cosine with 'a' falls 1, .87, .5, 0
    words = ["a", "b", "c", "d"]
    model = Word2VecModel(words, np.stack([np.cos(angles), np.sin(angles)], axis=1))
    pairs = [("a", "b", 9.0), ("A", "c", 5.0), ("a", "d", 1.0), ("a", "zzz", 3.0)]
    got = word_similarity(model, pairs)
    assert got["spearman"] == pytest.approx(1.0)
    assert got["pairs"] == 3 and got["total"] == 4 and got["coverage"] == 0.75


def test_analogy_with_known_answer(tmp_path):
    # king - man + woman = queen exactly; 'prince' is a distractor; 'apple' is not in the top-k
    words = ["man", "woman", "king", "queen", "prince", "apple"]
    vectors = np.array([[1, 0, 0], [1, 1, 0], [1, 0, 1], [1, 1, 1], [1, -0.2, 1], [0, 0, 1]], dtype=np.float32)
    model = Word2VecModel(words, vectors)
    (tmp_path / "q.txt").write_text(": family\nman woman king queen\nMan King woman queen\n"
                                    ": gram1\nman king woman prince\nman king woman apple\n")
    got = analogy_accuracy(model, read_questions(tmp_path / "q.txt"), restrict=5)
    assert got["semantic"]["accuracy"] == 1.0 and got["semantic"]["seen"] == 2
    assert got["syntactic"]["accuracy"] == 0.0 and got["syntactic"]["seen"] == 1  # apple is outside the top 5
    assert got["total"]["seen"] == 3 and got["total"]["total"] == 4
    assert got["total"]["coverage"] == pytest.approx(0.75)


def test_agrees_with_gensim_on_the_same_vectors():
    from gensim.models import KeyedVectors

    pairs = read_pairs(DATA_DIR / "wordsim353.tsv")
    sections = read_questions(DATA_DIR / "questions-words.txt")
    vocab = sorted({w.lower() for a, b, _ in pairs for w in (a, b)}
                   | {w.lower() for _, qs in sections[:3] for q in qs for w in q})
    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(len(vocab), 20)).astype(np.float32)
    keep = rng.random(len(vocab)) < 0.8  # leave some words out, so that coverage is partial
    words = [w for w, k in zip(vocab, keep) if k]
    model = Word2VecModel(words, vectors[keep])
    kv = KeyedVectors(20)
    kv.add_vectors(words, vectors[keep])

    ours = word_similarity(model, pairs)
    _, theirs_spearman, oov_pct = kv.evaluate_word_pairs(str(DATA_DIR / "wordsim353.tsv"), case_insensitive=True)
    assert ours["spearman"] == pytest.approx(theirs_spearman.statistic, abs=1e-6)
    assert 100 * (1 - ours["coverage"]) == pytest.approx(oov_pct)

    small = tmp_questions = [(name, qs) for name, qs in sections[:3]]
    ours_a = analogy_accuracy(model, small, restrict=500)
    import tempfile
    with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as f:
        for name, qs in tmp_questions:
            f.write(f": {name}\n" + "".join(" ".join(q) + "\n" for q in qs))
    theirs_total, theirs_sections = kv.evaluate_word_analogies(f.name, restrict_vocab=500, case_insensitive=True)
    assert ours_a["total"]["accuracy"] == pytest.approx(theirs_total)
    theirs_seen = sum(len(s["correct"]) + len(s["incorrect"]) for s in theirs_sections if s["section"] != "Total accuracy")
    assert ours_a["total"]["seen"] == theirs_seen

"""Intrinsic evaluation: word-similarity Spearman correlation and analogy accuracy, each with coverage.

Conventions (as gensim's ``evaluate_word_pairs`` / ``evaluate_word_analogies``, case-insensitive):
- pairs and questions are lowercased; when several model words fold to the same lowercase form, the most
  frequent (lowest id) stands for it;
- a pair or question with a word the model lacks is skipped and counted against coverage;
- analogies: 3CosAdd over unit vectors, candidates restricted to the ``restrict`` most frequent words (30,000 by
  default), a, b and c excluded from the answers.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from .model import Word2VecModel

DATA_DIR = Path(__file__).resolve().parents[1] / "data" / "eval"


def read_pairs(path: str | Path) -> list[tuple[str, str, float]]:
    """Tab-separated 'word1 word2 score' lines; '#' lines are comments."""
    pairs = []
    for n, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip() or line.startswith("#"):
            continue
        fields = line.split("\t")
        if len(fields) < 3:
            raise ValueError(f"{path}:{n}: expected 'word1<TAB>word2<TAB>score', got {line!r}")
        pairs.append((fields[0], fields[1], float(fields[2])))
    return pairs


def read_questions(path: str | Path) -> list[tuple[str, list[tuple[str, str, str, str]]]]:
    """Sections (': name' lines) of 'a b c d' analogy questions."""
    sections: list = []
    for n, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), 1):
        if line.startswith(":"):
            sections.append((line[1:].strip(), []))
        elif line.strip():
            words = line.split()
            if len(words) != 4 or not sections:
                raise ValueError(f"{path}:{n}: expected 4 words under a ': section' line, got {line!r}")
            sections[-1][1].append(tuple(words))
    return sections


def rank(values: np.ndarray) -> np.ndarray:
    """Ranks 1..n, ties given their average rank."""
    values = np.asarray(values, dtype=np.float64)
    order = np.argsort(values, kind="stable")
    ranks = np.empty(len(values))
    sorted_vals = values[order]
    starts = np.flatnonzero(np.r_[True, sorted_vals[1:] != sorted_vals[:-1]])
    ends = np.r_[starts[1:], len(values)]
    for s, e in zip(starts, ends):
        ranks[order[s:e]] = (s + e + 1) / 2.0
    return ranks


def spearman(x, y) -> float:
    rx, ry = rank(x), rank(y)
    rx -= rx.mean()
    ry -= ry.mean()
    denom = np.sqrt((rx ** 2).sum() * (ry ** 2).sum())
    return float((rx * ry).sum() / denom) if denom > 0 else float("nan")


def _folded_index(model: Word2VecModel, limit: int | None = None) -> dict[str, int]:
    index: dict[str, int] = {}
    words = model.words if limit is None else model.words[:limit]
    for i, w in enumerate(words):
        index.setdefault(w.lower(), i)
    return index


def word_similarity(model: Word2VecModel, pairs) -> dict:
    """Spearman correlation between cosine similarities and human scores over the covered pairs."""
    index = _folded_index(model)
    unit = model._unit_vectors()
    sims, gold = [], []
    for w1, w2, score in pairs:
        i, j = index.get(w1.lower()), index.get(w2.lower())
        if i is None or j is None:
            continue
        sims.append(float(unit[i] @ unit[j]))
        gold.append(score)
    rho = spearman(sims, gold) if len(sims) >= 2 else float("nan")
    return {"spearman": rho, "pairs": len(sims), "total": len(pairs), "coverage": len(sims) / max(len(pairs), 1)}


def analogy_accuracy(model: Word2VecModel, sections, restrict: int = 30_000, chunk: int = 512) -> dict:
    """3CosAdd accuracy per section, semantic (non-``gram``), syntactic (``gram``) and total."""
    model = model.by_frequency()  # candidates: the ``restrict`` most frequent words
    index = _folded_index(model, restrict)
    limit = min(restrict, len(model.words))
    unit = model._unit_vectors()[:limit]  # (R, d)
    out: dict = {"sections": {}}
    totals = {"semantic": [0, 0, 0], "syntactic": [0, 0, 0]}  # correct, seen, total
    for name, questions in sections:
        seen = [tuple(index.get(w.lower()) for w in q) for q in questions]
        seen = np.array([q for q in seen if None not in q], dtype=np.int64).reshape(-1, 4)
        correct = 0
        for lo in range(0, len(seen), chunk):
            q = seen[lo:lo + chunk]  # (n, 4) ids of a b c d
            target = unit[q[:, 1]] - unit[q[:, 0]] + unit[q[:, 2]]  # (n, d)
            scores = target @ unit.T  # (n, R)
            rows = np.arange(len(q))[:, None]
            scores[rows, q[:, :3]] = -np.inf
            correct += int((scores.argmax(axis=1) == q[:, 3]).sum())
        kind = "syntactic" if name.startswith("gram") else "semantic"
        for k, v in zip(range(3), (correct, len(seen), len(questions))):
            totals[kind][k] += v
        out["sections"][name] = {"accuracy": correct / len(seen) if len(seen) else float("nan"),
                                 "seen": len(seen), "total": len(questions)}
    for kind, (correct, seen, total) in totals.items():
        out[kind] = {"accuracy": correct / seen if seen else float("nan"), "seen": seen, "total": total,
                     "coverage": seen / total if total else 0.0}
    correct = sum(v[0] for v in totals.values())
    seen = sum(v[1] for v in totals.values())
    total = sum(v[2] for v in totals.values())
    out["total"] = {"accuracy": correct / seen if seen else float("nan"), "seen": seen, "total": total,
                    "coverage": seen / total if total else 0.0}
    return out


SIMILARITY_SETS = {"ws353": "wordsim353.tsv", "simlex999": "simlex999.txt"}
ANALOGIES = "questions-words.txt"


def evaluate_model(model: Word2VecModel, data_dir: str | Path = DATA_DIR, restrict: int = 30_000) -> dict:
    """WS353, SimLex-999 and Google analogies on the shipped data sets."""
    data_dir = Path(data_dir)
    scores = {name: word_similarity(model, read_pairs(data_dir / file)) for name, file in SIMILARITY_SETS.items()}
    scores["analogy"] = analogy_accuracy(model, read_questions(data_dir / ANALOGIES), restrict)
    return scores


def similarity_words(data_dir: str | Path = DATA_DIR) -> set[str]:
    """The words of the similarity sets, lowercased (as :func:`word_similarity` looks them up)."""
    return {w.lower() for file in SIMILARITY_SETS.values() for pair in read_pairs(Path(data_dir) / file)
            for w in pair[:2]}


def format_score(value: float, pct: bool = False) -> str:
    """A score for people; NaN (nothing of the set was in the vocabulary) says so."""
    if value != value:
        return "n/a (no coverage)"
    return f"{value:.1%}" if pct else f"{value:.3f}"


def summary_line(scores: dict) -> str:
    a = scores["analogy"]["total"]
    ws, sl = scores["ws353"], scores["simlex999"]
    return (f"WS353 {format_score(ws['spearman'])} ({ws['coverage']:.0%} of pairs), "
            f"SimLex {format_score(sl['spearman'])} ({sl['coverage']:.0%}), "
            f"analogy {format_score(a['accuracy'], pct=True)} ({a['coverage']:.0%} of questions)")

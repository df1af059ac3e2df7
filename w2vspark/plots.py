"""Pictures of a run: the loss per round, and a labelled 2-D PCA map of chosen words (as in CS224n a2).

matplotlib is the ``plot`` extra; functions return PNG bytes so that callers can write them anywhere.
"""
from __future__ import annotations

import io
from typing import Mapping, Sequence

import numpy as np

from .errors import UserError
from .model import Word2VecModel


def _pyplot():
    try:
        import matplotlib
    except ImportError:
        raise UserError("plots need matplotlib: pip install 'w2vspark[plot]'") from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def _png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=120, bbox_inches="tight")
    _pyplot().close(fig)
    return buf.getvalue()


def loss_rounds(records: Sequence[dict]) -> list[dict]:
    """The round records of metrics.jsonl that have a loss: no rollback events, no round without pairs."""
    return [r for r in records if "event" not in r and r.get("pairs", 1)]


def loss_plot(records: Sequence[dict]) -> bytes:
    """Mean pair loss per sync round, with epoch boundaries and the divergence guard's rollbacks."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 3.5))
    events = [r for r in records if "event" in r]
    records = loss_rounds(records)
    rounds = [r["round"] for r in records]
    ax.plot(rounds, [r["loss"] for r in records], marker="o", markersize=3)
    for r in records:
        if r["sync"] == 1 and r["round"] > 1:
            ax.axvline(r["round"] - 0.5, color="0.85", linewidth=0.8, zorder=0)
    for e in events:
        ax.axvline(e["resume_round"] - 0.5, color="tab:red", linewidth=0.8, linestyle="--", zorder=0)
    ax.set_xlabel("sync round (grey lines: epochs; red dashes: rollbacks)" if events else
                  "sync round (grey lines: epochs)")
    ax.set_ylabel("mean loss per pair")
    ax.set_title("training loss")
    ax.grid(alpha=0.3)
    return _png(fig)


def pca_2d(vectors: np.ndarray) -> np.ndarray:
    """Project rows (n, d) on their first two principal components -> (n, 2), via SVD."""
    centered = vectors - vectors.mean(axis=0, keepdims=True)
    _, _, vt = np.linalg.svd(centered, full_matrices=False)
    return centered @ vt[:2].T


def words_plot(model: Word2VecModel, words: Sequence[str], fallback: int = 30) -> bytes:
    """Labelled 2-D PCA map of ``words`` (words missing from the model are left out). When fewer than 3 of them
    are in the model (another language, product or node IDs), the ``fallback`` most frequent words are shown."""
    present = [w for w in words if w in model]
    title = "word vectors, first two principal components"
    if len(present) < 3:
        present = list(model.words[:fallback])
        title = f"the {len(present)} most frequent words, first two principal components"
    if len(present) < 3:
        raise UserError(f"words plot needs at least 3 words; the model has {len(model.words)}")
    points = pca_2d(np.stack([model.vector(w) for w in present]).astype(np.float64))
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 5))
    ax.scatter(points[:, 0], points[:, 1], s=12, color="tab:red")
    for (x, y), w in zip(points, present):
        ax.annotate(w, (x, y), xytext=(3, 3), textcoords="offset points", fontsize=9)
    ax.set_title(title)
    ax.set_xticks([])
    ax.set_yticks([])
    return _png(fig)


def labels_plot(model: Word2VecModel, labels: Mapping[str, str], count: int = 500) -> bytes:
    """2-D PCA map of the ``count`` most frequent labelled ids (nodes, items), coloured by label."""
    present = [w for w in model.words if w in labels][:count]
    if len(present) < 3:
        raise UserError(f"label map needs at least 3 labelled ids in the model; it has {len(present)}")
    points = pca_2d(np.stack([model.vector(w) for w in present]).astype(np.float64))
    classes = sorted({labels[w] for w in present})
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 5))
    cmap = plt.get_cmap("tab20")
    for k, c in enumerate(classes):
        mine = np.array([labels[w] == c for w in present])
        ax.scatter(points[mine, 0], points[mine, 1], s=8, color=cmap(k % 20), label=c)
    if len(classes) <= 20:
        ax.legend(fontsize=7, markerscale=1.5, loc="best", ncol=2)
    ax.set_title(f"the {len(present)} most frequent labelled ids, first two principal components")
    ax.set_xticks([])
    ax.set_yticks([])
    return _png(fig)

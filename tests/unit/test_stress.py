"""The stress matrix at test size: the default settings on corpora of other shapes than prose, at many partition
counts, against the 1-partition run of the same seed (bench/stress.py runs the full-size matrix and reports
it against the benchmark's targets: final loss within 5%, purity within 0.03).

The in-process trainer is what every Spark task runs, combined the same way (bit for bit; see
tests/spark/test_training.py), so these cells stand for Spark runs with the same settings.

Tolerances, from the measured cells: the loss is the trained model's loss over the whole corpus
(w2vspark.train.local.model_loss, the same draws in every cell). A divergence puts it at 10^2 .. 10^30 or NaN (the
dense corpus at 4 partitions before damping; long sentences at 8 partitions when the damping sized steps by the
curvature at the scores, s (1 - s), and no step limit was set); the partition count also changes how far
training gets, and at this size the model loss ends up to 11.3% above 1 partition's (long sentences at 16
partitions, where each task trains one whole sentence of one topic; 9.9% at 8; every other cell within 3.4%).
15% separates the two. (The last round's training loss, measured while the tasks train at m x the learning
rate, spread up to 19% above 1 partition's on the same cells, which is why it is not the measure.) Purity@5 of
the planted classes is 0.99-1.00 at 1 partition on every shape here and 0.994-1.000 at more; >= 0.95 and
within 0.05 of 1 partition catches a model that lost the structure (chance is 1 / classes: 0.02-0.10).
"""
import importlib.util
import os
import sys
from pathlib import Path

import numpy as np
import pytest

_path = Path(__file__).resolve().parents[2] / "bench" / "stress.py"
_spec = importlib.util.spec_from_file_location("stress", _path)
stress = importlib.util.module_from_spec(_spec)
sys.modules["stress"] = stress  # its dataclasses look their module up
_spec.loader.exec_module(stress)

CELLS = {  # shape: (scale, partition counts, seeds)
    "dense": (0.4, (2, 3, 4, 8, 16), (1, 2)),
    "walks": (0.2, (2, 4, 16), (1,)),
    "zipf": (0.1, (4, 16), (1,)),
    "short": (0.3, (4, 16), (1,)),
    # 150 sentences of about 1000 tokens: at 16 partitions x 32 rounds most rounds are empty and each task
    # trains one whole sentence of one topic
    "long": (0.1, (4, 8, 16), (1,)),
}
WORKERS = min(os.cpu_count() or 1, 4)  # cells trained at a time (forked processes; the same results)
LOSS_TOLERANCE = 0.15
MIN_PURITY, PURITY_GAP = 0.95, 0.05


@pytest.fixture(scope="module")
def matrix():
    cells = []
    for shape, (scale, partitions, seeds) in CELLS.items():
        cells += stress.run_matrix([shape], list(partitions), list(seeds), scale, log=lambda *_: None,
                                   workers=WORKERS)
    return cells


@pytest.mark.parametrize("shape", list(CELLS))
def test_every_cell_converges_and_keeps_the_planted_classes(matrix, shape):
    cells = [c for c in matrix if c["shape"] == shape]
    assert len(cells) == len(CELLS[shape][2]) * (len(CELLS[shape][1]) + 1)
    base = {c["seed"]: c for c in cells if c["partitions"] == 1}
    for c in cells:
        ref = base[c["seed"]]
        assert np.isfinite(c["final_loss"]) and c["final_loss"] <= ref["final_loss"] * (1 + LOSS_TOLERANCE), c
        assert c["purity"] >= MIN_PURITY and c["purity"] >= ref["purity"] - PURITY_GAP, c
        assert c["rollbacks"] == 0 and not c.get("diverged"), c  # the defaults never needed the guard here


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # the unguarded run overflows on purpose
def test_without_damping_the_dense_corpus_diverges_and_the_guard_saves_the_run():
    """The failure the damping removes, and the guard as the second line: plain minibatch SGD at 4 partitions
    jumps to a loss of about 100 in round 3; the guard rolls back, halves the task learning rate and the run
    ends at the 1-partition quality."""
    data = stress.SHAPES["dense"].make(1.0, 0)
    settings = [*stress.SHAPES["dense"].settings, "train.damping=false"]
    guarded = stress.run_cell(data, settings, 4, 1)
    assert guarded["rollbacks"] >= 1 and guarded["purity"] >= 0.95
    unguarded = stress.run_cell(data, [*settings, "train.rollback_ratio=0", "train.max_step=0"], 4, 1)
    # a NaN stops an unguarded run at once (the cell records it as diverged); otherwise a loss of 10^10 and more
    assert unguarded.get("diverged") or not unguarded["final_loss"] < 100 * guarded["final_loss"]


ARCHITECTURE_CELLS = {  # shape: (scale, partition counts); seed 1, CBOW and hierarchical softmax with their defaults
    "dense": (0.4, (4, 16)),
    "walks": (0.2, (4,)),
    "short": (0.3, (16,)),
}


@pytest.mark.parametrize("setting", ["train.model=cbow", "train.loss=hierarchical_softmax"])
def test_other_architectures_converge_on_the_stress_shapes(setting):
    """CBOW (no step limit, task learning rate min(P, 8) by default) and skip-gram with hierarchical softmax on
    the shapes where the combining is hardest: no rollback, the planted classes kept, the model loss at most 15%
    above 1 partition's, as for skip-gram (measured: CBOW within -1.7% .. +3.8% of 1 partition, dense at 4
    partitions 2.207 against 2.126 the largest; hierarchical softmax within -0.6% .. +0.2%)."""
    for shape, (scale, partitions) in ARCHITECTURE_CELLS.items():
        cells = stress.run_matrix([shape], list(partitions), [1], scale, settings=[setting], log=lambda *_: None,
                                  workers=WORKERS)
        ref = next(c for c in cells if c["partitions"] == 1)
        for c in cells:
            assert np.isfinite(c["final_loss"]) and c["final_loss"] <= ref["final_loss"] * (1 + LOSS_TOLERANCE), c
            assert c["purity"] >= MIN_PURITY and c["purity"] >= ref["purity"] - PURITY_GAP, c
            assert c["rollbacks"] == 0 and not c.get("diverged"), c


def test_cbow_keeps_random_walks_at_8_partitions():
    """CBOW on uniform-frequency IDs at 8 partitions, 5 epochs: nearly every node is moved by every task, so the
    scaled rule averages most rows; the tasks' default multiplier min(P, 8) makes up for it. Measured on this
    corpus: model loss 1.4% below 1 partition's (2.344 against 2.378); with CBOW's former min(P, 4) 6.5% above
    (2.531), and 5.2% / 5.0% above at full size (two seeds), where min(P, 8) ends 11% below. The bound is the
    benchmark's 5%."""
    data = stress.SHAPES["walks"].make(0.2, 1)
    settings = [*stress.SHAPES["walks"].settings, "train.model=cbow"]
    one, eight = (stress.run_cell(data, settings, p, 1) for p in (1, 8))
    assert eight["rollbacks"] == 0 and eight["purity"] >= MIN_PURITY
    assert eight["final_loss"] <= 1.05 * one["final_loss"], (eight["final_loss"], one["final_loss"])

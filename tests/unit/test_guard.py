"""The divergence guard of the training loop (trainer.fit), driven by a scripted round runner: which round is
rolled back, to where, with which learning rate, what the checkpoints see, and when the run stops."""
import numpy as np
import pytest

from w2vspark.train.combine import DeltaAccumulator
from w2vspark.config import load_config
from w2vspark.train.loop import (MAX_ROLLBACKS, GuardState, TaskReport, TrainingDiverged, fit, judge_round,
                              round_specs)

V, D = 6, 3


class ScriptedRunner:
    """A round's loss is 1 + the largest |w_in| entry at its start (what the tasks would measure), and every
    round adds lr to w_in. Rounds in ``explode`` add ``size`` instead while their learning rate is above
    ``below`` (a combine gone wrong that a smaller learning rate avoids)."""

    def __init__(self, explode=(), size=1e3, below=0.0):
        self.explode, self.size, self.below = set(explode), size, below
        self.calls = []  # (round index, lr_start) of every round run

    def __call__(self, spec, w_in, w_out):
        self.calls.append((spec.index, spec.lr_start))
        loss = 1.0 + float(np.abs(w_in).max())
        yield TaskReport(0, loss * 100, 100, 1000, 0.0)
        step = self.size if spec.index in self.explode and spec.lr_start > self.below else spec.lr_start
        for matrix in ("in", "out"):
            acc = DeltaAccumulator(V, D)
            acc.add(np.arange(V), np.full((V, D), step, dtype=np.float32))
            yield acc.combined(matrix)


def _run(runner, *overrides, guard=None, start=0, params=None):
    cfg = load_config(None, ["train.epochs=3", "train.syncs_per_epoch=2", "train.num_partitions=1",
                             "train.lr=0.01", "train.min_lr=0.01", "train.max_step=0", *overrides]).train
    w_in, w_out = params or (np.zeros((V, D), np.float32), np.zeros((V, D), np.float32))
    records, events, epochs = [], [], []
    fit(cfg, runner, w_in, w_out, round_specs(cfg, 1000, 1), start, on_round=records.append,
        on_rollback=events.append, guard=guard,
        on_epoch_end=lambda e, a, b, g: epochs.append((e, a.copy(), g.lr_scale)))
    return w_in, records, events, epochs


def test_judge_round():
    assert judge_round(2.0, 1.5, {}, 1.5) is None  # 2.0 <= 1.5 x 1.5
    assert "1.5 x the best" in judge_round(2.3, 1.5, {}, 1.5)
    assert judge_round(2.3, 1.5, {}, 0.0) is None  # the loss check is off
    assert judge_round(9.0, float("inf"), {}, 1.5) is None  # nothing to compare with yet
    assert "NaN" in judge_round(2.0, 1.5, {"w_in": 3}, 1.5)
    assert "loss nan" == judge_round(float("nan"), 1.5, {}, 1.5)
    assert judge_round(None, 1.5, {}, 1.5) is None  # a round without pairs has no loss to judge


def test_a_bad_combine_is_rolled_back_and_the_run_goes_on_at_half_the_rate():
    runner = ScriptedRunner(explode=[2], below=0.006)  # round index 2 explodes at lr 0.01, not at 0.005
    w_in, records, events, epochs = _run(runner)
    # round 4 (index 3) sees the loss jump, round 3 (index 2) made it: back to the start of round 3
    assert events == [{"event": "rollback", "round": 4, "reason": events[0]["reason"], "resume_round": 3,
                       "lr_scale": 0.5, "rollbacks": 1}]
    assert [i for i, _ in runner.calls] == [0, 1, 2, 3, 2, 3, 4, 5]
    assert [lr for i, lr in runner.calls[4:]] == pytest.approx([0.005] * 4)
    # the parameters are those of 2 rounds at lr 0.01 and 4 at 0.005, exactly
    assert np.allclose(w_in, 2 * 0.01 + 4 * 0.005)
    assert [r["round"] for r in records] == [1, 2, 3, 3, 4, 5, 6]  # the exploded round 4 is not recorded
    assert records[-1]["lr_scale"] == 0.5
    # checkpoints only see confirmed parameters: epoch 1's (after round 2) and epoch 2's (after the re-run
    # round 4), never the exploded ones
    assert [e for e, _, _ in epochs] == [0, 1, 2]
    assert all(np.abs(w).max() < 1 for _, w, _ in epochs)
    assert np.allclose(epochs[1][1], 2 * 0.01 + 2 * 0.005) and epochs[1][2] == 0.5


def test_a_nan_is_rolled_back_to_the_start_of_its_own_round():
    runner = ScriptedRunner(explode=[3], size=np.nan, below=0.006)
    w_in, _, events, _ = _run(runner)
    assert [(e["round"], e["resume_round"]) for e in events] == [(4, 4)]
    assert "NaN" in events[0]["reason"]
    assert np.isfinite(w_in).all() and np.allclose(w_in, 3 * 0.01 + 3 * 0.005)


def test_the_guard_is_deterministic():
    first = _run(ScriptedRunner(explode=[2], below=0.006))[0]
    second = _run(ScriptedRunner(explode=[2], below=0.006))[0]
    assert np.array_equal(first, second)


def test_a_run_that_keeps_diverging_stops_naming_the_round_and_the_setting():
    runner = ScriptedRunner(explode=[2])  # explodes at any learning rate
    with pytest.raises(TrainingDiverged, match=r"round 4 .*after 3 rollback\(s\).*train\.lr") as info:
        _run(runner)
    assert "No model was written" in str(info.value)
    assert len(runner.calls) == 4 + 2 * MAX_ROLLBACKS


def test_without_the_guard_a_nan_stops_the_run_at_once():
    runner = ScriptedRunner(explode=[1], size=np.nan)
    with pytest.raises(TrainingDiverged, match=r"round 2 .*NaN"):
        _run(runner, "train.rollback_ratio=0")
    assert len(runner.calls) == 2
    # and a loss jump is let through
    w_in, _, events, _ = _run(ScriptedRunner(explode=[2], below=0.006), "train.rollback_ratio=0")
    assert events == [] and np.abs(w_in).max() > 100


def test_a_resumed_run_keeps_the_lowered_rate():
    """Resuming from epoch 2's checkpoint (rounds 0-3 done, learning rate halved) gives the same parameters as
    the run that was not interrupted."""
    whole = _run(ScriptedRunner(explode=[2], below=0.006))
    _, checkpoint, scale = whole[3][1]
    resumed = _run(ScriptedRunner(), guard=GuardState(lr_scale=scale, rollbacks=1), start=4,
                   params=(checkpoint.copy(), checkpoint.copy()))
    assert np.array_equal(resumed[0], whole[0])


def test_the_report_names_rollbacks_and_a_loss_far_above_its_minimum():
    from w2vspark.report import health_lines, health_warnings

    rounds = [{"round": r, "loss": loss, "pairs": 10} for r, loss in enumerate([4.0, 3.0, 2.0, 2.1], 1)]
    assert health_warnings(rounds) == []
    assert health_lines(rounds) == ["- no rollback; the last round's loss is within 1.25 x the lowest"]
    event = {"event": "rollback", "round": 3, "reason": "loss 9 is more than 1.5 x the best so far (2)",
             "resume_round": 2, "lr_scale": 0.5, "rollbacks": 1}
    empty = {"round": 5, "loss": 0.0, "pairs": 0}  # a round without pairs has no loss
    ended_high = rounds + [event, empty, {"round": 6, "loss": 2.6, "pairs": 10}]
    (warning,) = health_warnings(ended_high)
    assert "2.6000 is 1.30 x the lowest (2.0000)" in warning
    lines = health_lines(ended_high)
    assert lines[0].startswith("- **rollback**: round 3 diverged (loss 9") and "round 2" in lines[0]
    assert lines[1].startswith("- **warning**: the last round's loss 2.6000")


def test_the_report_names_a_model_that_hardly_moved_from_its_random_start():
    """CBOW, one epoch, on uniform-frequency random walks (each node seen about 80 times) hardly trains: its loss
    stays at 6 ln 2 = 4.159 (gensim's CBOW at the same settings ends as untrained: purity@5 0.024, chance 0.02),
    and the run says so; one epoch on 120k tokens of the dense corpus trains (loss 2.77, 0.67 of it) and gets no
    such warning."""
    from w2vspark import synthetic
    from w2vspark.report import health_warnings, untrained_loss
    from w2vspark.train.local import corpus_from_sentences, split_round_robin, train_local

    ln2 = 0.6931471805599453
    cfg = load_config(None, ["vocab.min_count=1", "train.model=cbow", "train.epochs=1", "train.dim=32"])
    assert untrained_loss(cfg.train) == pytest.approx(6 * ln2)  # 1 target + 5 negatives, each ln 2
    assert untrained_loss(load_config(None, ["train.loss=hierarchical_softmax"]).train) is None
    assert untrained_loss(load_config(None, ["train.init_model=/some/model"]).train) is None
    corpora = {"walks": synthetic.planted_walks(num_nodes=2000, num_communities=10, seed=1),
               "dense": synthetic.planted_classes(tokens=120_000, seed=1)}
    last = {}
    for name, data in corpora.items():
        vocab, sentences = corpus_from_sentences(data.sentences, cfg)
        records = []
        train_local(cfg, split_round_robin(sentences, 1), vocab, on_round=records.append)
        last[name] = records[-1]["loss"]
        warnings = health_warnings(records, untrained_loss(cfg.train))
        assert [w for w in warnings if "random start" in w] == ([] if name == "dense" else warnings), name
        assert len(warnings) == (name == "walks"), (name, warnings)
    assert last["walks"] > 0.99 * 6 * ln2 and last["dense"] < 0.85 * 6 * ln2

"""Stage 4: evaluate a run's model and write report/ (evaluation.json, loss.png, words.png, report.md)."""
from __future__ import annotations

import json
import math
from pathlib import Path

from .config import Config, negative_group_for, sequential_for
from .errors import UserError
from .evaluate import evaluate_model, format_score, similarity_words, summary_line
from .graph_eval import link_prediction, node_classification, read_labels
from .io.hadoop import HadoopFS, join
from .io.model_files import read_model_info
from .model import Word2VecModel
from .model_sample import HEAD, id_rows, nearest, read_sample, sample_ids
from .plots import labels_plot, loss_plot, loss_rounds, words_plot
from .train.traffic import traffic_line


def read_metrics(fs: HadoopFS, run_dir: str) -> list[dict]:
    uri = join(run_dir, "metrics.jsonl")
    if not fs.exists(uri):
        return []
    return [json.loads(line) for line in fs.read_text(uri).splitlines() if line.strip()]


ARCHITECTURES = {"skipgram": "skip-gram", "cbow": "CBOW"}
LOSS_NAMES = {"neg_sampling": "negative sampling", "hierarchical_softmax": "hierarchical softmax",
              "naive_softmax": "the full softmax"}
LOSS_WARN_RATIO = 1.25  # a final loss this far above the run's lowest is called out in the report
UNTRAINED_RATIO = 0.95  # a last loss above this fraction of an untrained model's is called out too


def untrained_loss(train) -> float | None:
    """The loss per example of the model training starts from, when it is known without data: with negative
    sampling and a random start w_out is zero (:func:`w2vspark.train.loop.init_params`), so every score is 0,
    sigmoid(0) = 1/2, and each example's 1 + K products cost ln 2 each. None otherwise (hierarchical softmax's
    paths have data-dependent lengths; a continued model starts trained)."""
    if train.loss != "neg_sampling" or train.init_model:
        return None
    return (1 + train.num_negatives) * math.log(2.0)


def health_warnings(metrics: list[dict], untrained: float | None = None) -> list[str]:
    """Warnings (empty list when none): the last round's loss far above the run's lowest, or, given the loss of
    the untrained model (:func:`untrained_loss`), hardly below it."""
    rounds = loss_rounds(metrics)
    if not rounds:
        return []
    best, last = min(m["loss"] for m in rounds), rounds[-1]["loss"]
    warnings = []
    if last > LOSS_WARN_RATIO * best:
        warnings.append(f"warning: the last round's loss {last:.4f} is {last / best:.2f} x the lowest ({best:.4f}): "
                        f"training did not converge; check the loss per round")
    if untrained is not None and last > UNTRAINED_RATIO * untrained:
        warnings.append(f"warning: the last round's loss {last:.4f} is {last / untrained:.1%} of the untrained "
                        f"model's ({untrained:.4f}): the vectors have hardly moved from their random start; train "
                        f"more epochs (train.epochs) or at a larger train.lr")
    return warnings


def health_lines(metrics: list[dict], untrained: float | None = None) -> list[str]:
    """What the report says about how training went: rollbacks of the divergence guard, a last loss far above
    the lowest, and one hardly below the untrained model's."""
    lines = []
    for e in (m for m in metrics if "event" in m):
        lines.append(f"- **rollback**: round {e['round']} diverged ({e['reason']}); training went back to the start "
                     f"of round {e['resume_round']} with the task learning rate at {e['lr_scale']:g} x")
    lines += [f"- **{w.split(': ', 1)[0]}**: {w.split(': ', 1)[1]}" for w in health_warnings(metrics, untrained)]
    return lines or [f"- no rollback; the last round's loss is within {LOSS_WARN_RATIO:g} x the lowest"]


def graph_lines(scores: dict) -> list[str]:
    """The report's rows for ID evaluations (none when the run had neither labels nor held-out edges)."""
    lines = []
    nc, lp = scores.get("node_classification"), scores.get("link_prediction")
    if nc:
        lines += [f"| node classification micro-F1 | {format_score(nc['micro_f1'])} | {nc['test']} test ids "
                  f"({nc['with_vectors']}/{nc['labelled']} labelled ids have vectors) |",
                  f"| node classification macro-F1 | {format_score(nc['macro_f1'])} | {nc['classes']} classes |"]
    if lp:
        lines += [f"| link prediction AUC (cosine) | {format_score(lp['auc'])} | {lp['edges_scored']} held-out "
                  f"edges, {lp['non_edges_scored']} non-edges ({lp['pairs_outside_vocabulary']} pairs outside "
                  f"the vocabulary) |",
                  f"| link prediction AUC (cosine of centred vectors) | {format_score(lp['auc_centered'])} | "
                  f"the mean vector subtracted first |"]
    return lines


def settings_rows(cfg: Config) -> list[str]:
    """The report's settings table rows; automatic values (0 or "auto") with what they resolved to."""
    t = cfg.train
    keys = ["model", *(["cbow_mean"] if t.model == "cbow" else []), "loss", "dim", "window", "shrink_windows",
            *(["num_negatives", "ns_exponent", "negative_group"] if t.loss == "neg_sampling" else []), "sample",
            "lr", "min_lr",
            "epochs", "num_partitions", "syncs_per_epoch", "combine", "batch_pairs", "step", "damping",
            *(["skip_saturated"] if t.skip_saturated else []), "max_step",
            "rollback_ratio", "seed"]
    rows = []
    for key in keys:
        value = getattr(t, key)
        if key == "negative_group" and value == 0:
            value = f"0 (chosen by the partition count: {negative_group_for(t)})"
        if key == "syncs_per_epoch" and value == 0:
            value = f"0 (chosen: {t.syncs()})"
        if key == "step" and value == "auto":
            value = f"auto ({'sequential' if sequential_for(t) else 'minibatch'})"
        rows.append(f"| train.{key} | {value} |")
    return rows + [f"| vocab.min_count | {cfg.vocab.min_count} |"]


def render_report(cfg: Config, sample: Word2VecModel, vocab_size: int, neighbours: dict, scores: dict,
                  metrics: list[dict], stats: dict | None) -> str:
    """report.md; ``sample`` holds the model's rows that the evaluation read (:mod:`w2vspark.model_sample`),
    ``neighbours`` maps the words of eval.words in the vocabulary to their nearest words."""
    t = cfg.train
    lines = ["# w2vspark run report", "", f"Run folder: `{cfg.output.dir}`", "",
             f"Architecture: {ARCHITECTURES[t.model]} with {LOSS_NAMES[t.loss]}.", "", "## Settings", "",
             "| setting | value |", "|---|---|", *settings_rows(cfg)]
    lines += ["", "## Data and training", "", f"- vocabulary: {vocab_size:,} words, {sample.dim} dimensions"]
    if stats:
        lines.append(f"- corpus: {stats['tokens']:,} tokens in {stats['input_lines']:,} lines; "
                     f"{stats['kept_tokens']:,} kept in {stats['sentences']:,} sentences "
                     f"({stats['rare_fraction']:.1%} of tokens below min_count)")
        if stats.get("init_model"):
            new = ", ".join(f"`{w}`" for w in stats["new_words_most_frequent"][:12])
            lines.append(f"- continued from `{stats['init_model']}`: {stats['known_words']:,} known words "
                         f"({stats['known_words_in_corpus']:,} of them in this corpus) kept their ids; "
                         f"{stats['new_words']:,} new words appended" + (f", most frequent: {new}" if new else ""))
    rounds = [m for m in metrics if "event" not in m]
    if rounds:
        seconds = sum(m["seconds"] for m in rounds)
        words = sum(m["words"] for m in rounds)
        lines.append(f"- training: {len(rounds)} rounds, {seconds:.1f} s, {words / max(seconds, 1e-9):,.0f} words/s")
        lines.append(f"- loss: {rounds[0]['loss']:.4f} in the first round, {rounds[-1]['loss']:.4f} in the last")
        moved = traffic_line(metrics)
        if moved:
            lines.append(f"- {moved}")
        lines += ["", "## Training health", ""] + health_lines(metrics, untrained_loss(cfg.train))
    ws, sl, an = scores["ws353"], scores["simlex999"], scores["analogy"]
    lines += ["", "## Evaluation", "", "| test | score | coverage |", "|---|---|---|",
              f"| WS353 Spearman | {format_score(ws['spearman'])} | {ws['pairs']}/{ws['total']} pairs |",
              f"| SimLex-999 Spearman | {format_score(sl['spearman'])} | {sl['pairs']}/{sl['total']} pairs |"]
    for kind in ("semantic", "syntactic", "total"):
        a = an[kind]
        lines.append(f"| analogy {kind} (3CosAdd, top {cfg.eval.analogy_restrict:,}) | "
                     f"{format_score(a['accuracy'], True)} | {a['seen']}/{a['total']} questions |")
    lines += graph_lines(scores)
    lines += ["", "## Nearest neighbours", ""]
    for word in cfg.eval.words:
        if word in neighbours:
            near = ", ".join(f"{w} ({s:.2f})" for w, s in neighbours[word])
            lines.append(f"- **{word}**: {near}")
        else:
            lines.append(f"- **{word}**: not in the vocabulary")
    lines += ["", "## Pictures", ""]
    if sum(w in sample for w in cfg.eval.plot_words) < 3:
        lines += ["Fewer than 3 of `eval.plot_words` are in the vocabulary: the word map shows the most frequent "
                  "words instead.", ""]
    lines += ["![loss per round](loss.png)", "", "![word map](words.png)", ""]
    return "\n".join(lines)


def graph_evaluation(spark, cfg: Config, sample: Word2VecModel, rows, dim: int, log=print) -> tuple[dict, dict]:
    """Node classification (with eval.labels) and link prediction (when the run has link_pairs/). -> (scores,
    labels of the most frequent ids, for the map)."""
    from pyspark.sql import functions as F

    fs = HadoopFS(spark)
    scores, label_of = {}, {}
    if cfg.eval.labels:
        labels = read_labels(spark, fs, cfg.eval.labels)
        nc = scores["node_classification"] = node_classification(spark, join(cfg.output.dir, "model"), labels)
        log(f"node classification: micro-F1 {format_score(nc['micro_f1'])}, macro-F1 {format_score(nc['macro_f1'])} "
            f"({nc['test']} test ids of {nc['with_vectors']} labelled ids with vectors)")
        top = list(sample.words[:HEAD])  # the sample starts with the model's first HEAD ids
        label_of = {r["id"]: r["label"] for r in labels.where(F.col("id").isin(top)).collect()}
    pairs = join(cfg.output.dir, "link_pairs")
    if fs.exists(pairs):
        lp = scores["link_prediction"] = link_prediction(spark, rows, dim, pairs)
        log(f"link prediction: AUC {format_score(lp['auc'])}, centred {format_score(lp['auc_centered'])} "
            f"({lp['edges_scored']} held-out edges, "
            f"{lp['non_edges_scored']} non-edges)")
    return scores, label_of


def evaluate_run(spark, cfg: Config, log=print) -> dict:
    """Evaluate output.dir/model and write output.dir/report/. The model is not loaded on the driver: the driver
    reads the rows that the scores and maps use, and the executors answer what needs every row (neighbours, the
    mean vector, the held-out pairs): :mod:`w2vspark.model_sample`."""
    from pyspark import StorageLevel

    from .export import check_rows

    fs = HadoopFS(spark)
    run = cfg.output.dir
    report_dir = join(run, "report")
    if fs.exists(report_dir) and not cfg.output.overwrite:
        raise UserError(f"{report_dir} already exists; pass --overwrite (output.overwrite=true) to replace it")
    data_dir = Path(cfg.eval.data_dir)
    if not data_dir.is_dir():
        raise UserError(f"evaluation data folder not found: {data_dir} (eval.data_dir)")
    model_uri = join(run, "model")
    info = read_model_info(fs, model_uri)
    dim, vocab_size = int(info["dim"]), int(info["vocab_size"])
    rows = id_rows(spark, model_uri).persist(StorageLevel.DISK_ONLY)
    try:
        check_rows(rows, join(model_uri, "data"), vocab_size, dim, words=False)
        sample, ids = read_sample(rows, info, sample_ids(info.get("counts"), vocab_size, cfg.eval.analogy_restrict),
                                  similarity_words(data_dir), [*cfg.eval.words, *cfg.eval.plot_words])
        scores = evaluate_model(sample, data_dir, cfg.eval.analogy_restrict)
        log(summary_line(scores))
        neighbours = nearest(rows, sample, ids, [w for w in cfg.eval.words if w in sample], cfg.eval.topn)
        graph_scores, label_of = graph_evaluation(spark, cfg, sample, rows, dim, log)
    finally:
        rows.unpersist()
    scores.update(graph_scores)
    metrics = read_metrics(fs, run)
    stats_uri = join(run, "corpus_stats.json")
    stats = fs.read_json(stats_uri) if fs.exists(stats_uri) else None
    fs.write_text(join(report_dir, "evaluation.json"), json.dumps(scores, indent=2, sort_keys=True) + "\n")
    if any("event" not in m for m in metrics):
        fs.write_chunks(join(report_dir, "loss.png"), [loss_plot(metrics)])
    fs.write_chunks(join(report_dir, "words.png"), [labels_plot(sample, label_of) if len(label_of) >= 3
                                                    else words_plot(sample, cfg.eval.plot_words)])
    fs.write_text(join(report_dir, "report.md"),
                  render_report(cfg, sample, vocab_size, neighbours, scores, metrics, stats))
    for word, near in neighbours.items():
        log(f"  {word:>12}: " + ", ".join(w for w, _ in near))
    log(f"report written to {join(report_dir, 'report.md')}")
    return scores

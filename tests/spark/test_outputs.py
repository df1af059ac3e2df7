"""Stages 3 and 4 on Spark: exports, the Spark ML layout read by MLlib itself, the report; job error handling."""
import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from w2vspark.config import load_config, with_overrides
from w2vspark.corpus import build_corpus
from w2vspark.errors import UserError
from w2vspark.evaluate import evaluate_model
from w2vspark.export import EXPORTS, export_model
from w2vspark.io.model_files import load_model, model_rows
from w2vspark.model import Word2VecModel
from w2vspark.report import evaluate_run
from w2vspark.train.stage import train_on_spark

ROOT = Path(__file__).parents[2]
quiet = dict(log=lambda *_: None)


@pytest.fixture(scope="module")
def trained_run(spark, tmp_path_factory):
    import gzip
    root = tmp_path_factory.mktemp("outputs")
    with gzip.open(ROOT / "data" / "kjv.txt.gz", "rt", encoding="utf-8") as f:
        lines = [next(f) for _ in range(3000)]
    (root / "kjv.txt").write_text("".join(lines))
    cfg = load_config(ROOT / "conf" / "demo.toml", [f"input.path={root / 'kjv.txt'}", f"output.dir={root / 'run'}",
                                                    "train.dim=24", "train.epochs=1", "train.syncs_per_epoch=1"])
    build_corpus(spark, cfg, **quiet)
    model = train_on_spark(spark, cfg, **quiet)
    return cfg, model


def test_spark_ml_loads_our_model(spark, trained_run):
    from pyspark.ml.feature import Word2VecModel as MLlibModel

    cfg, model = trained_run
    ml = MLlibModel.load(str(Path(cfg.output.dir) / "model"))
    vectors = {r["word"]: np.array(r["vector"].toArray(), dtype=np.float32) for r in ml.getVectors().collect()}
    assert set(vectors) == set(model.words)
    assert all(np.array_equal(vectors[w], model.vector(w)) for w in model.words)
    assert ml.getVectorSize() == 24
    synonyms = [r["word"] for r in ml.findSynonyms("god", 5).collect()]
    assert synonyms == [w for w, _ in model.most_similar("god", 5)]
    df = spark.createDataFrame([(["god", "unknownword", "lord"],)], ["tokens"])
    out = ml.setInputCol("tokens").setOutputCol("v").transform(df).first()["v"].toArray()
    # MLlib divides by all tokens, unknown words included
    assert np.allclose(out, (model.vector("god") + model.vector("lord")) / 3, atol=1e-6)


def test_model_as_a_dataframe(spark, trained_run):
    _, model = trained_run
    df = model.to_spark(spark)
    assert df.dtypes == [("word", "string"), ("vector", "array<float>")]
    rows = df.collect()
    assert [r["word"] for r in rows] == model.words
    assert np.array_equal(np.array([r["vector"] for r in rows], dtype=np.float32), model.vectors)


def test_exports_and_overwrite(spark, trained_run):
    from gensim.models import KeyedVectors

    cfg, model = trained_run
    export_model(spark, cfg, **quiet)
    out = Path(cfg.output.dir) / "export"
    for name, binary in (("vectors.txt", False), ("vectors.bin", True)):
        kv = KeyedVectors.load_word2vec_format(str(out / name), binary=binary)
        assert kv.index_to_key == model.words and np.array_equal(kv.vectors, model.vectors)
    assert (out / "metadata.tsv").read_text().splitlines() == model.words
    with pytest.raises(UserError, match="--overwrite"):
        export_model(spark, with_overrides(cfg, output={"overwrite": False}), **quiet)
    for f in out.iterdir():
        f.unlink()
    (out / "_tmp-parts-0123abcd" / "vectors.txt").mkdir(parents=True)  # left by an export killed on the way
    (out / "vectors.txt.tmp-0123abcd").write_text("1 2\n")
    export_model(spark, with_overrides(cfg, output={"exports": ("vectors.bin",)}), **quiet)
    # output.exports: only the files it names; the interrupted export's leftovers are gone
    assert [f.name for f in out.iterdir()] == ["vectors.bin"]


def _model_folder(root: Path, words, vectors, row_group_size: int, first_file_rows: int | None = None,
                  counts=None) -> None:
    """A model folder whose data/ has row groups of ``row_group_size`` rows (several Spark splits), in two files
    (part-00000 with the first ``first_file_rows`` rows) when ``first_file_rows`` is given."""
    import pyarrow.parquet as pq

    model = Word2VecModel(words, vectors, counts)
    model.save(root / "model")
    table, data = model.arrow_table(), root / "model" / "data"
    cut = first_file_rows or len(words)
    pq.write_table(table.slice(0, cut), data / "part-00000.parquet", row_group_size=row_group_size)
    if cut < len(words):
        pq.write_table(table.slice(cut), data / "part-00001.parquet", row_group_size=row_group_size)


def test_exports_keep_the_id_order_across_splits(spark, tmp_path):
    """data/ in two files, the first the smaller one, each in several splits: Spark's scan reads the splits
    largest first (the first file's last split after the second file's full ones), and the exports (and
    load_model) still list the rows in file and row order."""
    from gensim.models import KeyedVectors

    rng = np.random.default_rng(3)
    words = [f"w{i}" + ("\u00e9" if i % 3 else "") for i in range(700)]
    vectors = (rng.normal(size=(700, 5)) * 10.0 ** rng.integers(-6, 6, size=(700, 1))).astype(np.float32)
    _model_folder(tmp_path, words, vectors, row_group_size=40, first_file_rows=300)
    cfg = load_config(None, [f"output.dir={tmp_path}"])
    spark.conf.set("spark.sql.files.maxPartitionBytes", "2048")  # many splits, read by tasks in any order
    try:
        assert model_rows(spark, str(tmp_path / "model")).rdd.getNumPartitions() >= 4
        export_model(spark, cfg, **quiet)
        assert load_model(spark, str(tmp_path / "model")).words == words
    finally:
        spark.conf.unset("spark.sql.files.maxPartitionBytes")
    out = tmp_path / "export"
    for name, binary in (("vectors.txt", False), ("vectors.bin", True)):
        kv = KeyedVectors.load_word2vec_format(str(out / name), binary=binary)
        assert kv.index_to_key == words and np.array_equal(kv.vectors, vectors)
    lines = (out / "vectors.tsv").read_text().splitlines()
    tsv = np.array([[np.float32(x) for x in line.split("\t")] for line in lines])
    assert np.array_equal(tsv, vectors)
    assert (out / "metadata.tsv").read_text(encoding="utf-8").splitlines() == words
    assert sorted(p.name for p in out.iterdir()) == sorted(EXPORTS)  # no part files left behind


def test_exports_refuse_unwritable_rows(spark, tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq
    from pyspark.sql import functions as F

    from w2vspark.export import _SPACE_REGEX

    # the job's check (a regex in the JVM) calls whitespace what Python's str.isspace does (all below U+3100)
    chars = [chr(c) for c in range(0x3100)]
    df = spark.createDataFrame([(f"a{c}b",) for c in chars], "word string")
    assert {r.word[1] for r in df.filter(F.col("word").rlike(_SPACE_REGEX)).collect()} == {
        c for c in chars if c.isspace()}

    cfg = load_config(None, [f"output.dir={tmp_path}"])
    _model_folder(tmp_path, ["a", "b", "c d", "e"], np.ones((4, 3), dtype=np.float32), row_group_size=2)
    with pytest.raises(UserError, match=r"word 'c d' \(row 2 of .*part-00000.parquet\) is empty or contains"):
        export_model(spark, cfg, **quiet)
    assert not (tmp_path / "export").exists() or not any((tmp_path / "export").iterdir())
    table = pa.table({"word": ["a", "b", "c"], "vector": pa.array([[1.0] * 3, [1.0] * 2, [1.0] * 3],
                                                                  pa.list_(pa.float32()))})
    pq.write_table(table, tmp_path / "model" / "data" / "part-00000.parquet")
    (tmp_path / "model" / "w2vspark.json").write_text(json.dumps(
        {**json.loads((tmp_path / "model" / "w2vspark.json").read_text()), "vocab_size": 3}))
    with pytest.raises(UserError, match=r"row 1 of .*\(word 'b'\) does not hold 3 numbers"):
        export_model(spark, cfg, **quiet)


def test_report(spark, trained_run):
    cfg, model = trained_run
    scores = evaluate_run(spark, cfg, **quiet)
    report = Path(cfg.output.dir) / "report"
    assert json.loads((report / "evaluation.json").read_text())["ws353"]["pairs"] == scores["ws353"]["pairs"]
    for png in ("loss.png", "words.png"):
        assert (report / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    text = (report / "report.md").read_text()
    assert "WS353 Spearman" in text and f"{len(model.words):,} words" in text and "**god**" in text
    assert "| train.negative_group | 0 (chosen by the partition count: 1) |" in text  # 2 partitions: 1
    assert "| train.step | auto (minibatch) |" in text  # skip-gram with negative sampling
    # local mode sums the deltas on the driver: nothing shuffled
    assert re.search(r"- traffic per epoch: [\d.]+ [KMG]iB broadcast, 0 B shuffled, [\d.]+ [KMG]iB sent "
                     r"to the driver", text)


def test_evaluation_of_a_sample_scores_as_the_whole_model(spark, tmp_path):
    """The evaluation reads only a sample of the model's rows on the driver; its scores, neighbours and link
    prediction equal those of the whole model in memory (w2vspark.evaluate, Word2VecModel.most_similar, the
    AUCs computed here in float64). The model is built so that a wrong sample changes them: counts out of id
    order with ties (the analogy answers are not the first ids), analogies whose answer is exact (b - a + c), a
    similarity word that two model words lowercase to ('Paris' before 'paris', both outside the answers), and
    data/ in two files read in 64-row Arrow batches (neighbours merged across batches and tasks)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.default_rng(5)
    size, restrict = 1200, 200
    words = [f"w{i}" for i in range(size)]
    words[950], words[1000] = "Paris", "paris"
    counts = rng.integers(1, 300, size=size)  # (V,) many ties
    vectors = rng.normal(size=(size, 8)).astype(np.float32)
    top = np.argsort(-counts, kind="stable")[:restrict]  # the analogy answers
    questions = rng.choice(top, size=(40, 4), replace=False)  # (40, 4) ids of a b c d, all different
    unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    a, b, c, d = questions[:20].T
    vectors[d] = unit[b] - unit[a] + unit[c]  # 20 answered exactly (cosine 1 with 3CosAdd's target)
    _model_folder(tmp_path, words, vectors, row_group_size=50, first_file_rows=450, counts=counts)
    data = tmp_path / "eval"
    data.mkdir()
    far = rng.choice(np.arange(restrict, size), size=(30, 2))  # (30, 2) similarity pairs, mostly outside top
    pairs = [(words[a], words[b], float(rng.uniform(0, 10))) for a, b in far] + [
        ("PARIS", words[int(top[0])], 9.0), ("paris", "w3", 1.0), ("w4", "missing", 5.0)]
    for name in ("wordsim353.tsv", "simlex999.txt"):
        (data / name).write_text("# word1 word2 score\n" + "".join(f"{a}\t{b}\t{x}\n" for a, b, x in pairs))
    lines = [": capital-world"] + [" ".join(words[i] for i in q) for q in questions[:30]]
    lines += [": gram1-adjective-to-adverb"] + [" ".join(words[i] for i in q) for q in questions[30:]]
    (data / "questions-words.txt").write_text("\n".join(lines) + "\n")
    ends = rng.integers(0, size, size=(150, 2))
    link = pa.table({"src": [words[a] for a in ends[:, 0]] + ["missing"], "dst": [words[b] for b in ends[:, 1]]
                     + ["w1"], "edge": np.r_[rng.random(150) < 0.5, True]})
    (tmp_path / "link_pairs").mkdir()
    pq.write_table(link, tmp_path / "link_pairs" / "part-00000.parquet")
    cfg = load_config(None, [f"output.dir={tmp_path}", f"eval.data_dir={data}", f"eval.analogy_restrict={restrict}",
                             "eval.words=Paris,w7,nope", "eval.topn=5"])
    lines = []
    scores = evaluate_run(spark, cfg, log=lines.append)

    whole = Word2VecModel(words, vectors, counts)
    expected = evaluate_model(whole, data, restrict)
    assert json.dumps({k: scores[k] for k in expected}, sort_keys=True) == json.dumps(expected, sort_keys=True)
    assert expected["analogy"]["total"]["accuracy"] >= 0.5 and expected["ws353"]["pairs"] == 32
    for word in ("Paris", "w7"):
        assert f"  {word:>12}: " + ", ".join(w for w, _ in whole.most_similar(word, 5)) in lines
    assert not any("nope:" in line for line in lines)
    index = {w: i for i, w in enumerate(words)}
    va, vb = vectors[ends[:, 0]].astype(np.float64), vectors[ends[:, 1]].astype(np.float64)
    mean = vectors.astype(np.float64).mean(axis=0)
    edge = link.column("edge").to_numpy(zero_copy_only=False)[:150]
    for key, (a, b) in (("auc", (va, vb)), ("auc_centered", (va - mean, vb - mean))):
        s = np.einsum("nd,nd->n", a / np.linalg.norm(a, axis=1, keepdims=True),
                      b / np.linalg.norm(b, axis=1, keepdims=True))
        wins = (s[edge][:, None] > s[~edge][None, :]).sum() + 0.5 * (s[edge][:, None] == s[~edge][None, :]).sum()
        assert scores["link_prediction"][key] == pytest.approx(wins / (edge.sum() * (~edge).sum()), abs=1e-9)
    assert scores["link_prediction"]["pairs_outside_vocabulary"] == 1 and "missing" not in index
    text = (tmp_path / "report" / "report.md").read_text()
    assert f"{size:,} words, 8 dimensions" in text and "- **nope**: not in the vocabulary" in text


def test_report_for_a_vocabulary_of_ids(spark, tmp_path):
    """Node IDs: no evaluation word and no plot word is in the vocabulary; the report is still written, says
    that the word sets have no coverage, and maps the most frequent IDs."""
    from w2vspark.synthetic import planted_walks

    data = planted_walks(num_nodes=300, num_communities=3, walks_per_node=2, seed=0)
    (tmp_path / "walks.txt").write_text("\n".join(" ".join(s) for s in data.sentences) + "\n")
    cfg = load_config(None, [f"input.path={tmp_path / 'walks.txt'}", f"output.dir={tmp_path / 'run'}",
                             r"vocab.token_pattern=\S+", "vocab.min_count=1", "train.dim=8", "train.epochs=1",
                             "train.num_partitions=1"])
    build_corpus(spark, cfg, **quiet)
    train_on_spark(spark, cfg, **quiet)
    lines = []
    scores = evaluate_run(spark, cfg, log=lines.append)
    assert scores["ws353"]["pairs"] == 0 and scores["analogy"]["total"]["seen"] == 0
    assert "WS353 n/a (no coverage)" in lines[0]
    report = tmp_path / "run" / "report"
    assert (report / "words.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    text = (report / "report.md").read_text()
    assert "| WS353 Spearman | n/a (no coverage) | 0/" in text
    # one epoch over 12,000 tokens (40 per node) hardly moves the vectors from their start, and the report says so
    assert "## Training health" in text and "no rollback" not in text
    assert "of the untrained model's (4.1589): the vectors have hardly moved from their random start" in text


def test_jobs_print_user_errors_without_a_traceback(tmp_path):
    env_python = sys.executable
    res = subprocess.run([env_python, str(ROOT / "jobs" / "build_vocab.py"), "--set", "train.dimm=3"],
                         capture_output=True, text=True, cwd=ROOT)
    assert res.returncode == 2 and "unknown config key 'train.dimm'" in res.stderr and "Traceback" not in res.stderr
    res = subprocess.run([str(ROOT / "spark-submit.sh"), "jobs/build_vocab.py", "--set",
                          f"input.path={tmp_path / 'missing.txt'}", "--set", f"output.dir={tmp_path / 'o'}"],
                         capture_output=True, text=True, cwd=ROOT, env={**__import__("os").environ,
                                                                        "W2V_PYTHON": env_python})
    output = res.stdout + res.stderr  # spark-submit passes the Python driver's stderr on to its stdout
    assert res.returncode == 2, output[-2000:]
    assert f"input path not found: {tmp_path / 'missing.txt'}" in output and "Traceback" not in output
    res = subprocess.run([str(ROOT / "spark-submit.sh"), "jobs/nope.py"], capture_output=True, text=True, cwd=ROOT)
    assert res.returncode == 2 and "job script not found: jobs/nope.py" in res.stderr


def test_graph_pipeline_walks_to_report(spark, tmp_path):
    """A planted-community graph -> walks with 10% of edges held out -> vocabulary from the walk column ->
    training -> node classification and link prediction in the report. Chance is micro-F1 0.25 (4 equal
    communities) and AUC 0.5; the thresholds sit far above chance and well below what this graph gives (seed 0,
    walks of 10 nodes: 0.95 / 0.80, centred 0.84), so a broken join, split or score fails while seed noise does
    not."""
    from w2vspark.graphs import planted_graph, write_graph
    from w2vspark.walks import generate_walks

    write_graph(tmp_path / "graph", *planted_graph(400, 4, degree=8, mixing=0.1, seed=0))
    cfg = load_config(ROOT / "conf" / "graph.toml", [
        f"walks.edges={tmp_path / 'graph' / 'edges'}", f"eval.labels={tmp_path / 'graph' / 'labels'}",
        f"input.path={tmp_path / 'run' / 'walks'}", f"output.dir={tmp_path / 'run'}", "train.dim=16",
        "train.checkpoint_every=0", "walks.length=10"])
    stats = generate_walks(spark, cfg, **quiet)
    assert stats["held_out_edges"] > 0 and stats["non_edges"] == stats["held_out_edges"]
    build_corpus(spark, cfg, **quiet)
    train_on_spark(spark, cfg, **quiet)
    lines = []
    scores = evaluate_run(spark, cfg, log=lines.append)
    nc, lp = scores["node_classification"], scores["link_prediction"]
    assert nc["classes"] == 4 and nc["train"] + nc["test"] == nc["with_vectors"] > 350
    assert nc["micro_f1"] > 0.6 and nc["macro_f1"] > 0.6
    assert lp["auc"] > 0.65 and lp["edges_scored"] + lp["pairs_outside_vocabulary"] >= stats["held_out_edges"]
    text = (tmp_path / "run" / "report" / "report.md").read_text()
    assert "| node classification micro-F1 |" in text and "| link prediction AUC (cosine) |" in text
    assert "| link prediction AUC (cosine of centred vectors) |" in text and lp["auc_centered"] > 0.65
    saved = json.loads((tmp_path / "run" / "report" / "evaluation.json").read_text())
    assert saved["node_classification"]["micro_f1"] == pytest.approx(nc["micro_f1"])

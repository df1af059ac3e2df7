"""The Spark ML drop-in: same Params as MLlib, fit inside a Pipeline, save and load, transform semantics."""
import numpy as np
import pytest
from pyspark.ml import Pipeline, PipelineModel
from pyspark.ml.feature import Tokenizer
from pyspark.ml.feature import NGram
from pyspark.ml.feature import Word2Vec as MLlibWord2Vec
from pyspark.ml.feature import Word2VecModel as MLlibWord2VecModel

from w2vspark.errors import InputError, UserError
from w2vspark.ml import Word2Vec, Word2VecModel

from ..unit.test_partition import _planted_corpus, planted_class_accuracy


@pytest.fixture(scope="module")
def text_df(spark):
    words, lines = _planted_corpus(sentences=500)
    return words, spark.createDataFrame([(" ".join(s).upper(),) for s in lines], ["text"])


def test_same_params_as_mllib(spark):
    ours = {p.name for p in Word2Vec().params}
    theirs = {p.name for p in MLlibWord2Vec().params}
    assert theirs <= ours, theirs - ours
    for name in ("vectorSize", "windowSize", "minCount", "maxIter", "stepSize", "numPartitions", "maxSentenceLength"):
        assert Word2Vec().getOrDefault(name) == MLlibWord2Vec().getOrDefault(name), name


def test_w2vspark_params_reach_the_training_config(spark):
    from w2vspark.config import ConfigError

    train = Word2Vec(combine="scaled_row", maxStep=0.5, numPartitions=4)._to_config().train
    assert (train.combine, train.max_step, train.num_partitions) == ("scaled_row", 0.5, 4)
    assert Word2Vec()._to_config().train.max_step == 0.0  # the step limit is off unless asked for
    train = Word2Vec(damping=False, rollbackRatio=0.0)._to_config().train
    assert (train.damping, train.rollback_ratio) == (False, 0.0)
    assert Word2Vec()._to_config().train.damping is True
    assert (Word2Vec(skipSaturated=True)._to_config().train.skip_saturated,
            Word2Vec()._to_config().train.skip_saturated) == (True, False)
    train = Word2Vec(nsExponent=-0.5, shrinkWindows=False, negativeGroup=8)._to_config().train
    assert (train.ns_exponent, train.shrink_windows, train.negative_group) == (-0.5, False, 8)
    assert Word2Vec().setNegativeGroup(4)._to_config().train.negative_group == 4
    assert Word2Vec()._to_config().train.negative_group == 0
    assert (Word2Vec()._to_config().train.ns_exponent, Word2Vec().setShrinkWindows(True).getOrDefault("shrinkWindows")) \
        == (0.75, True)
    with pytest.raises(ConfigError, match="train.rollback_ratio"):
        Word2Vec(rollbackRatio=0.5)._to_config()
    with pytest.raises(ConfigError, match="train.max_step"):
        Word2Vec(maxStep=-1.0)._to_config()


def test_pipeline_fit_transform_save_load(spark, text_df, tmp_path):
    words, df = text_df
    w2v = Word2Vec(vectorSize=16, windowSize=3, minCount=1, maxIter=3, stepSize=0.05, numPartitions=2, seed=7,
                   sample=0.0, batchPairs=128, inputCol="tokens", outputCol="features")
    pipeline = Pipeline(stages=[Tokenizer(inputCol="text", outputCol="tokens"), w2v])
    fitted = pipeline.fit(df)
    model = fitted.stages[-1]
    assert isinstance(model, Word2VecModel) and model.getVectorSize() == 16
    assert model.getVectors().count() == len(words)
    assert planted_class_accuracy(model.wordVectors, words) > 0.9  # Tokenizer lowercased the words
    syn = model.findSynonyms(words[0], 3).collect()
    assert [r["word"] for r in syn] == [w for w, _ in model.findSynonymsArray(words[0], 3)]
    assert syn[0]["word"][:2] == words[0][:2]

    out = fitted.transform(df).select("tokens", "features").first()
    expected = np.mean([model.wordVectors.vector(t) for t in out["tokens"]], axis=0)
    assert np.allclose(out["features"].toArray(), expected, atol=1e-6)

    # a saved pipeline reloads without w2vspark: its Word2Vec stage comes back as Spark MLlib's model
    fitted.write().overwrite().save(str(tmp_path / "pipeline"))
    loaded = PipelineModel.load(str(tmp_path / "pipeline"))
    assert isinstance(loaded.stages[-1], MLlibWord2VecModel) and loaded.stages[-1].uid == model.uid
    again = loaded.transform(df).select("features").first()["features"].toArray()
    assert np.allclose(again, out["features"].toArray(), atol=1e-6)
    stage = Word2VecModel.load(str(next((tmp_path / "pipeline" / "stages").glob("1_*"))))
    assert np.array_equal(stage.wordVectors.vectors, model.wordVectors.vectors)
    assert stage.getOrDefault("numNegatives") == 5 and stage.getOrDefault("batchPairs") == 128

    Pipeline(stages=[w2v]).write().overwrite().save(str(tmp_path / "estimator"))
    assert Pipeline.load(str(tmp_path / "estimator")).getStages()[0].getVectorSize() == 16


def test_transform_divides_by_all_tokens(spark):
    from w2vspark.model import Word2VecModel as Vectors

    model = Word2VecModel(Vectors(["a", "b"], np.array([[1.0, 0.0], [0.0, 2.0]])))
    model._set(inputCol="t", outputCol="v")
    df = spark.createDataFrame([(["a", "b", "zz", "a"],), ([],)], "t array<string>")
    rows = [r["v"].toArray().tolist() for r in model.transform(df).collect()]
    assert rows == [[0.5, 0.5], [0.0, 0.0]]


def test_fit_and_transform_an_id_column(spark):
    # item IDs as bigints: the vocabulary holds their decimal strings and transform looks them up the same way
    rng = np.random.default_rng(0)
    baskets = [[int(x) for x in rng.choice(12, size=6, replace=False) + 1000 * (i % 2)] for i in range(60)]
    df = spark.createDataFrame([(b,) for b in baskets], "items array<bigint>")
    model = Word2Vec(vectorSize=4, minCount=1, windowSize=10, shrinkWindows=False, inputCol="items",
                     outputCol="v", batchPairs=64, seed=1).fit(df)
    assert sorted(model.wordVectors.words) == sorted({str(x) for b in baskets for x in b})
    row = model.transform(df).first()
    expected = np.mean([model.wordVectors.vector(str(t)) for t in row["items"]], axis=0)
    assert np.allclose(row["v"].toArray(), expected, atol=1e-6)


def test_fit_with_the_parameters_on_the_executors_equals_the_drivers(spark):
    """paramsOn="executors": the rows live as blocks on the executors while training and come to the driver once
    at the end; the same draws and sums in the same order give the driver's model bit for bit."""
    from w2vspark.config import ConfigError

    rng = np.random.default_rng(2)
    baskets = [[int(x) for x in rng.choice(30, size=8, replace=False) + 100 * (i % 3)] for i in range(90)]
    df = spark.createDataFrame([(b,) for b in baskets], "items array<bigint>")
    fitted = {}
    for site in ("driver", "executors"):
        fitted[site] = Word2Vec(vectorSize=8, minCount=1, maxIter=2, numPartitions=2, syncsPerEpoch=2,
                                inputCol="items", batchPairs=64, seed=3, paramsOn=site).fit(df)
    a, b = fitted["driver"], fitted["executors"]
    assert a.wordVectors.words == b.wordVectors.words
    assert np.array_equal(a.wordVectors.vectors, b.wordVectors.vectors) and np.array_equal(a._w_out, b._w_out)
    assert not np.array_equal(a.wordVectors.vectors[:, 0], np.zeros(len(a.wordVectors.words)))
    with pytest.raises(ConfigError, match="train.params_on"):
        Word2Vec(paramsOn="cluster")._to_config()


def test_fit_rejects_a_string_column(spark, text_df):
    _, df = text_df
    with pytest.raises(InputError, match="inputCol must name a column of type array<string>"):
        Word2Vec(inputCol="text").fit(df)
    with pytest.raises(InputError, match="no column 'tokens' \\(inputCol\\); its columns are: text"):
        Word2Vec(inputCol="tokens").fit(df)


def test_pyspark_docstring_example(spark, tmp_path):
    # pyspark.ml.feature.Word2Vec's docstring example with only the import changed: the calls, types and
    # persistence must behave as MLlib's (the numbers differ)
    from pyspark.ml.linalg import DenseVector
    from pyspark.sql.functions import format_number as fmt

    sent = ("a b " * 100 + "a c " * 10).split(" ")
    document = spark.createDataFrame([(sent,), (sent,)], ["sentence"])
    word2Vec = Word2Vec(vectorSize=5, seed=42, inputCol="sentence", outputCol="model")
    assert word2Vec.setMaxIter(10) is word2Vec and word2Vec.getMaxIter() == 10
    word2Vec.clear(word2Vec.maxIter)
    assert word2Vec.getMaxIter() == 1
    model = word2Vec.fit(document)
    assert model.getMinCount() == 5
    assert model.setInputCol("sentence") is model and model.setOutputCol("model") is model
    vectors = model.getVectors()
    assert vectors.columns == ["word", "vector"] and vectors.count() == 3  # a, b, c (the trailing "" appears twice: below minCount)
    synonyms = model.findSynonymsArray("a", 2)
    assert [type(w) for w, _ in synonyms] == [str, str] and "a" not in [w for w, _ in synonyms]
    shown = model.findSynonyms("a", 2).select("word", fmt("similarity", 5).alias("similarity")).collect()
    assert [r.word for r in shown] == [w for w, _ in synonyms]
    assert isinstance(model.transform(document).head().model, DenseVector)

    word2Vec.save(str(tmp_path / "word2vec"))
    loadedWord2Vec = Word2Vec.load(str(tmp_path / "word2vec"))
    assert (loadedWord2Vec.getVectorSize(), loadedWord2Vec.getNumPartitions(), loadedWord2Vec.getMinCount()) == \
        (word2Vec.getVectorSize(), word2Vec.getNumPartitions(), word2Vec.getMinCount())
    modelPath = str(tmp_path / "word2vec-model")
    model.save(modelPath)
    for loader in (Word2VecModel, MLlibWord2VecModel):  # the same folder loads in both
        loadedModel = loader.load(modelPath)
        assert loadedModel.getVectors().first().word == model.getVectors().first().word
        assert loadedModel.getVectors().first().vector == model.getVectors().first().vector
        again = loadedModel.transform(document).take(1)[0]
        assert again.sentence == sent and again.model.size == 5 and loadedModel.uid == model.uid
        first = model.transform(document).take(1)[0].model
        assert again.model == first if loader is Word2VecModel else np.allclose(again.model, first, atol=1e-7)


def test_loads_a_model_saved_by_mllib(spark, tmp_path):
    document = spark.createDataFrame([("a b c a b".split(),)] * 3, ["s"])
    mllib = MLlibWord2Vec(vectorSize=3, minCount=1, seed=1, inputCol="s", outputCol="v").fit(document)
    mllib.save(str(tmp_path / "mllib"))
    ours = Word2VecModel.load(str(tmp_path / "mllib"))
    expected = {r.word: r.vector.toArray() for r in mllib.getVectors().collect()}
    assert sorted(ours.wordVectors.words) == sorted(expected)
    for word, vector in expected.items():
        assert np.allclose(ours.wordVectors.vector(word), vector, atol=1e-7)
    assert ours.getInputCol() == "s" and ours.getOrDefault("numNegatives") == 5  # w2vspark's own default
    Word2Vec(inputCol="s").save(str(tmp_path / "estimator"))
    with pytest.raises(UserError, match="estimator holds a w2vspark.ml.Word2Vec, not a Word2VecModel"):
        Word2VecModel.load(str(tmp_path / "estimator"))


def test_spark_suite_behaviours(spark):
    # from Spark's Word2VecSuite: non-nullable array input (NGram output) is accepted; findSynonyms excludes the
    # word itself but not when asked with a vector
    df = spark.createDataFrame([("a b c d e f".split(),)] * 20, ["tokens"])
    ngrams = NGram(n=2, inputCol="tokens", outputCol="ngrams").transform(df)
    model = Word2Vec(vectorSize=4, minCount=1, seed=3, inputCol="ngrams", outputCol="v", batchPairs=64).fit(ngrams)
    assert len(model.wordVectors) == 5
    word = model.wordVectors.words[0]
    assert word not in [w for w, _ in model.findSynonymsArray(word, 4)]
    by_vector = model.findSynonymsArray(model.wordVectors.vector(word), 4)
    assert by_vector[0][0] == word and by_vector[0][1] == pytest.approx(1.0, abs=1e-6)


def test_workers_get_the_driver_python(spark, monkeypatch):
    import sys

    from w2vspark.session import use_driver_python

    sc = spark.sparkContext
    monkeypatch.delenv("PYSPARK_PYTHON", raising=False)
    monkeypatch.setattr(sc, "pythonExec", "python3")  # as a SparkContext started without PYSPARK_PYTHON
    monkeypatch.setattr(sc, "_w2vspark_checked", False, raising=False)
    use_driver_python(spark)
    assert sc.pythonExec == sys.executable  # local mode: the workers run this interpreter
    monkeypatch.setattr(sc, "pythonExec", "/usr/bin/some-python")
    use_driver_python(spark)
    assert sc.pythonExec == "/usr/bin/some-python"  # a choice the user made is kept


def test_worker_python_problems_are_named(spark, monkeypatch):
    import sys

    from w2vspark.session import worker_python_problem

    sc = spark.sparkContext
    monkeypatch.setattr(sc, "pythonExec", sys.executable)
    assert worker_python_problem(sc) == ""
    monkeypatch.setattr(sc, "pythonExec", "/nonexistent/python3")
    assert worker_python_problem(sc).startswith("failed: Cannot run program \"/nonexistent/python3\"")

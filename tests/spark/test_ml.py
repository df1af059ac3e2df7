"""The Spark ML drop-in: same Params as MLlib, fit inside a Pipeline, save and load, transform semantics."""
import numpy as np
import pytest
from pyspark.ml import Pipeline, PipelineModel
from pyspark.ml.feature import Tokenizer
from pyspark.ml.feature import Word2Vec as MLlibWord2Vec

from w2vspark.errors import InputError
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
    assert Word2Vec()._to_config().train.max_step == 1.0
    train = Word2Vec(damping=False, rollbackRatio=0.0)._to_config().train
    assert (train.damping, train.rollback_ratio) == (False, 0.0)
    assert Word2Vec()._to_config().train.damping is True
    train = Word2Vec(nsExponent=-0.5, shrinkWindows=False)._to_config().train
    assert (train.ns_exponent, train.shrink_windows) == (-0.5, False)
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

    fitted.write().overwrite().save(str(tmp_path / "pipeline"))
    loaded = PipelineModel.load(str(tmp_path / "pipeline"))
    assert np.array_equal(loaded.stages[-1].wordVectors.vectors, model.wordVectors.vectors)
    again = loaded.transform(df).select("features").first()["features"].toArray()
    assert np.allclose(again, out["features"].toArray())
    assert loaded.stages[-1].getOrDefault("numNegatives") == 5 and loaded.stages[-1].uid == model.uid

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


def test_fit_rejects_a_string_column(spark, text_df):
    _, df = text_df
    with pytest.raises(InputError, match="inputCol must name a column of type array<string>"):
        Word2Vec(inputCol="text").fit(df)
    with pytest.raises(InputError, match="no column 'tokens' \\(inputCol\\); its columns are: text"):
        Word2Vec(inputCol="tokens").fit(df)

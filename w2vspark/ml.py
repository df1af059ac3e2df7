"""A drop-in for ``pyspark.ml.feature.Word2Vec``: change the import, keep the pipeline.

    from w2vspark.ml import Word2Vec            # instead of: from pyspark.ml.feature import Word2Vec
    model = Word2Vec(vectorSize=100, minCount=5, maxIter=5, inputCol="tokens", outputCol="vec").fit(df)

The shared Params keep MLlib's names and defaults (vectorSize 100, windowSize 5, minCount 5, maxIter 1,
stepSize 0.025, numPartitions 1, maxSentenceLength 1000); w2vspark adds model, cbowMean, loss, numNegatives,
sample, syncsPerEpoch, combine, maxStep, damping, skipSaturated, rollbackRatio, minStepSize, batchPairs, step,
paramsOn (the parameters on the driver or the executors while training) and initialModel (continued training).
``fit`` trains skip-gram or CBOW with negative sampling, hierarchical softmax (MLlib's own objective:
``loss="hierarchical_softmax"``) or the full softmax with this project's Spark trainer; the model
offers getVectors, findSynonyms, findSynonymsArray and transform (the average of each row's word vectors, divided
by all its tokens as MLlib does), and saves and loads as an MLWritable / MLReadable, alone or inside a Pipeline.

A saved model folder is Spark ML's own layout (metadata class ``org.apache.spark.ml.feature.Word2VecModel``, MLlib's
Params only, data/ as Parquet word + vector) plus w2vspark.json, with w2vspark's own Params in a ``w2vspark``
metadata field that Spark ignores: ``pyspark.ml.feature.Word2VecModel.load`` reads it on a cluster without
w2vspark, and so does a PipelineModel reloaded there (its Word2Vec stage comes back as pyspark's model).
:meth:`Word2VecModel.load` reads folders written by this class, by ``jobs/train.py`` and by Spark MLlib.

When ``PYSPARK_PYTHON`` is unset, Spark starts its Python workers with ``python3`` from the PATH, which may lack
this project's dependencies; in local mode fit and transform give the workers this interpreter, on a cluster they
check once that the workers can import them and say what to set if not.
"""
from __future__ import annotations

import json

import numpy as np
import pandas as pd  # module level: the pandas UDF's type hints are resolved in this module's globals
from pyspark import keyword_only
from pyspark.ml import Estimator, Model
from pyspark.ml.param import Param, Params, TypeConverters
from pyspark.ml.param.shared import HasInputCol, HasMaxIter, HasOutputCol, HasSeed, HasStepSize
from pyspark.ml.util import DefaultParamsReadable, DefaultParamsReader, DefaultParamsWritable, DefaultParamsWriter
from pyspark.ml.util import MLReadable, MLReader, MLWritable, MLWriter

from . import model as core
from .config import Config, OutputConfig, TrainConfig, VocabConfig, validate
from .errors import UserError
from .io.hadoop import HadoopFS, join
from .io.model_files import load_model, write_vectors
from .session import use_driver_python

__all__ = ["Word2Vec", "Word2VecModel"]

# pyspark.ml.feature.Word2VecModel's Params: the only ones Spark's reader accepts in metadata/part-00000
MLLIB_PARAMS = ("inputCol", "outputCol", "vectorSize", "windowSize", "minCount", "maxIter", "stepSize",
                "numPartitions", "seed", "maxSentenceLength")
_CLASS = __name__ + ".Word2VecModel"


class _Word2VecParams(HasInputCol, HasOutputCol, HasSeed, HasMaxIter, HasStepSize):
    vectorSize = Param(Params._dummy(), "vectorSize", "the dimension of the word vectors",
                       typeConverter=TypeConverters.toInt)
    windowSize = Param(Params._dummy(), "windowSize", "the largest context distance",
                       typeConverter=TypeConverters.toInt)
    minCount = Param(Params._dummy(), "minCount", "the least number of times a word must appear to be kept",
                     typeConverter=TypeConverters.toInt)
    numPartitions = Param(Params._dummy(), "numPartitions", "the number of partitions trained in parallel",
                          typeConverter=TypeConverters.toInt)
    maxSentenceLength = Param(Params._dummy(), "maxSentenceLength",
                              "longer rows are cut into sentences of at most this many tokens",
                              typeConverter=TypeConverters.toInt)
    numNegatives = Param(Params._dummy(), "numNegatives", "negative samples per pair",
                         typeConverter=TypeConverters.toInt)
    nsExponent = Param(Params._dummy(), "nsExponent", "negatives are drawn from count^nsExponent (1 = unigram, "
                       "0 = uniform, negative favours rare words)", typeConverter=TypeConverters.toFloat)
    negativeGroup = Param(Params._dummy(), "negativeGroup", "windows (far apart in a task's chunk) that share one "
                          "draw of negatives; 1 = each window its own; 0 = by the partition count "
                          "(train.negative_group)",
                          typeConverter=TypeConverters.toInt)
    shrinkWindows = Param(Params._dummy(), "shrinkWindows", "each center draws its window from 1..windowSize "
                          "(false: every context within windowSize)", typeConverter=TypeConverters.toBoolean)
    sample = Param(Params._dummy(), "sample", "subsampling threshold of frequent words (0 disables)",
                   typeConverter=TypeConverters.toFloat)
    loss = Param(Params._dummy(), "loss", "'neg_sampling', 'hierarchical_softmax' (MLlib's objective) or "
                 "'naive_softmax'", typeConverter=TypeConverters.toString)
    model = Param(Params._dummy(), "model", "'skipgram' or 'cbow'", typeConverter=TypeConverters.toString)
    cbowMean = Param(Params._dummy(), "cbowMean", "cbow: the mean of the context vectors (false: their sum)",
                     typeConverter=TypeConverters.toBoolean)
    syncsPerEpoch = Param(Params._dummy(), "syncsPerEpoch", "parameter synchronisations per epoch (0: max(4, 2 x "
                          "numPartitions), 4 x numPartitions for one epoch, and at least 16 over the run on "
                          "several partitions; hierarchical_softmax at least min(numPartitions^2, 64))",
                          typeConverter=TypeConverters.toInt)
    combine = Param(Params._dummy(), "combine",
                    "how partition updates combine: 'scaled', 'scaled_row', 'sum' or 'average' (MLlib's rule)",
                    typeConverter=TypeConverters.toString)
    maxStep = Param(Params._dummy(), "maxStep", "per round, a row that several partitions moved moves at most "
                    "maxStep x max(min(its length, 4 x typical), typical); 0 = no limit (default)",
                    typeConverter=TypeConverters.toFloat)
    damping = Param(Params._dummy(), "damping", "a row repeated in a minibatch steps at most to the minimum "
                    "of a quadratic bound of its loss", typeConverter=TypeConverters.toBoolean)
    skipSaturated = Param(Params._dummy(), "skipSaturated", "products with a score |z| >= 6 take no step (gensim's "
                          "training); false = every product takes its gradient step (word2vec.c's negative "
                          "sampling)", typeConverter=TypeConverters.toBoolean)
    rollbackRatio = Param(Params._dummy(), "rollbackRatio", "a round whose loss exceeds this x the lowest so far "
                          "is rolled back and the learning rate halved; 0 = off", typeConverter=TypeConverters.toFloat)
    minStepSize = Param(Params._dummy(), "minStepSize", "the learning rate at the end of training",
                        typeConverter=TypeConverters.toFloat)
    batchPairs = Param(Params._dummy(), "batchPairs", "pairs per minibatch step", typeConverter=TypeConverters.toInt)
    step = Param(Params._dummy(), "step", "'minibatch' (a minibatch's gradients at the same parameters), "
                 "'sequential' (its windows one after another, skip-gram pair by pair: word2vec.c's order) or 'auto' "
                 "(sequential for CBOW and for skip-gram with hierarchical softmax)",
                 typeConverter=TypeConverters.toString)
    paramsOn = Param(Params._dummy(), "paramsOn", "where the parameters live while training: 'driver' (broadcast "
                     "every round), 'executors' (row blocks on the executors: the driver holds the vocabulary while "
                     "training, and the fitted model once at the end) or 'auto' (the driver when its memory holds "
                     "the training's three copies of the model)", typeConverter=TypeConverters.toString)
    initialModel = Param(Params._dummy(), "initialModel", "continue from this saved model folder (w2vspark or Spark "
                         "ML) or word2vec file: its words keep their vectors, new words are added; '' = random start",
                         typeConverter=TypeConverters.toString)

    def __init__(self, *args):
        super().__init__(*args)
        self._setDefault(vectorSize=100, windowSize=5, minCount=5, numPartitions=1, maxSentenceLength=1000,
                         maxIter=1, stepSize=0.025, numNegatives=5, sample=1e-3, loss="neg_sampling",
                         syncsPerEpoch=0, combine="scaled", maxStep=0.0, minStepSize=0.0001, batchPairs=4096,
                         damping=True, rollbackRatio=1.5, nsExponent=0.75, shrinkWindows=True,
                         initialModel="", model="skipgram", cbowMean=True, negativeGroup=0, paramsOn="auto",
                         step="auto", skipSaturated=False, outputCol=self.uid + "__output")

    def getVectorSize(self) -> int:
        return self.getOrDefault(self.vectorSize)

    def getWindowSize(self) -> int:
        return self.getOrDefault(self.windowSize)

    def getMinCount(self) -> int:
        return self.getOrDefault(self.minCount)

    def getNumPartitions(self) -> int:
        return self.getOrDefault(self.numPartitions)

    def getMaxSentenceLength(self) -> int:
        return self.getOrDefault(self.maxSentenceLength)

    def _to_config(self) -> Config:
        seed = self.getOrDefault(self.seed) if self.isDefined(self.seed) else 0
        train = TrainConfig(
            dim=self.getVectorSize(), window=self.getWindowSize(), num_negatives=self.getOrDefault(self.numNegatives),
            ns_exponent=self.getOrDefault(self.nsExponent), shrink_windows=self.getOrDefault(self.shrinkWindows),
            negative_group=self.getOrDefault(self.negativeGroup),
            sample=self.getOrDefault(self.sample), lr=self.getStepSize(),
            min_lr=min(self.getOrDefault(self.minStepSize), self.getStepSize()), epochs=self.getMaxIter(),
            loss=self.getOrDefault(self.loss), model=self.getOrDefault(self.model),
            cbow_mean=self.getOrDefault(self.cbowMean), batch_pairs=self.getOrDefault(self.batchPairs),
            step=self.getOrDefault(self.step),
            num_partitions=self.getNumPartitions(), syncs_per_epoch=self.getOrDefault(self.syncsPerEpoch),
            combine=self.getOrDefault(self.combine), max_step=self.getOrDefault(self.maxStep),
            damping=self.getOrDefault(self.damping), skip_saturated=self.getOrDefault(self.skipSaturated),
            rollback_ratio=self.getOrDefault(self.rollbackRatio),
            seed=int(seed) & (2 ** 63 - 1), checkpoint_every=0, init_model=self.getOrDefault(self.initialModel),
            params_on=self.getOrDefault(self.paramsOn))
        cfg = Config(train=train, vocab=VocabConfig(min_count=self.getMinCount(),
                                                    max_sentence_length=self.getMaxSentenceLength()),
                     output=OutputConfig(dir="(in memory)"))
        validate(cfg)
        return cfg


class _HasColumnSetters:
    def setInputCol(self, value):
        return self._set(inputCol=value)

    def setOutputCol(self, value):
        return self._set(outputCol=value)


class Word2Vec(_HasColumnSetters, Estimator, _Word2VecParams, DefaultParamsReadable, DefaultParamsWritable):
    """Skip-gram or CBOW word2vec trained on Spark by w2vspark, with pyspark.ml.feature.Word2Vec's Params."""

    @keyword_only
    def __init__(self, *, vectorSize=100, minCount=5, numPartitions=1, stepSize=0.025, maxIter=1, seed=None,
                 inputCol=None, outputCol=None, windowSize=5, maxSentenceLength=1000, numNegatives=5, sample=1e-3,
                 loss="neg_sampling", syncsPerEpoch=0, combine="scaled", maxStep=0.0, minStepSize=0.0001,
                 batchPairs=4096, damping=True, rollbackRatio=1.5, nsExponent=0.75, shrinkWindows=True,
                 initialModel="", model="skipgram", cbowMean=True, negativeGroup=0, paramsOn="auto", step="auto",
                 skipSaturated=False):
        super().__init__()
        self._set(**self._input_kwargs)

    @keyword_only
    def setParams(self, *, vectorSize=100, minCount=5, numPartitions=1, stepSize=0.025, maxIter=1, seed=None,
                  inputCol=None, outputCol=None, windowSize=5, maxSentenceLength=1000, numNegatives=5, sample=1e-3,
                  loss="neg_sampling", syncsPerEpoch=0, combine="scaled", maxStep=0.0, minStepSize=0.0001,
                  batchPairs=4096, damping=True, rollbackRatio=1.5, nsExponent=0.75, shrinkWindows=True,
                  initialModel="", model="skipgram", cbowMean=True, negativeGroup=0, paramsOn="auto", step="auto",
                  skipSaturated=False):
        return self._set(**self._input_kwargs)

    def setVectorSize(self, value):
        return self._set(vectorSize=value)

    def setMinCount(self, value):
        return self._set(minCount=value)

    def setNumPartitions(self, value):
        return self._set(numPartitions=value)

    def setWindowSize(self, value):
        return self._set(windowSize=value)

    def setNsExponent(self, value):
        return self._set(nsExponent=value)

    def setShrinkWindows(self, value):
        return self._set(shrinkWindows=value)

    def setNegativeGroup(self, value):
        return self._set(negativeGroup=value)

    def setModel(self, value):
        return self._set(model=value)

    def setLoss(self, value):
        return self._set(loss=value)

    def setCbowMean(self, value):
        return self._set(cbowMean=value)

    def setInitialModel(self, value):
        return self._set(initialModel=value)

    def setParamsOn(self, value):
        return self._set(paramsOn=value)

    def setMaxSentenceLength(self, value):
        return self._set(maxSentenceLength=value)

    def setMaxIter(self, value):
        return self._set(maxIter=value)

    def setStepSize(self, value):
        return self._set(stepSize=value)

    def setSeed(self, value):
        return self._set(seed=value)

    def _fit(self, dataset):
        from pyspark import StorageLevel

        from .continued import initial_params, read_start_model, word_outputs
        from .corpus import (SEQUENCE_TYPES, continued_vocab, count_words, encode, require_column, select_vocab,
                             sequence_chunks)
        from .train.partitions import partition_for_training
        from .train.stage import check_model_size, params_site, train_partitioned

        cfg = self._to_config()
        column = self.getInputCol()
        require_column(dataset, column, SEQUENCE_TYPES, "the dataset", "inputCol")
        spark = dataset.sparkSession
        use_driver_python(spark)
        chunks = sequence_chunks(dataset, column, cfg.vocab.max_sentence_length).persist(
            StorageLevel.MEMORY_AND_DISK)
        corpus = words_bc = None
        try:
            start = read_start_model(spark, cfg.train.init_model) if cfg.train.init_model else None
            if start is not None:
                vocab, _ = continued_vocab(spark, count_words(chunks), cfg, start)
            else:
                vocab = select_vocab(count_words(chunks), cfg)
            on_executors = params_site(spark, cfg, len(vocab))[0] == "executors"
            check_model_size(spark, cfg, len(vocab), on_executors)
            if on_executors:
                check_fitted_model(spark, len(vocab), cfg.train.dim)
            encoded, words_bc = encode(spark, chunks, vocab)
            corpus = partition_for_training(spark, encoded, cfg.train.num_partitions,
                                            syncs=cfg.train.syncs(cfg.train.num_partitions))
            if on_executors:
                w_in, w_out = fit_on_executors(spark, cfg, vocab, corpus, start)
            else:
                w_in, w_out = initial_params(vocab, start, cfg.train.dim, cfg.train.seed, cfg.train.loss)
                train_partitioned(spark, cfg, vocab, corpus, w_in, w_out, log=lambda *_: None)
        finally:
            if corpus is not None:
                corpus.unpersist()
            if words_bc is not None:
                words_bc.unpersist()
            chunks.unpersist()
        model = Word2VecModel(core.Word2VecModel(vocab.words, w_in, vocab.counts, cfg.to_dict()),
                              w_out if word_outputs(cfg.train.loss) else None)
        model._resetUid(self.uid)
        return self._copyValues(model)


def check_fitted_model(spark, vocab_size: int, dim: int) -> None:
    """With the parameters on the executors, the driver still receives the fitted model (w_in and w_out, as
    MLlib's Word2VecModel holds its vectors on the driver): refuse a model that it cannot hold once."""
    from .train.spark_rounds import SPARK_BASELINE, parse_memory

    model_bytes = 2 * vocab_size * dim * 4
    driver = parse_memory(spark.sparkContext.getConf().get("spark.driver.memory", "1g"))
    if SPARK_BASELINE + model_bytes > driver:
        mb = 1 << 20
        raise UserError(f"the fitted model (2 x {vocab_size} words x {dim} dims x 4 bytes = {model_bytes / mb:.0f} "
                        f"MiB) comes to the driver, whose spark.driver.memory is {driver / mb:.0f} MiB: raise it, or "
                        f"train with jobs/train.py and train.params_on=executors, which writes the model from the "
                        f"executors without the driver holding it")


def fit_on_executors(spark, cfg: Config, vocab, corpus, start) -> tuple[np.ndarray, np.ndarray]:
    """Train with the parameters as row blocks on the executors -> the trained (w_in, w_out) on the driver."""
    from .continued import initial_params
    from .train.executor_params import blocks_from_arrays, initial_blocks
    from .train.stage import param_partitions, train_on_executors

    t, V = cfg.train, len(vocab)
    parts = param_partitions(spark, 8 * V * t.dim)
    if start is None:
        blocks = initial_blocks(spark, V, t.dim, t.seed, parts)
    else:
        blocks = blocks_from_arrays(spark, *initial_params(vocab, start, t.dim, t.seed, t.loss), parts)
    store = train_on_executors(spark, cfg, vocab, corpus, blocks, log=lambda *_: None)
    try:
        return store.to_arrays()
    finally:
        store.release()


class Word2VecModel(_HasColumnSetters, Model, _Word2VecParams, MLReadable, MLWritable):
    """Word vectors trained by :class:`Word2Vec`, with pyspark.ml.feature.Word2VecModel's methods."""

    def __init__(self, vectors: core.Word2VecModel | None = None, w_out: np.ndarray | None = None):
        super().__init__()
        self._core = vectors
        self._w_out = w_out  # (V, d) output vectors after fit: saved as w_out/ for continued training
        self._bc = None

    @property
    def wordVectors(self) -> core.Word2VecModel:
        """The vectors as a :class:`w2vspark.model.Word2VecModel` (numpy arrays and similarity queries)."""
        return self._core

    def getVectors(self):
        """DataFrame (word: string, vector: vector) with one row per word, most frequent first."""
        from pyspark.ml.functions import array_to_vector
        from pyspark.sql import SparkSession, functions as F

        spark = SparkSession.getActiveSession() or SparkSession.builder.getOrCreate()
        df = self._core.to_spark(spark)
        return df.select("word", array_to_vector(F.col("vector")).alias("vector"))

    def findSynonymsArray(self, word, num: int) -> list[tuple[str, float]]:
        """The ``num`` words closest to ``word`` (a string or a vector) by cosine similarity."""
        query = word if isinstance(word, str) else np.asarray(getattr(word, "toArray", lambda: word)())
        return self._core.most_similar(query, num)

    def findSynonyms(self, word, num: int):
        """DataFrame (word: string, similarity: double) of the ``num`` closest words."""
        from pyspark.sql import SparkSession

        spark = SparkSession.getActiveSession() or SparkSession.builder.getOrCreate()
        return spark.createDataFrame(self.findSynonymsArray(word, num), "word string, similarity double")

    def _transform(self, dataset):
        from pyspark.ml.functions import array_to_vector
        from pyspark.sql.functions import pandas_udf

        spark = dataset.sparkSession
        use_driver_python(spark)
        if self._bc is None:
            index = {w: i for i, w in enumerate(self._core.words)}
            self._bc = spark.sparkContext.broadcast((index, self._core.vectors))
        bc, dim = self._bc, self._core.dim

        @pandas_udf("array<double>")
        def average(rows: pd.Series) -> pd.Series:
            index, vectors = bc.value
            out = []
            for tokens in rows:
                total = np.zeros(dim, dtype=np.float64)
                if tokens is not None and len(tokens):
                    ids = [index[t] for t in tokens if t in index]
                    if ids:
                        total = vectors[ids].sum(axis=0, dtype=np.float64)
                    total /= len(tokens)  # every token counts, unknown ones included (as MLlib)
                out.append(total)
            return pd.Series(out)

        tokens = dataset[self.getInputCol()].cast("array<string>")  # ID columns: numbers as their decimal string
        return dataset.withColumn(self.getOutputCol(), array_to_vector(average(tokens)))

    def write(self) -> MLWriter:
        return _ModelWriter(self)

    @classmethod
    def read(cls) -> MLReader:
        return _ModelReader(cls)


class _ModelWriter(MLWriter):
    def __init__(self, instance: Word2VecModel):
        super().__init__()
        self.instance = instance

    def saveImpl(self, path: str) -> None:
        model = self.instance
        mine = {p.name: v for p, v in model._paramMap.items()}
        defaults = {p.name: v for p, v in model._defaultParamMap.items()}
        spark_only = {"class": core.SPARK_ML_CLASS,
                      "defaultParamMap": {k: v for k, v in defaults.items() if k in MLLIB_PARAMS},
                      "w2vspark": {"class": _CLASS, "paramMap": mine, "defaultParamMap": defaults}}
        DefaultParamsWriter.saveMetadata(model, path, self.sparkSession, extraMetadata=spark_only,
                                         paramMap={k: v for k, v in mine.items() if k in MLLIB_PARAMS})
        spark = self.sparkSession
        m = model.wordVectors
        write_vectors(spark, m, join(path, "data"))
        if model._w_out is not None:
            write_vectors(spark, core.Word2VecModel(m.words, model._w_out), join(path, "w_out"))
        HadoopFS(spark).write_text(join(path, "w2vspark.json"), json.dumps(m.info()) + "\n")


class _ModelReader(MLReader):
    def __init__(self, cls):
        super().__init__()
        self.cls = cls

    def load(self, path: str) -> Word2VecModel:
        spark = self.sparkSession
        metadata = DefaultParamsReader.loadMetadata(path, spark)
        if metadata["class"] not in (core.SPARK_ML_CLASS, _CLASS):
            raise UserError(f"{path} holds a {metadata['class']}, not a Word2VecModel")
        model = self.cls(load_model(spark, path, mllib=True))
        model._resetUid(metadata["uid"])
        params = metadata.get("w2vspark", metadata)  # w2vspark's Params, else MLlib's (all of them exist here)
        DefaultParamsReader.getAndSetParams(model, {**params, "sparkVersion": metadata["sparkVersion"]})
        return model

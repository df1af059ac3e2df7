import json

import numpy as np
import pytest

from w2vspark.model import Word2VecModel
from w2vspark.io.atomic import OutputExistsError


def _model():
    words = ["king", "queen", "man", "woman", "apple"]
    vectors = np.array([[1, 1, 0], [1, -1, 0], [0, 1, 0], [0, -1, 0], [0, 0, 1]], dtype=np.float32)
    return Word2VecModel(words, vectors, counts=[5, 4, 3, 2, 1], config={"train": {"window": 3}})


def test_queries():
    m = _model()
    assert m.most_similar("king", 2)[0][0] in ("man", "queen")
    assert "king" not in [w for w, _ in m.most_similar("king", 4)]
    assert m.analogy("man", "king", "woman")[0][0] == "queen"
    assert m.similarity("king", "king") == pytest.approx(1.0)
    assert m.similarity("apple", "man") == pytest.approx(0.0)
    with pytest.raises(KeyError, match="'prince'"):
        m.vector("prince")
    by_vector = m.most_similar(np.array([0, 0, 2.0]), 1)
    assert by_vector[0][0] == "apple" and by_vector[0][1] == pytest.approx(1.0)


def test_save_load_round_trip_and_refusals(tmp_path):
    m = _model()
    m.save(tmp_path / "model")
    back = Word2VecModel.load(tmp_path / "model")
    assert back.words == m.words and np.array_equal(back.vectors, m.vectors)
    assert back.counts.tolist() == [5, 4, 3, 2, 1]
    meta = json.loads((tmp_path / "model" / "metadata" / "part-00000").read_text())
    assert meta["class"] == "org.apache.spark.ml.feature.Word2VecModel"
    assert meta["paramMap"]["vectorSize"] == 3 and meta["paramMap"]["windowSize"] == 3
    with pytest.raises(OutputExistsError, match="overwrite"):
        m.save(tmp_path / "model")
    info = json.loads((tmp_path / "model" / "w2vspark.json").read_text())
    info["format_version"] = 99
    (tmp_path / "model" / "w2vspark.json").write_text(json.dumps(info))
    with pytest.raises(ValueError, match="format_version 99"):
        Word2VecModel.load(tmp_path / "model")

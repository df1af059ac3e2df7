"""word2vec text/binary and projector exports, read back by gensim and by hand."""
import numpy as np
import pytest

from w2vspark.errors import UserError
from w2vspark.export import projector_metadata, projector_vectors, word2vec_binary, word2vec_text
from w2vspark.model import Word2VecModel


def _model():
    rng = np.random.default_rng(1)
    words = ["the", "café", "o'clock", "x"]
    vectors = (rng.normal(size=(4, 7)) * np.array([1e-8, 1, 1e3, 1, 1, 1, 3e-3])).astype(np.float32)
    return Word2VecModel(words, vectors)


def test_gensim_loads_text_and_binary(tmp_path):
    from gensim.models import KeyedVectors

    m = _model()
    for name, fn, binary in (("v.txt", word2vec_text, False), ("v.bin", word2vec_binary, True)):
        data = b"".join(fn(m))
        assert b"\r\n" not in data
        (tmp_path / name).write_bytes(data)
        kv = KeyedVectors.load_word2vec_format(str(tmp_path / name), binary=binary)
        assert kv.index_to_key == m.words  # most frequent first, unchanged order
        assert np.array_equal(kv.vectors, m.vectors)  # float32 values exactly


def test_projector_tsv(tmp_path):
    m = _model()
    rows = b"".join(projector_vectors(m)).decode().splitlines()
    assert len(rows) == 4 and all(len(r.split("\t")) == 7 for r in rows)
    assert np.array_equal(np.array([[np.float32(x) for x in r.split("\t")] for r in rows]), m.vectors)
    assert b"".join(projector_metadata(m)).decode().splitlines() == m.words


def test_words_with_whitespace_are_refused():
    m = Word2VecModel(["a b", "c"], np.zeros((2, 2)))
    with pytest.raises(UserError, match="'a b'"):
        b"".join(word2vec_text(m))


def test_runs_break_at_a_new_file_a_gap_and_the_chunk_size(monkeypatch):
    import w2vspark.export as export

    monkeypatch.setattr(export, "ROWS_PER_CHUNK", 3)
    files = ["a"] * 8 + ["b"] * 2
    rows = np.array([0, 1, 2, 3, 4, 6, 7, 8, 0, 1])
    # 0-2 (a chunk of 3), 3-4, gap -> 6-8, new file -> 0-1
    assert export._run_starts(files, rows) == [0, 3, 5, 8]
    assert export._run_starts([], np.array([], dtype=np.int64)) == []


def test_the_settings_name_every_export_in_order():
    from w2vspark.config import EXPORT_NAMES, OutputConfig
    from w2vspark.export import EXPORTS

    assert tuple(EXPORTS) == EXPORT_NAMES == OutputConfig().exports

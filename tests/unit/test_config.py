import pytest

from w2vspark.cli import parse_config
from w2vspark.config import Config, ConfigError, load_config


def test_defaults_follow_word2vec(tmp_path):
    cfg = load_config()
    t = cfg.train
    assert (t.dim, t.window, t.num_negatives, t.sample, t.lr, t.min_lr, t.epochs) == (100, 5, 5, 1e-3, 0.025,
                                                                                       0.0001, 5)
    assert cfg.vocab.min_count == 5 and cfg.vocab.max_vocab_size is None and cfg.vocab.max_sentence_length == 1000


def test_precedence_file_then_overrides(tmp_path):
    f = tmp_path / "c.toml"
    f.write_text('[train]\ndim = 50\nepochs = 3\n[vocab]\nmax_vocab_size = 100\n[eval]\nwords = ["a", "b"]\n')
    cfg = load_config(f, ["train.epochs=7", "train.sample=0", "vocab.lowercase=false", "vocab.max_vocab_size=none",
                          "eval.words=x,y"])
    assert cfg.train.dim == 50 and cfg.train.epochs == 7 and cfg.train.sample == 0.0
    assert cfg.vocab.lowercase is False and cfg.vocab.max_vocab_size is None
    assert cfg.eval.words == ("x", "y")
    assert isinstance(cfg, Config)


@pytest.mark.parametrize("text, message", [
    ('[train]\ndimm = 3\n', "unknown config key 'train.dimm'"),
    ('[trian]\ndim = 3\n', "unknown config section 'trian'"),
    ('[train]\ndim = "big"\n', "'train.dim' expects int, got 'big'"),
    ('[train]\nlr = true\n', "'train.lr' expects float"),
    ('[train]\nloss = "hs"\n', "'train.loss' must be one of"),
    ('[train\n', "not valid TOML"),
])
def test_bad_files_name_the_key(tmp_path, text, message):
    f = tmp_path / "c.toml"
    f.write_text(text)
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        load_config(f)


@pytest.mark.parametrize("override, message", [
    ("train.epochs=two", "'train.epochs' expects int, got 'two'"),
    ("train.nope=1", "unknown config key 'train.nope'"),
    ("epochs=1", "section.key=value"),
    ("train.window=0", "'train.window' must be >= 1"),
    ("train.sum_on=cluster", "'train.sum_on' must be one of"),
    ("train.params_replicas=0", "'train.params_replicas' must be >= 1"),
    ("train.negative_group=-1", "'train.negative_group' must be >= 0"),
    ("vocab.lowercase=maybe", "'vocab.lowercase' expects bool"),
    ("train.ns_exponent=nan", "'train.ns_exponent' must be a finite number"),
    ("input.tokens_column=walk", "'input.format' must be a table source"),
    ("output.exports=vectors.txt,vectors.csv", "'output.exports' must be a non-empty list of"),
    ("output.exports=", "'output.exports' must be a non-empty list of"),
])
def test_bad_overrides_name_the_key(override, message):
    with pytest.raises(ConfigError, match=message):
        load_config(None, [override])


def test_sequences_are_never_retokenized():
    cfg = load_config(None, ["input.format=parquet", "input.tokens_column=walk", "train.ns_exponent=-0.5"])
    assert cfg.input.tokens_column == "walk" and cfg.train.ns_exponent == -0.5
    with pytest.raises(ConfigError, match="'vocab.token_pattern' must be empty when input.tokens_column is set"):
        load_config(None, ["input.format=parquet", "input.tokens_column=walk", r"vocab.token_pattern=\S+"])


def test_missing_file_named():
    with pytest.raises(ConfigError, match="nowhere.toml"):
        load_config("nowhere.toml")


def test_cli_exits_with_a_one_line_error(capsys):
    with pytest.raises(SystemExit) as err:
        parse_config("x", ["--set", "train.dim=-1"])
    assert err.value.code == 2
    assert "train.dim" in capsys.readouterr().err
    cfg = parse_config("x", ["--set", "train.dim=8", "--resume"])
    assert cfg.train.dim == 8 and cfg.train.resume is True


def test_reference_file_lists_every_setting_with_its_default():
    import dataclasses
    import tomllib
    from pathlib import Path

    path = Path(__file__).parents[2] / "conf" / "w2v.toml"
    assert load_config(path) == Config()
    raw = tomllib.loads(path.read_text())
    for section in dataclasses.fields(Config):
        documented = set(raw.get(section.name, {}))
        fields = {f.name for f in dataclasses.fields(section.type if isinstance(section.type, type)
                                                     else getattr(Config(), section.name).__class__)}
        optional = {"max_vocab_size"}  # None has no TOML spelling: it is shown commented out
        assert fields - optional == documented - optional, section.name
    assert "# max_vocab_size" in path.read_text()


@pytest.mark.parametrize("partitions, syncs_setting, epochs, expected", [
    (1, 0, 2, 4), (2, 0, 5, 4), (4, 0, 2, 8), (8, 0, 2, 16), (16, 0, 2, 32), (8, 3, 2, 3),
    # few epochs on several partitions: at least 16 rounds in the run; one partition has no stale tasks
    (2, 0, 2, 8), (2, 0, 1, 16), (2, 0, 3, 6), (4, 0, 1, 16), (1, 0, 1, 4), (2, 5, 1, 5),
    # a single epoch: 4P rounds
    (8, 0, 1, 32), (16, 0, 1, 64), (16, 0, 2, 32), (16, 40, 1, 40)])
def test_sync_rounds_grow_with_partitions_unless_set(partitions, syncs_setting, epochs, expected):
    check_sync_rounds(partitions, syncs_setting, epochs, expected)


@pytest.mark.parametrize("partitions, syncs_setting, epochs, expected", [
    (1, 0, 5, 4), (2, 0, 5, 4), (3, 0, 5, 9), (4, 0, 5, 16), (8, 0, 5, 64), (16, 0, 5, 64), (48, 0, 5, 96),
    (8, 0, 1, 64), (16, 0, 1, 64), (2, 0, 1, 16), (8, 10, 5, 10)])
def test_hierarchical_softmax_rounds_grow_faster(partitions, syncs_setting, epochs, expected):
    """min(P^2, 64) rounds per epoch at least: the top of the Huffman tree is moved by every task."""
    check_sync_rounds(partitions, syncs_setting, epochs, expected, "train.loss=hierarchical_softmax")


def check_sync_rounds(partitions, syncs_setting, epochs, expected, *more):
    from w2vspark.train.loop import round_specs

    cfg = load_config(None, [f"train.num_partitions={partitions}", f"train.syncs_per_epoch={syncs_setting}",
                             f"train.epochs={epochs}", *more])
    assert cfg.train.syncs() == expected
    specs = round_specs(cfg.train, 10_000, partitions)
    assert len(specs) == epochs * expected
    assert [s.sync for s in specs[:expected]] == list(range(expected))
    assert all(s.syncs_per_epoch == expected for s in specs)
    assert specs[0].planned_words == -(-10_000 // (partitions * expected))


def test_negative_syncs_rejected():
    with pytest.raises(ConfigError, match="train.syncs_per_epoch"):
        load_config(None, ["train.syncs_per_epoch=-1"])


@pytest.mark.parametrize("overrides", [["train.model=cbow"], ["train.loss=hierarchical_softmax"]])
def test_shared_negatives_are_for_skipgram_with_negative_sampling(overrides):
    """CBOW with shared negatives failed 4 of 15 stress cells; hierarchical softmax draws no negatives."""
    load_config(None, ["train.negative_group=8"])  # skip-gram with negative sampling: accepted
    with pytest.raises(ConfigError, match="train.negative_group"):
        load_config(None, ["train.negative_group=8", *overrides])


def test_negative_group_zero_is_chosen_by_the_partition_count():
    """0 (the default): each window its own draw below 8 partitions, then num_partitions / 2 windows up to 8;
    always 1 for CBOW and hierarchical softmax; a number set is kept."""
    from w2vspark.config import negative_group_for

    def group(*overrides):
        return negative_group_for(load_config(None, list(overrides)).train)

    assert [group(f"train.num_partitions={p}") for p in (1, 2, 4, 7, 8, 12, 16, 64)] == [1, 1, 1, 1, 4, 6, 8, 8]
    assert group("train.num_partitions=16", "train.model=cbow") == 1
    assert group("train.num_partitions=16", "train.loss=hierarchical_softmax") == 1
    assert group("train.num_partitions=16", "train.negative_group=3") == 3
    assert group("train.num_partitions=2", "train.negative_group=8") == 8


@pytest.mark.parametrize("settings, expected_rows", [
    (["train.num_partitions=8", "train.loss=hierarchical_softmax"], ["| train.syncs_per_epoch | 0 (chosen: 64) |"]),
    (["train.num_partitions=8"], ["| train.syncs_per_epoch | 0 (chosen: 16) |",
                                  "| train.negative_group | 0 (chosen by the partition count: 4) |"]),
    (["train.num_partitions=8", "train.syncs_per_epoch=10"], ["| train.syncs_per_epoch | 10 |"]),
    (["train.model=cbow", "train.step=minibatch"], ["| train.step | minibatch |", "| train.cbow_mean | True |"]),
    (["train.skip_saturated=true"], ["| train.skip_saturated | True |"]),  # shown when it departs from the default
])
def test_report_settings_show_what_automatic_values_chose(settings, expected_rows):
    from w2vspark.report import settings_rows

    rows = settings_rows(load_config(None, settings))
    for row in expected_rows:
        assert row in rows
    assert rows[-1] == "| vocab.min_count | 5 |" and len(rows) == len(set(rows))
    assert any("skip_saturated" in row for row in rows) == ("train.skip_saturated=true" in settings)

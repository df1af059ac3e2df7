"""Per-epoch traffic totals from metrics records, and how they are written."""
from w2vspark.train.traffic import broadcast_size, epoch_totals, format_bytes, traffic_line


def _round(epoch, broadcast, shuffle, driver):
    return {"round": 0, "epoch": epoch, "loss": 1.0, "broadcast_bytes": broadcast, "shuffle_bytes": shuffle,
            "driver_bytes": driver}


def test_epoch_totals_sum_the_rounds_of_each_epoch_and_skip_events_and_unknowns():
    records = [_round(1, 100, 10, 1), _round(1, 100, 30, 2), {"event": "rollback", "round": 3},
               _round(2, 100, 5, 4), _round(2, 100, None, 4),  # a round whose stage metrics could not be read
               {"round": 9, "epoch": 3, "loss": 1.0}]  # an in-process run's record: no traffic fields
    assert epoch_totals(records) == {1: {"broadcast_bytes": 200, "shuffle_bytes": 40, "driver_bytes": 3},
                                     2: {"broadcast_bytes": 100, "shuffle_bytes": 5, "driver_bytes": 4}}


def test_traffic_line_gives_the_mean_per_epoch():
    mib = 1 << 20
    records = [_round(1, 2 * mib, 3 * mib, 1024), _round(2, 2 * mib, 5 * mib, 3072)]
    assert traffic_line(records) == ("traffic per epoch: 2.0 MiB broadcast, 4.0 MiB shuffled, 2.0 KiB sent to "
                                     "the driver (mean of 2 epoch(s))")
    assert traffic_line([{"round": 1, "epoch": 1, "loss": 1.0}]) is None


def test_format_bytes_picks_the_largest_unit_below_the_value():
    assert [format_bytes(n) for n in (0, 1023, 1024, 1536 << 20, 3 << 30)] == ["0 B", "1023 B", "1.0 KiB",
                                                                              "1.5 GiB", "3.0 GiB"]


def test_broadcast_size_reads_the_pickle_file_or_falls_back(tmp_path):
    class Broadcast:
        pass

    bc = Broadcast()
    bc._path = str(tmp_path / "pickle")
    (tmp_path / "pickle").write_bytes(b"x" * 1234)
    assert broadcast_size(bc, 99) == 1234
    bc._path = str(tmp_path / "gone")  # destroyed: its file was deleted
    assert broadcast_size(bc, 99) == 99
    assert broadcast_size(object(), 77) == 77



class _Spark:
    """Just enough of a SparkSession for sum_site: its configuration."""

    def __init__(self, **conf):
        values = {"spark." + k.replace("_", "."): v for k, v in conf.items()}
        getconf = type("Conf", (), {"get": lambda self, key, default=None: values.get(key, default)})()
        self.sparkContext = type("SC", (), {"getConf": lambda self: getconf})()


def test_deltas_go_by_files_in_local_mode_and_by_spark_elsewhere():
    from w2vspark.train.spark_rounds import sum_site

    for master in ("local[2]", "local[*]", "local-cluster[2,1,1024]"):  # one machine: files
        assert sum_site(_Spark(master=master), "auto") == "files"
        assert sum_site(_Spark(master=master), "driver") == "files"
        assert sum_site(_Spark(master=master), "executors") == "executors"  # a setting is kept as it is
    for cluster in ("spark://host:7077", "yarn", "k8s://https://host:443"):
        assert sum_site(_Spark(master=cluster), "auto") == "executors"
        assert sum_site(_Spark(master=cluster), "driver") == "driver"

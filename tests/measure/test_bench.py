"""``measure.bench.combine_rounds``: the median round and the median per-round ratio."""
from mspd_edge.measure.bench import combine_rounds


def _record(backend, throughput, ratio=None):
    record = {"backend": backend, "batch_size": 16, "images_per_s": throughput}
    return record if ratio is None else dict(record, ratio=ratio)


def test_median_round_and_ratio_within_rounds():
    rounds = [[_record("torch", 10.0, 1.0), _record("fast", 40.0, 4.0)],    # a slow spell of torch
              [_record("torch", 20.0, 1.0), _record("fast", 30.0, 1.5)],
              [_record("torch", 18.0, 1.0), _record("fast", 36.0, 2.0)]]
    torch_row, fast = combine_rounds(rounds, "ratio")
    assert torch_row["images_per_s"] == 18.0 and torch_row["ratio"] == 1.0
    assert fast["images_per_s"] == 36.0 and fast["images_per_s_rounds"] == [40.0, 30.0, 36.0]
    assert fast["ratio"] == 2.0 and fast["ratio_rounds"] == [4.0, 1.5, 2.0] and fast["rounds"] == 3


def test_even_rounds_take_the_lower_median_and_no_ratio_without_reference():
    rounds = [[_record("ort", 12.0)], [_record("ort", 10.0)]]
    (row,) = combine_rounds(rounds, "ratio")
    assert row["images_per_s"] == 10.0 and "ratio" not in row and row["rounds"] == 2

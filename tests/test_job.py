"""The job both engines run (``mspd_edge.job``): one input per output, and the groups."""
from mspd_edge.job import OutputClaims, batches


def test_one_input_per_output_and_the_error_says_why():
    claims = OutputClaims()
    assert claims.conflict("out/a.png", "out/a.png", "in/a.jpg", "a.jpg") is None
    assert claims.conflict("out/a.png", "out/a.png", "in/a.png", "a.png") == (
        "its output out/a.png is also that of in/a.jpg (same name but for the suffix or case): "
        "rename one of them")
    assert claims.conflict("out/x/b.png", "out/x/b.png", "one/x/b.png", "x/b.png") is None
    assert claims.conflict("out/x/b.png", "out/x/b.png", "two/x/b.png", "x/b.png") == (
        "its output out/x/b.png is also that of one/x/b.png: both are x/b.png in one and two (each "
        "input goes to OUTDIR by its path in its folder): use another -o for one of them")
    assert claims.conflict("in/c.png", "in/c.png", "in/c.png", "c.png", replaces_input=True) == \
        "the output would replace the input"


def test_groups_hold_a_count_and_a_weight_and_one_kind():
    items = [(1, "a"), (1, "a"), (1, "a"), (5, "a"), (1, "b"), (1, "b")]
    weight, kind = (lambda item: item[0]), (lambda item: item[1])
    assert batches(items, 2, weight, lambda item: 10) == [items[:2], items[2:4], items[4:]]
    assert batches(items, 9, weight, lambda item: 5) == [items[:3], items[3:4], items[4:]]
    assert batches(items, 9, weight, lambda item: 99, kind) == [items[:4], items[4:]]
    assert batches([(50, "a")], 9, weight, lambda item: 5) == [[(50, "a")]]   # alone when larger
    assert batches([], 9, weight, lambda item: 5) == []

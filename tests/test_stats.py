"""The hold-out comparison's interval, checked against Newcombe's (1998) published examples."""

import pytest

from ivr.report.stats import newcombe, wilson


def test_wilson_matches_the_published_value():
    assert wilson(81, 263) == pytest.approx((0.2553, 0.3662), abs=1e-4)
    assert wilson(0, 10)[0] == 0.0 and 0.27 < wilson(0, 10)[1] < 0.31


@pytest.mark.parametrize("k1,n1,k2,n2,low,high", [
    (56, 70, 48, 80, 0.0524, 0.3339),  # Newcombe 1998, table II, example (a)
    (9, 10, 3, 10, 0.1705, 0.8090),  # example (b)
    (5, 56, 0, 29, -0.0381, 0.1926),  # example (d): a zero count, where Wald fails
])
def test_newcombe_matches_the_published_intervals(k1, n1, k2, n2, low, high):
    d = newcombe(k1, n1, k2, n2)
    assert d.diff == pytest.approx(k1 / n1 - k2 / n2)
    assert (d.low, d.high) == pytest.approx((low, high), abs=1e-4)


def test_an_empty_group_has_no_interval():
    assert newcombe(1, 10, 0, 0) is None

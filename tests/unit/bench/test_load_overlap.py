"""The load generator's answer times, which the lab's load tests use to prove a change happened
while answers were coming in."""
from tests.support.load import LoadResult


def test_around_counts_answers_before_the_start_and_after_the_end():
    result = LoadResult(ok_times=[1.0, 2.0, 3.0, 4.0, 5.0, 6.0])
    assert result.around(2.5, 4.5) == (2, 2)
    assert result.around(3.0, 3.0) == (2, 3)
    assert result.around(0.0, 9.0) == (0, 0)
    assert LoadResult().around(1.0, 2.0) == (0, 0)

"""The load generator's answer times, which the lab's load tests use to prove a change happened
while answers were coming in."""
from tests.support.load import LoadResult


def test_around_counts_answers_before_the_start_and_after_the_end():
    result = LoadResult(ok_times=[1.0, 2.0, 3.0, 4.0, 5.0, 6.0])
    assert result.around(2.5, 4.5) == (2, 2)
    assert result.around(3.0, 3.0) == (2, 3)
    assert result.around(0.0, 9.0) == (0, 0)
    assert LoadResult().around(1.0, 2.0) == (0, 0)


def test_rate_counts_answers_per_second_in_a_window():
    result = LoadResult(ok_times=[1.0, 2.0, 3.0, 4.0, 5.0, 6.0])
    assert result.rate(2.0, 4.0) == 1.0          # 2.0 and 3.0: the start counts, the end does not
    assert result.rate(0.0, 10.0) == 0.6
    assert LoadResult().rate(1.0, 2.0) == 0.0


def test_longest_gap_without_an_answer_counts_the_window_edges():
    result = LoadResult(ok_times=[2.0, 2.5, 6.0, 6.5])
    assert result.longest_gap(2.0, 7.0) == 3.5            # 2.5 -> 6.0
    assert result.longest_gap(0.0, 7.0) == 3.5
    assert result.longest_gap(6.0, 10.0) == 3.5           # 6.5 -> the end
    assert LoadResult().longest_gap(1.0, 3.0) == 2.0

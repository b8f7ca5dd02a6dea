"""qa.dates: dates as the index stores them and the date filter compares them."""
from qa.dates import normalize_date


def test_dates_become_iso_so_the_filter_can_compare_them():
    assert normalize_date("July 28, 2025") == "2025-07-28"
    assert normalize_date("2025-07-28T09:00:00Z") == "2025-07-28"
    assert normalize_date("28 Jul 2025 10:00 +0200") == "2025-07-28"
    assert normalize_date("March 2024") == "2024-03-01"
    for not_a_date in ("garbage", "", None, "July 28"):
        assert normalize_date(not_a_date) is None

"""qa.dates: dates as the index stores them, and as questions say them."""
from datetime import date

import pytest

from qa.dates import normalize_date, read_time


def test_dates_become_iso_so_the_filter_can_compare_them():
    assert normalize_date("July 28, 2025") == "2025-07-28"
    assert normalize_date("2025-07-28T09:00:00Z") == "2025-07-28"
    assert normalize_date("28 Jul 2025 10:00 +0200") == "2025-07-28"
    assert normalize_date("March 2024") == "2024-03-01"
    for not_a_date in ("garbage", "", None, "July 28"):
        assert normalize_date(not_a_date) is None


# -- time words in questions: read relative to a fixed day (a Friday) -------------------------
TODAY = date(2026, 12, 4)


@pytest.mark.parametrize("question, date_from, date_to", [
    # years, months, days
    ("What did the Fed do in 2023?", "2023-01-01", "2023-12-31"),
    ("What happened during 2019?", "2019-01-01", "2019-12-31"),
    ("Who led the polls throughout 2024?", "2024-01-01", "2024-12-31"),
    ("What happened in March 2024?", "2024-03-01", "2024-03-31"),
    ("What did the court rule in Sept 2025?", "2025-09-01", "2025-09-30"),
    ("What happened in March?", "2026-03-01", "2026-03-31"),
    ("What was decided in December?", "2026-12-01", "2026-12-31"),  # this December
    ("What was announced on July 28, 2025?", "2025-07-28", "2025-07-28"),
    ("What happened on 28 July 2025?", "2025-07-28", "2025-07-28"),
    ("What was announced July 28, 2025?", "2025-07-28", "2025-07-28"),
    ("What happened on 2025-07-28?", "2025-07-28", "2025-07-28"),
    ("Who spoke on March 3?", "2026-03-03", "2026-03-03"),
    ("What was said in the 1990s?", "1990-01-01", "1999-12-31"),
    ("What changed in February 2024?", "2024-02-01", "2024-02-29"),  # a leap year
    # open ends
    ("What has happened since March?", "2026-03-01", "2026-12-04"),
    ("What has the union won since 2022?", "2022-01-01", "2026-12-04"),
    ("What happened before July 2024?", None, "2024-06-30"),
    ("What was true prior to 2020?", None, "2019-12-31"),
    ("Was it finished by May?", None, "2026-05-31"),
    ("What was built until 2021?", None, "2021-12-31"),
    ("What happened after 2020?", "2021-01-01", None),
    # ranges
    ("What happened between 2019 and 2021?", "2019-01-01", "2021-12-31"),
    ("What happened from January to March 2024?", "2024-01-01", "2024-03-31"),
    ("Who governed from 2010 to 2015?", "2010-01-01", "2015-12-31"),
    # relative to today
    ("Who won yesterday?", "2026-12-03", "2026-12-03"),
    ("What happened today?", "2026-12-04", "2026-12-04"),
    ("What did they say this week?", "2026-11-30", "2026-12-04"),
    ("What did they say last week?", "2026-11-23", "2026-11-29"),
    ("What happened this month?", "2026-12-01", "2026-12-04"),
    ("What happened last month?", "2026-11-01", "2026-11-30"),
    ("What did the company report last year?", "2025-01-01", "2025-12-31"),
    ("What happened this year?", "2026-01-01", "2026-12-04"),
    ("What happened in the past 2 years?", "2024-12-02", "2026-12-04"),
    ("What happened in the last three days?", "2026-12-01", "2026-12-04"),
    ("Which firms joined 3 weeks ago?", "2026-11-10", "2026-11-16"),
    ("Who resigned a month ago?", "2026-10-20", "2026-11-19"),
])
def test_time_words_become_a_date_range(question, date_from, date_to):
    frame = read_time(question, TODAY)
    assert (frame.date_from, frame.date_to) == (date_from, date_to)
    assert frame.phrase and frame.phrase in question


@pytest.mark.parametrize("question", [
    "May I ask who won the vote?",  # "May", the verb
    "What may happen to the alliances?",
    "Who led the March on Washington?",  # "March", the noun
    "Where did the march end?",
    "Who won the 2022 World Cup?",  # a year as a name
    "How many of the 2000 workers struck?",  # a number
    "What did 300 firms sign in Beijing?",
    "What happened before the election?",  # an event is not a date
    "Who formed the Model-Chip Ecosystem Innovation Alliance?",
    "What happened on February 30, 2024?",  # no such day
    "What is the best way to train for a marathon?",
])
def test_what_is_not_a_date_gives_no_range(question):
    assert not read_time(question, TODAY).bounded


def test_the_latest_is_a_wish_for_new_articles_not_a_range():
    frame = read_time("What is the latest on the strike?", TODAY)
    assert frame.recent and not frame.bounded
    assert frame.label == "the newest articles first"
    assert not read_time("Who formed the alliance?", TODAY).recent


@pytest.mark.parametrize("question, label", [
    ("What did the Fed do in 2023?", "articles from 2023"),
    ("What happened in March 2024?", "articles from March 2024"),
    ("What happened on 28 July 2025?", "articles from 28 July 2025"),
    ("What happened between 2019 and 2021?", "articles from 2019 to 2021"),
    ("What happened after 2020?", "articles from 1 January 2021 on"),
    ("What happened before July 2024?", "articles up to 30 June 2024"),
])
def test_the_quote_card_says_how_the_question_was_read(question, label):
    assert read_time(question, TODAY).label == label


def test_a_month_without_a_year_is_the_latest_one_up_to_today():
    assert read_time("What happened in July?", date(2026, 3, 1)).date_from == "2025-07-01"
    assert read_time("What happened in July?", date(2026, 8, 1)).date_from == "2026-07-01"

"""Defect 8 (the logic): failed logins are throttled per client address."""
from __future__ import annotations

import pytest

from qa.serve.throttle import LoginThrottle


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


def test_a_few_mistakes_cost_nothing_then_the_wait_doubles(clock):
    throttle = LoginThrottle(free=3, base=1.0, cap=60.0, clock=clock)
    for _ in range(3):
        assert throttle.retry_after("10.0.0.1") == 0
        throttle.failed("10.0.0.1")
    waits = []
    for _ in range(8):
        assert throttle.retry_after("10.0.0.1") == 0
        throttle.failed("10.0.0.1")
        waits.append(throttle.retry_after("10.0.0.1"))
        clock.now += waits[-1]
    assert waits == [1, 2, 4, 8, 16, 32, 60, 60]


def test_addresses_are_counted_apart_and_success_forgets(clock):
    throttle = LoginThrottle(free=1, clock=clock)
    throttle.failed("a")
    throttle.failed("a")
    assert throttle.retry_after("a") > 0 and throttle.retry_after("b") == 0
    clock.now += 1000
    throttle.succeeded("a")
    throttle.failed("a")
    assert throttle.retry_after("a") == 0  # the count started again


def test_failures_are_forgotten_after_a_quiet_while(clock):
    throttle = LoginThrottle(free=2, forget=600, clock=clock)
    for _ in range(5):
        throttle.failed("a")
        clock.now += throttle.retry_after("a")
    clock.now += 601
    throttle.failed("a")
    assert throttle.retry_after("a") == 0


def test_three_hundred_guesses_get_a_handful_of_tries(clock):
    """The review's attack: 300 wrong passwords in 0.4 s. Now only the free ones are
    checked; the rest are refused without looking at the password."""
    throttle = LoginThrottle(clock=clock)
    checked = 0
    for _ in range(300):
        clock.now += 0.4 / 300
        if throttle.retry_after("attacker") == 0:
            checked += 1
            throttle.failed("attacker")
    assert checked == throttle.free + 1


def test_memory_is_bounded(clock):
    throttle = LoginThrottle(max_clients=100, clock=clock)
    for i in range(1000):
        throttle.failed(f"10.0.{i // 256}.{i % 256}")
    assert len(throttle) <= 100

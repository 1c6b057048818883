import random

import pytest

from zetl.errors import ConfigError
from zetl_generator.mix import DEFAULT_WEIGHTS, EventKind, Mix
from zetl_generator.pacing import MAX_BACKLOG_S, Pacer


def test_mix_overrides_only_the_named_kinds() -> None:
    mix = Mix.parse("purchase=0, refund=7")
    assert EventKind.PURCHASE not in mix.kinds
    weights = dict(zip(mix.kinds, mix.weights, strict=True))
    assert weights[EventKind.REFUND] == 7
    assert weights[EventKind.SIGNUP] == DEFAULT_WEIGHTS[EventKind.SIGNUP]


@pytest.mark.parametrize("text", ["bogus=1", "purchase", "purchase=x", "refund=-1"])
def test_bad_mix_is_a_config_error_naming_the_item(text: str) -> None:
    with pytest.raises(ConfigError, match="mix"):
        Mix.parse(text)


def test_all_zero_mix_is_rejected() -> None:
    with pytest.raises(ConfigError, match="weight of 0"):
        Mix.parse(",".join(f"{kind.value}=0" for kind in EventKind))


def test_mix_is_reproducible_from_the_seed() -> None:
    mix = Mix.parse(None)
    first = [mix.next_kind(random.Random(9)) for _ in range(5)]
    assert first == [mix.next_kind(random.Random(9)) for _ in range(5)]


class FakeTime:
    def __init__(self) -> None:
        self.now = 100.0
        self.slept = 0.0

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept += seconds
        self.now += seconds


def test_pacer_spaces_calls_at_the_rate() -> None:
    time = FakeTime()
    pacer = Pacer(rate=50, clock=time.clock, sleep=time.sleep)
    for _ in range(100):
        pacer.wait()
    assert time.now - 100.0 == pytest.approx(99 / 50)


def test_pacer_forgets_a_backlog_instead_of_bursting() -> None:
    time = FakeTime()
    pacer = Pacer(rate=10, clock=time.clock, sleep=time.sleep)
    pacer.wait()
    time.now += MAX_BACKLOG_S + 5  # the database was down
    pacer.wait()  # behind: no sleep, schedule restarts from now
    pacer.wait()
    assert time.slept == pytest.approx(0.1)


def test_no_rate_means_no_waiting() -> None:
    time = FakeTime()
    pacer = Pacer(rate=None, clock=time.clock, sleep=time.sleep)
    for _ in range(10):
        pacer.wait()
    assert time.slept == 0

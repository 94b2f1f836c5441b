"""Login throttling (the unit): slowed after `free` failures, locked after `lock_after`, the same
for a username that exists and one that does not (the throttle never asks the store)."""

from __future__ import annotations

from callscreen.web.throttle import Limits, Throttle, ThrottleConfig


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


CONFIG = ThrottleConfig(
    user=Limits(free=3, lock_after=6),
    address=Limits(free=10, lock_after=20),
    window=600,
    lock_for=300,
    base_delay=0.5,
    max_delay=2.0,
)


def fail(t: Throttle, user: str, addr: str | None, n: int) -> list[tuple[float, float]]:
    out = []
    for _ in range(n):
        v = t.begin(user, addr)
        out.append((v.delay, v.locked_for))
    return out


def test_free_then_slowed_doubling_to_the_cap_then_locked() -> None:
    t = Throttle(CONFIG, Clock())
    got = fail(t, "alice", "10.0.0.1", 7)
    assert got == [(0, 0), (0, 0), (0, 0), (0.5, 0), (1.0, 0), (2.0, 0), (0, 300)]


def test_locked_even_for_the_right_password_until_the_lock_ends() -> None:
    clock = Clock()
    t = Throttle(CONFIG, clock)
    fail(t, "alice", "10.0.0.1", 7)
    clock.now += 299
    assert t.begin("alice", "10.0.0.2").locked_for == 1
    clock.now += 2
    v = t.begin("alice", "10.0.0.2")
    assert (v.delay, v.locked_for) == (0, 0)


def test_unknown_and_known_usernames_are_treated_alike() -> None:
    # The throttle has no idea which users exist: same verdicts, step by step.
    a = fail(Throttle(CONFIG, Clock()), "alice", "10.0.0.1", 8)
    b = fail(Throttle(CONFIG, Clock()), "no-such-user", "10.0.0.1", 8)
    assert a == b


def test_username_case_does_not_give_fresh_attempts() -> None:
    t = Throttle(CONFIG, Clock())
    fail(t, "alice", None, 3)
    assert t.begin("ALICE", None).delay == 0.5


def test_success_clears_the_username_but_not_the_address() -> None:
    t = Throttle(CONFIG, Clock())
    fail(t, "victim", "10.0.0.9", 5)
    t.begin("attacker", "10.0.0.9")
    t.succeeded("attacker", "10.0.0.9")  # their own account: takes back only that attempt
    t.succeeded("victim", "10.0.0.9")
    assert t.begin("victim", "10.0.0.9").delay == 0
    # The address keeps its earlier failures (5 for victim, the victim success took one back).
    rec = t._records[("addr", "10.0.0.9")]
    assert len(rec.failures) == 5


def test_one_address_guessing_many_usernames_is_locked() -> None:
    t = Throttle(CONFIG, Clock())
    verdicts = [t.begin(f"user{i}", "10.0.0.7") for i in range(21)]
    assert [v.locked_for > 0 for v in verdicts].index(True) == 20
    assert verdicts[15].delay > 0  # slowed past `free` although each username is fresh
    assert t.begin("someone-else", "10.0.0.8").delay == 0  # another address is not affected


def test_failures_age_out_of_the_window() -> None:
    clock = Clock()
    t = Throttle(CONFIG, clock)
    fail(t, "alice", None, 5)
    clock.now += 601
    assert t.begin("alice", None).delay == 0


def test_memory_is_bounded() -> None:
    t = Throttle(ThrottleConfig(max_keys=100), Clock())
    for i in range(1000):
        t.begin(f"user{i}", f"10.0.{i // 256}.{i % 256}")
    assert len(t) == 100

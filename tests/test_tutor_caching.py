"""The per-process TTL cache: one thread reloads an expired value while the others go on with the last one."""

import threading
import time

from tutor.caching import TTLCache


def test_an_expired_value_is_served_while_one_thread_reloads_it():
    calls = []
    release = threading.Event()

    def load() -> int:
        calls.append(1)
        if len(calls) == 2:  # the reload blocks until the test lets it finish
            release.wait(5)
        return len(calls)

    cache = TTLCache(load, ttl=0.01)
    assert cache.get() == 1
    time.sleep(0.02)
    reloader = threading.Thread(target=cache.get)
    reloader.start()
    while len(calls) < 2:
        time.sleep(0.001)
    t0 = time.perf_counter()
    assert cache.get() == 1  # the last value, at once, while the reload is under way
    assert time.perf_counter() - t0 < 0.5
    release.set()
    reloader.join(5)
    assert cache.get() == 2 and len(calls) == 2


def test_after_clear_every_caller_waits_for_the_fresh_value():
    n = [0]

    def load() -> int:
        n[0] += 1
        time.sleep(0.05)
        return n[0]

    cache = TTLCache(load, ttl=60)
    assert cache.get() == 1
    cache.clear()
    got: list[int] = []
    threads = [threading.Thread(target=lambda: got.append(cache.get())) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(5)
    assert got == [2, 2, 2, 2] and n[0] == 2  # nobody saw the cleared value, one load

"""Timing helper shared by the Python benchmark scripts in bench/."""
import time


def median_seconds(fn, reps=10, warmup=1):
    """Median wall time of `reps` calls of fn, after `warmup` untimed calls."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    times.sort()
    return times[len(times) // 2]

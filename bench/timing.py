"""Timing shared by the bench scripts (imported as `timing`: a script's folder is on sys.path)."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable


def per_call_s(fn: Callable[[], object], rounds: int, repeats: int = 5) -> float:
    """Median over `repeats` of the mean time of one call, in seconds (one warm-up call)."""
    fn()
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(rounds):
            fn()
        samples.append((time.perf_counter() - start) / rounds)
    return statistics.median(samples)

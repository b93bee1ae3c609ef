"""How many threads torch may use: the cores that are actually free, not the core count.

Beside other work on the same cores, more threads than free cores make every thread wait for the
others at each parallel region: on 2 shared cores, 5 LeNet epochs took 17.5-26 s at 2 threads against
0.5-0.6 s at 1 thread (issue #12). So the default (`auto`) is the cores this process may run on
minus the 1-minute load average of the machine, taken before the work starts, at least 1.
"""

from __future__ import annotations

import os

import torch


def usable_cores() -> int:
    """The cores this process may run on (its CPU affinity, else the core count)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not on Linux
        return os.cpu_count() or 1


def free_cores(cores: int | None = None, load: float | None = None) -> int:
    """Cores not taken by other work: `cores` (default `usable_cores()`) minus the 1-minute load
    average `load` (default `os.getloadavg()`), rounded, at least 1 and at most `cores`."""
    cores = usable_cores() if cores is None else cores
    if load is None:
        try:
            load = os.getloadavg()[0]
        except OSError:
            load = 0.0
    return max(1, min(cores, round(cores - load)))


def parse_threads(value: str | int) -> int | None:
    """A thread count from the command line: a positive integer, or `auto` (None: `free_cores()`).
    Raises ValueError naming the allowed values."""
    if isinstance(value, int) or str(value).strip().isdigit():
        if int(value) >= 1:
            return int(value)
    elif str(value).strip() == "auto":
        return None
    raise ValueError(f"threads: expected 'auto' or a positive integer (got {value!r})")


def use_threads(threads: int | None = None, most: int | None = None) -> int:
    """Set torch's intra-op threads to `threads` (None: `free_cores()`), at most `most`; returns the count."""
    count = free_cores() if threads is None else threads
    if most is not None:
        count = min(count, most)
    count = max(1, count)
    torch.set_num_threads(count)
    return count

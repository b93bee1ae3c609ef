"""The one home of seed hashing: run seeds, epochs and Monte Carlo draws -> well-mixed seeds."""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import torch


def derive_seed(*parts: int) -> int:
    """A well-mixed 63-bit seed from several integers (e.g. run seed and epoch)."""
    return int(np.random.SeedSequence([int(p) & 0xFFFFFFFF for p in parts]).generate_state(2, np.uint64)[0] >> 1)


@lru_cache(maxsize=4096)  # every scale and every evaluation asks for the same few (seed, k): hash once
def draw_seed(seed: int, k: int) -> int:
    """The seed of draw `k` of an evaluation with seed `seed` (both >= 0): `derive_seed(seed, k)`."""
    if seed < 0 or k < 0:
        raise ValueError(f"seed and draw index must be >= 0 (got seed={seed}, k={k})")
    return derive_seed(seed, k)


def draw_generator(seed: int, k: int, device: torch.device | str = "cpu") -> torch.Generator:
    """Common random numbers: the generator of draw k, the same for every scale, model and method."""
    return torch.Generator(device=device).manual_seed(draw_seed(seed, k))

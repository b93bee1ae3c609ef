"""CorrectNet's placement agent: REINFORCE over subsets of candidate layers.

The policy is a product of Bernoullis, pi(a) = prod_i p_i^a_i (1 - p_i)^(1 - a_i), p = sigmoid(theta),
theta = 0 at the start (every subset equally likely). Each episode samples a placement a, gets its
reward R(a), and ascends the policy gradient with a baseline:

    theta <- theta + lr * (R - b) / s * (a - p)        (d log pi(a) / d theta = a - p)

b is an exponential moving average of past rewards and s their running standard deviation, so lr
does not depend on the reward's scale (accuracy points vs per-parameter costs).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch

Placement = tuple[bool, ...]


@dataclass
class SearchResult:
    """What the agent did: every episode's placement and reward, the final policy, the best placement."""

    candidates: list[str]
    choices: list[Placement] = field(default_factory=list)
    rewards: list[float] = field(default_factory=list)
    probabilities: list[float] = field(default_factory=list)  # final p_i per candidate

    @property
    def best(self) -> Placement:
        """The sampled placement with the highest reward (the first one on ties)."""
        return self.choices[max(range(len(self.rewards)), key=self.rewards.__getitem__)]

    def frequencies(self, last: int | None = None) -> list[float]:
        """How often each candidate was chosen (over the last `last` episodes, default all)."""
        chosen = self.choices[-last:] if last else self.choices
        return [sum(c[i] for c in chosen) / len(chosen) for i in range(len(self.candidates))]

    def names(self, placement: Placement) -> list[str]:
        return [c for c, chosen in zip(self.candidates, placement, strict=True) if chosen]


def reinforce(
    candidates: Sequence[str],
    reward: Callable[[Placement], float],
    episodes: int,
    lr: float = 0.5,
    baseline_decay: float = 0.8,
    seed: int = 0,
) -> SearchResult:
    """Search subsets of `candidates` for a high `reward` with `episodes` REINFORCE episodes."""
    if episodes < 1:
        raise ValueError(f"episodes must be >= 1, got {episodes}")
    generator = torch.Generator().manual_seed(seed)
    theta = torch.zeros(len(candidates), dtype=torch.float64)
    result = SearchResult(list(candidates))
    mean, var = 0.0, 0.0
    for episode in range(episodes):
        p = torch.sigmoid(theta)  # (n,)
        action = torch.rand(len(candidates), generator=generator, dtype=torch.float64) < p  # (n,)
        placement: Placement = tuple(bool(a) for a in action)
        r = reward(placement)
        result.choices.append(placement)
        result.rewards.append(r)
        if episode == 0:
            mean = r
            continue
        advantage = (r - mean) / (math.sqrt(var) + 1e-8) if var > 0 else 0.0
        theta += lr * advantage * (action.double() - p)
        delta = r - mean  # exponential moving mean and variance of the rewards
        mean += (1 - baseline_decay) * delta
        var = baseline_decay * (var + (1 - baseline_decay) * delta * delta)
    result.probabilities = torch.sigmoid(theta).tolist()
    return result

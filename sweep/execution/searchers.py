"""Ray Tune search algorithms of a sweep: a fixed list (grid) or Optuna (TPE / NSGA-II, one study per
method, `sweep/execution/studies.py`), each wrapped in `SeedRepeater`, which runs every hyperparameter draw once
per seed and names the trials."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from ray.tune.search import Searcher

from sweep.config import GROUP, TRIAL_KEY, SearchSpace


class ListSearcher(Searcher):
    """Hands out a precomputed list of configs in order (the grid search)."""

    def __init__(self, configs: list[dict[str, Any]]) -> None:
        super().__init__(metric=None, mode=None)
        self.configs = configs
        self.next = 0

    def suggest(self, trial_id: str) -> dict[str, Any] | str | None:
        if self.next >= len(self.configs):
            return Searcher.FINISHED
        self.next += 1
        return dict(self.configs[self.next - 1])

    def on_trial_complete(self, trial_id: str, result: dict | None = None, error: bool = False) -> None:
        pass

    def set_search_properties(self, metric: str | None, mode: str | None, config: dict, **spec: Any) -> bool:
        return True

    def save(self, checkpoint_path: str) -> None:
        """JSON, never pickle: the storage path may be a shared bucket others can write to."""
        Path(checkpoint_path).write_text(json.dumps({"configs": self.configs, "next": self.next}))

    def restore(self, checkpoint_path: str) -> None:
        state = json.loads(Path(checkpoint_path).read_text())
        self.configs, self.next = list(state["configs"]), int(state["next"])


class SeedRepeater(Searcher):
    """Runs each config of `searcher` once per seed; tells `searcher` the mean of each metric over
    the seeds once all of them ended (ASHA-stopped or failed seeds leave a metric out).

    Unlike ray.tune.search.Repeater it takes several metrics (multi-objective) and sets the seed
    and the trial key itself. Its own `metric` stays None: Ray's
    check that every result holds the search metric would reject the per-epoch reports.
    """

    def __init__(
        self, searcher: Searcher, seeds: list[int] | None, metrics: list[str],
        done: dict[str, dict[str, Any]] | None = None,
    ) -> None:  # fmt: skip
        super().__init__(metric=None, mode=None)
        self.searcher = searcher
        self.seeds = seeds
        self.metrics = metrics
        self.done = dict(done or {})
        """Trial key -> last result of the trials that ended before a `--resume`: their turn is taken
        (their results count for their group) without running them again."""
        self.current: dict[str, Any] | None = None  # the group being handed out
        self.groups: dict[str, dict[str, Any]] = {}  # trial id -> its group

    def suggest(self, trial_id: str) -> dict[str, Any] | str | None:
        repeats = len(self.seeds or [None])
        while True:
            if self.current is None or len(self.current["trials"]) == repeats:
                config = self.searcher.suggest(trial_id)
                if config is None or config == Searcher.FINISHED:
                    return config
                self.current = {"primary": trial_id, "config": config, "trials": {}}
            group = self.current
            seed = None if self.seeds is None else self.seeds[len(group["trials"])]
            key = SearchSpace.trial_key(group["config"][GROUP], seed)
            if key in self.done:  # ended before the resume
                group["trials"][key] = None
                self.groups[key] = group
                self.on_trial_complete(key, self.done.pop(key))
                continue
            group["trials"][trial_id] = None
            self.groups[trial_id] = group
            config = {k: v for k, v in group["config"].items() if k != GROUP}
            if seed is not None:
                config["seed"] = seed
            config[TRIAL_KEY] = key
            return config

    def on_trial_complete(self, trial_id: str, result: dict | None = None, error: bool = False) -> None:
        group = self.groups.get(trial_id)
        if group is None:
            return
        group["trials"][trial_id] = {m: (result or {}).get(m, math.nan) for m in self.metrics}
        outcomes = list(group["trials"].values())
        if len(outcomes) < len(self.seeds or [None]) or any(o is None for o in outcomes):
            return
        means = {}
        for m in self.metrics:
            values = [o[m] for o in outcomes if isinstance(o[m], (int, float)) and not math.isnan(o[m])]
            if values:
                means[m] = sum(values) / len(values)
        complete = len(means) == len(self.metrics)
        self.searcher.on_trial_complete(group["primary"], result=means if complete else None, error=not means)

    def set_search_properties(self, metric: str | None, mode: str | None, config: dict, **spec: Any) -> bool:
        return True

    def set_max_concurrency(self, max_concurrent: int) -> bool:
        return False

    def get_state(self) -> dict[str, Any]:
        """Saved with the experiment; Ray saves the wrapped searcher itself."""
        return {k: v for k, v in self.__dict__.items() if k != "searcher"}

    def set_state(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)


def build_search(
    space: SearchSpace, metrics: list[str], done: dict[str, dict[str, Any]] | None = None,
    recorded: dict[int, dict[str, Any]] | None = None,
) -> SeedRepeater:  # fmt: skip
    """The search algorithm of a sweep: grid list or one Optuna study per method, repeated over the seeds.
    A resumed sweep passes the trials that `done` (key -> last result) and the configurations its
    groups were `recorded` with (group -> trial config): the search hands them out again in order."""
    from sweep.execution.studies import MethodStudies

    if space.algorithm == "grid":
        inner: Searcher = ListSearcher(space.grid_configs())
    else:
        inner = MethodStudies(space, metrics, recorded)
    return SeedRepeater(inner, space.seeds, metrics, done)

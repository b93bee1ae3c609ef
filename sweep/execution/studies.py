"""Optuna search with one study per method: a method's TPE (or NSGA-II) model learns only from that
method's own trials, so one method's conditional space never steers another's suggestions.

The searcher hands out the sweep's draws (`SearchSpace.draws`: each grid point and its number of
configurations) round-robin over the methods; a point with random domains asks its method's study
for their values (define-by-run, under the trial config keys), a point without any is handed out
as it is. Its state is JSON (the storage path may be shared): on restore every study is rebuilt
from the finished trials it was told about.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ray.tune.search import Searcher

from sweep.config import GROUP, SearchSpace


def interleaved(space: SearchSpace) -> list[dict[str, Any]]:
    """The draws' points, one entry per configuration, taking turns between the methods."""
    queues: dict[str, list[dict[str, Any]]] = {}
    for point, count in space.draws():
        queues.setdefault(point.get("method.name", space.base_method), []).extend([point] * count)
    order = []
    while any(queues.values()):
        for queue in queues.values():
            if queue:
                order.append(queue.pop(0))
    return order


class MethodStudies(Searcher):
    """One Optuna study per method (see the module docstring); `metrics` are maximized."""

    def __init__(self, space: SearchSpace, metrics: list[str], recorded: dict[int, dict[str, Any]] | None = None):
        super().__init__(metric=None, mode=None)
        self.space = space
        self.metrics = metrics
        self.recorded = dict(recorded or {})
        """Group -> its trial config, for the groups a resumed sweep ran before: their values again."""
        self.schedule = interleaved(space)
        self.next = 0
        self.told: dict[str, list[dict[str, Any]]] = {}  # method -> finished trials (params, values, state)
        self.pending: dict[str, dict[str, Any]] = {}  # Ray trial id -> {method, number, params, distributions}
        self._studies: dict[str, Any] = {}
        self._asked: dict[str, Any] = {}  # Ray trial id -> live optuna trial

    def study(self, method: str) -> Any:
        import optuna

        if method not in self._studies:
            optuna.logging.set_verbosity(optuna.logging.WARNING)
            study = optuna.create_study(directions=["maximize"] * len(self.metrics), sampler=self.sampler(method))
            for record in self.told.get(method, []):
                study.add_trial(self._frozen(record))
            self._studies[method] = study
        return self._studies[method]

    def sampler(self, method: str) -> Any:
        """A sampler seeded by (search seed, method, suggestions so far): a restored search, whose studies
        are rebuilt from their trials, suggests what the uninterrupted one would have."""
        import optuna

        n = self.space.budgets().get(method, 1)
        asked = len(self.told.get(method, [])) + sum(p["method"] == method for p in self.pending.values())
        seed = (self.space.seed * 1000 + self.space.methods().index(method)) * 100_003 + asked
        if len(self.metrics) > 1:
            return optuna.samplers.NSGAIISampler(population_size=max(2, min(50, n // 2)), seed=seed)
        return optuna.samplers.TPESampler(n_startup_trials=max(2, min(10, n // 3)), seed=seed)

    @staticmethod
    def _frozen(record: dict[str, Any]) -> Any:
        import optuna

        distributions = {k: optuna.distributions.json_to_distribution(v) for k, v in record["distributions"].items()}
        state = optuna.trial.TrialState[record["state"]]
        values = record["values"] if state == optuna.trial.TrialState.COMPLETE else None
        return optuna.trial.create_trial(
            params=record["params"], distributions=distributions, values=values, state=state
        )

    def suggest(self, trial_id: str) -> dict[str, Any] | str | None:
        import optuna

        if self.next >= len(self.schedule):
            return Searcher.FINISHED
        point = self.schedule[self.next]
        config = {**point, GROUP: self.next}
        known = self.recorded.pop(self.next, {})
        self.next += 1
        domains = self.space.random_domains(point)
        if domains:
            method = point.get("method.name", self.space.base_method)
            study = self.study(method)
            study.sampler = self.sampler(method)
            if all(key in known for key in domains):
                study.enqueue_trial({key: known[key] for key in domains})
            trial = study.ask()
            for key, domain in domains.items():
                config[key] = domain.suggest(trial, key)
            self._asked[trial_id] = trial
            self.pending[trial_id] = {
                "method": method,
                "params": dict(trial.params),
                "distributions": {
                    k: optuna.distributions.distribution_to_json(d) for k, d in trial.distributions.items()
                },
            }
        return config

    def on_trial_complete(self, trial_id: str, result: dict | None = None, error: bool = False) -> None:
        import optuna

        record = self.pending.pop(trial_id, None)
        if record is None:
            return
        values = [float((result or {}).get(m, float("nan"))) for m in self.metrics]
        ok = not error and result is not None and all(v == v for v in values)
        record = {**record, "values": values if ok else None, "state": "COMPLETE" if ok else "FAIL"}
        self.told.setdefault(record["method"], []).append(record)
        trial = self._asked.pop(trial_id, None)
        study = self.study(record["method"])
        if trial is not None:
            study.tell(trial, values if ok else None, state=None if ok else optuna.trial.TrialState.FAIL)
        else:  # asked before a restore: the new study never saw it
            study.add_trial(self._frozen(record))

    def set_search_properties(self, metric: str | None, mode: str | None, config: dict, **spec: Any) -> bool:
        return True

    def save(self, checkpoint_path: str) -> None:
        state = {"next": self.next, "told": self.told, "pending": self.pending, "recorded": self.recorded}
        Path(checkpoint_path).write_text(json.dumps(state))

    def restore(self, checkpoint_path: str) -> None:
        state = json.loads(Path(checkpoint_path).read_text())
        self.next, self.told, self.pending = int(state["next"]), state["told"], state["pending"]
        self.recorded = {int(group): config for group, config in state.get("recorded", {}).items()}
        self._studies, self._asked = {}, {}

"""The sweep's progress for a person: one live panel (trials done / running / failed, elapsed, time
left, best so far) on a terminal, a plain line at every tenth of the trials when piped."""

from __future__ import annotations

import time
from typing import Any

from ray.tune import Callback

from sweep.config import TRIAL_KEY, knob_text, overrides


def clock(seconds: float) -> str:
    seconds = int(max(0.0, seconds))
    hours, rest = divmod(seconds, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60}:{rest % 60:02d}"


class Progress(Callback):
    """Ray Tune callback drawing the progress of `total` trials selected on `metric` (maximized)."""

    def __init__(self, total: int, metric: str, max_epochs: int, console: Any) -> None:
        self.total, self.metric, self.max_epochs, self.console = total, metric, max(1, max_epochs), console
        self.start = time.monotonic()
        self.trials: list[Any] = []
        self.live: Any = None
        self.printed = 0  # tenths of the trials announced (piped output)

    def __getstate__(self) -> dict[str, Any]:  # pickled into the experiment: no console, no live display
        return {**self.__dict__, "console": None, "live": None, "trials": []}

    def setup(self, **info: Any) -> None:
        self.start = time.monotonic()
        if self.console is None:  # restored from the experiment's pickle (`sweep run --resume`)
            from rich.console import Console

            self.console = Console()
        if self.console is not None and self.console.is_terminal:
            from rich.live import Live

            self.live = Live(get_renderable=self.render, console=self.console, refresh_per_second=2, transient=False)
            self.live.start()

    def on_step_begin(self, iteration: int, trials: list, **info: Any) -> None:
        self.trials = trials
        if self.live is None and self.console is not None:
            tenths = 10 * self.counts()["done"] // max(1, self.total)
            if tenths > self.printed:
                self.printed = tenths
                self.console.print(self.line(), highlight=False)

    def on_experiment_end(self, trials: list, **info: Any) -> None:
        self.trials = trials
        if self.live is not None:
            self.live.stop()
            self.live = None
        elif self.console is not None and self.printed < 10:
            self.console.print(self.line(), highlight=False)

    # ------------------------------------------------------------------------------ what is shown

    def counts(self) -> dict[str, int]:
        status = [t.status for t in self.trials]
        failed = status.count("ERROR")
        done = status.count("TERMINATED") + failed
        return {"done": done, "failed": failed, "running": status.count("RUNNING")}

    def fraction(self) -> float:
        """Trials done, plus the epochs of the running ones, over all trials."""
        done = self.counts()["done"]
        running = sum(
            min(1.0, (t.last_result or {}).get("epoch", 0) / self.max_epochs)
            for t in self.trials
            if t.status == "RUNNING"
        )
        return (done + running) / max(1, self.total)

    def best(self) -> tuple[float, Any] | None:
        scored = [
            (t.last_result[self.metric], t)
            for t in self.trials
            if t.status == "TERMINATED" and (t.last_result or {}).get("final") and self.metric in t.last_result
        ]
        return max(scored, key=lambda pair: pair[0]) if scored else None

    def line(self) -> str:
        c = self.counts()
        elapsed = time.monotonic() - self.start
        fraction = self.fraction()
        left = f"~{clock(elapsed * (1 - fraction) / fraction)} left" if fraction > 0 else "time left: after a trial"
        failed = f", {c['failed']} failed" if c["failed"] else ""
        return (
            f"{c['done']}/{self.total} trials done{failed}, {c['running']} running · {clock(elapsed)} elapsed, {left}"
        )

    def best_line(self) -> str:
        best = self.best()
        if best is None:
            return f"best {self.metric}: none finished yet"
        value, trial = best
        params = overrides(trial.config)
        knobs = knob_text({k: v for k, v in params.items() if k not in ("seed", "method.name")})
        what = ", ".join(
            x for x in (trial.config.get(TRIAL_KEY, trial.trial_id), params.get("method.name"), knobs) if x
        )
        return f"best {self.metric} so far: {value:.3f} ({what})"

    def render(self) -> Any:
        from rich.console import Group
        from rich.progress_bar import ProgressBar
        from rich.table import Table
        from rich.text import Text

        bar = Table.grid(padding=(0, 1))
        bar.add_column(no_wrap=True)
        bar.add_column(ratio=1)
        bar.add_row(ProgressBar(total=1.0, completed=self.fraction(), width=20), Text(self.line(), overflow="fold"))
        return Group(bar, Text(self.best_line(), overflow="fold"))

"""Parallel efficiency of `sweep run` on this machine, measured in one run:

    efficiency = sum of the trials' own compute time / (cores x wall time of Tuner.fit)

A trial's own compute time is what it spends inside the trainable (data, model, training, final
curve: `trial_seconds` of its last report); the rest of the cores x wall budget is overhead: Ray
starting worker processes and scheduling, per-epoch reports and checkpoints, the MLflow callback on
the driver, idle cores at the end. Each trial is LeNet on digits with the real trainable, the real
MLflow callback (SQLite store in a temporary folder) and `reuse_actors=True`; its length is set by
its number of epochs, calibrated here to `--seconds`, with `sweep.report_interval: 1` (epochs batched
into a report and checkpoint per second; `--report-interval 0` reports every epoch, ~10-20 ms each).
Also printed: Ray's start-up time and the overhead per trial in core-seconds.

Each sweep size runs separately (default 8 trials and 40, the main job's): every sweep starts one
worker process per core, and its start-up (Python, Ray, the actor, importing torch and Ray Tune:
`worker_cpu_before_seconds` of each worker's first trial) is paid once per sweep, so it weighs on a
sweep of 8 short trials and hardly on one of 40. `bound` is the efficiency with that start-up as the
only overhead (trials' CPU / (trials' CPU + start-up)): no per-trial saving gets above it.

Wall-clock efficiency needs quiet cores: beside other work the trials get a fraction of a core and
every figure drops. So the bench also counts CPU time, which other work does not inflate: the
core-seconds that this process and every process it started (Ray's daemons, the trial workers)
used during Tuner.fit, split into the trials' own CPU (`trial_cpu_seconds`), the rest of the
workers (actor start, imports, Ray's per-trial work), the driver (Tune's loop, the MLflow writer)
and Ray's daemons (raylet, GCS, agents); `cpu efficiency` = trials' CPU / all of it. The last line
is JSON with the headline figures.

    python bench/sweep_efficiency.py [--trials 8 40] [--seconds 2 10] [--cores 2] [--report-interval 1]
                                     [--markdown bench/results/sweep_efficiency.md]

Target (issue #12): efficiency >= 0.85 for 2-s trials and >= 0.95 for 10-s trials, on quiet cores.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

BASE = {
    "data": {"name": "digits"},
    "model": {"name": "lenet"},
    "method": {"name": "noise_injection"},
    "train": {"epochs": 1, "batch_size": 64, "val_noise_samples": 2},
    "noise": {"name": "additive", "sigma": 0.2},
    "eval": {"scales": [0.0, 0.1, 0.2, 0.3], "samples": 5},
}


def epoch_seconds(threads: int) -> float:
    """Seconds per epoch (training + per-epoch validation) of the bench trial in this process."""
    import torch

    from sweep.config import ExperimentConfig, validate
    from sweep.experiment import run_training
    from zoo import build_data

    torch.set_num_threads(threads)
    cfg = validate(ExperimentConfig, {**BASE, "train": {**BASE["train"], "epochs": 3}})
    data = build_data(cfg.data)
    times: list[float] = []
    run_training(cfg, data, report=lambda metrics, state: times.append(time.perf_counter()))
    return (times[-1] - times[0]) / (len(times) - 1)


TICK = os.sysconf("SC_CLK_TCK")


def process_tree_cpu(names: dict[int, str] | None = None) -> dict[int, tuple[str, float]]:
    """CPU seconds (user + system) of this process and all its descendants: pid -> (kind, seconds),
    kind one of driver, worker (Ray worker processes), ray (Ray's daemons), other. `names`: a cache of
    the workers' titles by pid (`ray::...`, set after start: other command lines are read every time)."""
    parents, cpu, names = {}, {}, {} if names is None else names
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        pid = int(entry)
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
            if "ray::" not in names.get(pid, ""):
                names[pid] = Path(f"/proc/{entry}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        fields = stat.rpartition(")")[2].split()
        parents[pid], cpu[pid] = int(fields[1]), (int(fields[11]) + int(fields[12])) / TICK
    tree, stack = {}, [os.getpid()]
    while stack:
        pid = stack.pop()
        command = names.get(pid, "")
        kind = "driver" if pid == os.getpid() else "worker" if "ray::" in command and "Agent" not in command else "ray"
        tree[pid] = (kind, cpu.get(pid, 0.0))
        stack += [child for child, parent in parents.items() if parent == pid]
    return tree


class CpuMeter:
    """Samples `process_tree_cpu` every `period` seconds in a thread while in the `with` block, so the
    trial workers that end inside it still count (up to their last sample); `used`: core-seconds per kind."""

    def __init__(self, period: float = 0.5) -> None:
        self.period, self.used, self.names = period, {}, {}
        self.own = 0.0  # CPU seconds of the sampling thread itself: the bench's cost, not the sweep's
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._sample, daemon=True)

    def __enter__(self) -> CpuMeter:
        self.before = process_tree_cpu(self.names)
        self.last = dict(self.before)
        self.thread.start()
        return self

    def _sample(self) -> None:
        while not self.stop.wait(self.period):
            self._update()
        self.own = time.thread_time()

    def _update(self) -> None:
        for pid, (kind, seconds) in process_tree_cpu(self.names).items():
            known = self.last.get(pid, (kind, 0.0))[0]  # a dying worker loses its name: keep the first kind
            self.last[pid] = (known if known != "ray" else kind, seconds)

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join()
        self._update()
        for pid, (kind, seconds) in self.last.items():
            self.used[kind] = self.used.get(kind, 0.0) + seconds - self.before.get(pid, (kind, 0.0))[1]
        self.used["driver"] = self.used.get("driver", 0.0) - self.own


def measure(
    trials: int, seconds: float, cores: int, per_epoch: float, folder: Path, report_interval: float
) -> dict[str, float]:
    from sweep.config import build_sweep
    from sweep.execution import run_sweep

    epochs = max(1, round(seconds / per_epoch))
    name = f"bench-{trials}x{seconds:g}s-{report_interval:g}"
    section = {
        "name": name,
        "report_interval": report_interval,
        "grid": {"seed": list(range(trials))},
        "resources": {"cpus_per_trial": 1},
        "storage_path": str(folder / "runs"),
        "tracking": {"uri": f"sqlite:///{folder / 'mlflow.db'}", "experiment": "bench"},
    }
    cfg = build_sweep({**BASE, "train": {**BASE["train"], "epochs": epochs}}, section, name)
    with CpuMeter() as meter:
        outcome = run_sweep(cfg, verbose=0)
    used = meter.used
    assert all(r["status"] == "finished" for r in outcome.rows), [r["error"] for r in outcome.rows]
    # the trial's own compute: its time in the trainable minus the time it waited on its reports
    compute = sum(r["metrics"]["trial_seconds"] - r["metrics"]["report_seconds"] for r in outcome.rows)
    budget = cores * outcome.fit_seconds
    trial_cpu = sum(r["metrics"]["trial_cpu_seconds"] for r in outcome.rows)
    total_cpu = sum(used.values())
    # each worker's first trial found it with only its start-up spent (Python, Ray, the actor, imports)
    workers = min(trials, cores)
    startup = sorted(r["metrics"]["worker_cpu_before_seconds"] for r in outcome.rows)[:workers]
    return {
        "worker_startup": sum(startup) / workers,
        "startup_bound": trial_cpu / (trial_cpu + sum(startup)),
        "cpu_efficiency": trial_cpu / total_cpu,
        "cpu_per_trial": {
            "trial": trial_cpu / trials,
            "worker_rest": (used.get("worker", 0.0) - trial_cpu) / trials,
            "driver": used.get("driver", 0.0) / trials,
            "ray_daemons": used.get("ray", 0.0) / trials,
        },
        "epochs": epochs,
        "trial_mean": compute / trials,
        "wall": outcome.fit_seconds,
        "efficiency": compute / budget,
        "overhead_per_trial": (budget - compute) / trials,
    }


TARGETS = {2.0: 0.85, 10.0: 0.95}
"""Issue #12: parallel efficiency of 2-s and 10-s trials on 2 quiet cores."""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--trials", type=int, nargs="+", default=[8, 40],
        help="sweep sizes to measure (40: the main job's; the workers' start-up is paid once per sweep)",
    )  # fmt: skip
    parser.add_argument("--seconds", type=float, nargs="+", default=[2.0, 10.0], help="trial lengths to measure")
    parser.add_argument("--cores", type=int, default=min(2, os.cpu_count() or 1), help="CPUs given to Ray")
    parser.add_argument(
        "--report-interval", type=float, nargs="+", default=[1.0],
        help="sweep.report_interval values to measure (0: a report and a checkpoint every epoch)",
    )  # fmt: skip
    parser.add_argument("--markdown", type=Path, help="also write the table here (the README embeds it)")
    args = parser.parse_args()

    from sweep.execution import start_ray

    per_epoch = epoch_seconds(threads=1)
    start = time.perf_counter()
    start_ray(num_cpus=args.cores)
    startup = time.perf_counter() - start
    print(f"LeNet on digits, {args.cores} cores, 1 CPU per trial, reuse_actors=True")
    print(f"Ray start-up: {startup:.1f} s; one epoch in this process: {per_epoch * 1000:.0f} ms")
    print("eff: efficiency; bound: the efficiency if the workers' start-up were the only overhead")
    print(
        f"{'trials':>6} {'target':>6} {'report':>6} {'epochs':>6} {'trial s':>7} {'wall s':>7} {'eff':>5} "
        f"{'cpu eff':>7} {'bound':>5} {'start-up':>8}  core-s per trial: trial/worker rest/driver/ray"
    )
    figures: dict[str, dict[str, float]] = {}
    rows: list[tuple[int, float, str, dict]] = []
    with tempfile.TemporaryDirectory(prefix="sweep-bench-") as tmp:
        for trials in args.trials:
            for seconds in args.seconds:
                for interval in args.report_interval:
                    r = measure(trials, seconds, args.cores, per_epoch, Path(tmp), interval)
                    every = "epoch" if interval == 0 else f"{interval:g} s"
                    print(
                        f"{trials:>6} {seconds:>5g}s {every:>6} {r['epochs']:>6} {r['trial_mean']:>7.2f} "
                        f"{r['wall']:>7.1f} {r['efficiency']:>5.2f} {r['cpu_efficiency']:>7.2f} "
                        f"{r['startup_bound']:>5.2f} {r['worker_startup']:>6.2f} s  "
                        + "/".join(f"{v:.2f}" for v in r["cpu_per_trial"].values()),
                        flush=True,
                    )
                    rows.append((trials, seconds, every, r))
                    keys = ("efficiency", "cpu_efficiency", "startup_bound", "worker_startup", "overhead_per_trial")
                    figures[f"{trials}x{seconds:g}s/{every}"] = {k: round(r[k], 3) for k in keys + ("trial_mean",)}
    verdicts = [
        f"{key} {'met' if r['efficiency'] >= TARGETS[seconds] else 'not met'}"
        for key, (_, seconds, _, r) in zip(figures, rows, strict=True)
        if seconds in TARGETS
    ]
    print("targets (2-s >= 0.85, 10-s >= 0.95): " + ", ".join(verdicts))
    if args.markdown:
        args.markdown.write_text(markdown(rows))
    print(json.dumps({"sweep_efficiency": figures, "ray_startup_s": round(startup, 2), "load_average": load()}))


def markdown(rows: list[tuple[int, float, str, dict]]) -> str:
    """The measurements as a Markdown table (what `--markdown` writes)."""
    lines = [
        "| trials | trial length | report every | efficiency (target) | bound | start-up per worker "
        "| CPU per trial: trial / worker rest / driver / Ray |",
        "|---|---|---|---|---|---|---|",
    ]
    for trials, seconds, every, r in rows:
        target = f" ({TARGETS[seconds]:.2f})" if seconds in TARGETS else ""
        split = " / ".join(f"{v:.2f}" for v in r["cpu_per_trial"].values())
        lines.append(
            f"| {trials} | {seconds:g} s ({r['trial_mean']:.1f} s measured) | {every} | {r['efficiency']:.3f}{target} "
            f"| {r['startup_bound']:.2f} | {r['worker_startup']:.1f} core-s | {split} |"
        )
    return "\n".join(lines) + "\n"


def load() -> list[float]:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return []


if __name__ == "__main__":
    main()

"""Starting (or joining) Ray, and checking a sweep's resources against the cluster before any trial."""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator

import ray

from sweep.config import SweepConfig


class SweepError(Exception):
    """A problem found before any trial ran (bad resources, nothing to resume): one line, exit 2."""


def start_ray(address: str | None = None, num_cpus: int | None = None, quiet: bool = False) -> None:
    """Join `address` (or RAY_ADDRESS), else start a local Ray runtime on this machine's cores. `quiet`:
    no start-up warnings and no worker output on the driver (a trial's error still reaches its run)."""
    os.environ.setdefault("RAY_CHDIR_TO_TRIAL_DIR", "0")  # trials see the driver's working folder
    os.environ.setdefault("TUNE_GLOBAL_CHECKPOINT_S", "2")  # small window of lost work if the driver dies
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    os.environ.setdefault("TUNE_DISABLE_AUTO_CALLBACK_LOGGERS", "1")  # the sweep passes JSON + CSV, no TensorBoard
    # the snapshot that num_to_keep forces after a trial's checkpoints costs ~10 ms here: no warning
    os.environ.setdefault("TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S", "0")
    if ray.is_initialized():
        return
    address = address or os.environ.get("RAY_ADDRESS")
    level = logging.ERROR if quiet else logging.INFO
    if address:
        ray.init(address=address, log_to_driver=not quiet, logging_level=level)
    else:
        with loopback_only():
            ray.init(
                address="local", num_cpus=num_cpus or os.cpu_count(), include_dashboard=False,
                log_to_driver=not quiet, logging_level=level,
            )  # fmt: skip


@contextlib.contextmanager
def loopback_only() -> Iterator[None]:
    """A local Ray runtime started in this block listens on 127.0.0.1 only: gcs_server, raylet (node and
    object manager), dashboard and runtime-env agents, workers and the driver.

    Ray 2.60 binds its gRPC servers to 127.0.0.1 only when the node's IP is 127.0.0.1 (`GrpcServer`'s
    `listen_to_localhost_only`), else to every interface. `ray.init(_node_ip_address="127.0.0.1")` does not
    get there (`services.resolve_ip_for_localhost` turns it into the routable IP); the node IP is the loopback
    only where Ray thinks multi-node clusters are off, `RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0`
    (`ray_constants.ENABLE_RAY_CLUSTER`, read at import here, from the environment by the processes
    ray.init starts). Both are set back afterwards: a cluster started later in this process is unaffected."""
    from ray._private import ray_constants

    before = ray_constants.ENABLE_RAY_CLUSTER
    ray_constants.ENABLE_RAY_CLUSTER = False
    try:
        with environment({"RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0"}):
            yield
    finally:
        ray_constants.ENABLE_RAY_CLUSTER = before


def check_resources(cfg: SweepConfig) -> None:
    """A trial asking for more than any node has would wait forever: say so now."""
    r = cfg.section.resources
    nodes = [n["Resources"] for n in ray.nodes() if n.get("Alive")]
    most_cpus = max((n.get("CPU", 0) for n in nodes), default=0)
    most_gpus = max((n.get("GPU", 0) for n in nodes), default=0)
    if r.cpus_per_trial > most_cpus:
        raise SweepError(
            f"sweep.resources.cpus_per_trial={r.cpus_per_trial:g} but the largest Ray node has {most_cpus:g} CPUs"
        )
    if r.gpus_per_trial > most_gpus:
        raise SweepError(
            f"sweep.resources.gpus_per_trial={r.gpus_per_trial:g} but the largest Ray node has {most_gpus:g} GPUs"
        )


@contextlib.contextmanager
def environment(values: dict[str, str]) -> Iterator[None]:
    """Set environment variables for the duration of the block."""
    before = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in before.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value

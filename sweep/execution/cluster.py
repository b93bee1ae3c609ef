"""Running on a Ray cluster: shared storage, trials that start in parallel, nodes still to come.

Ray Tune (2.7+) no longer copies results between nodes: every trial writes its checkpoints and
results straight to `storage_path`, and the driver reads them from there. On a cluster of several
nodes that path must therefore be the same storage everywhere: a URI (s3://, gs://, ...) or a folder
on a file system that every node mounts (NFS, EFS, Lustre; or one machine's disk when every node
runs on that machine). A local folder is checked, not guessed: the driver writes a marker file into
it and a zero-CPU task on each alive node looks for it.

Ray Tune queues only ONE pending trial at a time for a custom searcher (TUNE_MAX_PENDING_TRIALS_PG
"auto"), so each trial's actor would start only after the previous one's had started: on a cluster
(or two cores) the trials trickle in. `prepare_cluster` lets as many trials queue as fit at once.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from urllib.parse import urlparse

from sweep.config import ConfigError, ResourcesConfig

PENDING_ENV = "TUNE_MAX_PENDING_TRIALS_PG"
_PENDING_FROM_USER = PENDING_ENV in os.environ  # the user's choice wins over ours

PROBE_TIMEOUT_S = 120.0
"""How long the storage probe waits for a task on every node (a fresh node starts a worker first)."""


def is_uri(storage_path: str) -> bool:
    """True for a remote storage URI (s3://, gs://, hdfs://, abfs://, ...); False for a local path
    or a file:// URI."""
    scheme = urlparse(storage_path).scheme
    return len(scheme) > 1 and scheme != "file"  # one letter: a Windows drive, "C:\\runs"


def local_path(storage_path: str) -> Path:
    """The absolute local folder of a path or file:// URI."""
    if storage_path.startswith("file://"):
        storage_path = urlparse(storage_path).path
    return Path(storage_path).expanduser().resolve()


def alive_nodes() -> list[dict]:
    """The alive nodes of the cluster this process is connected to (`ray.nodes()` entries)."""
    import ray

    return [node for node in ray.nodes() if node.get("Alive")]


def check_shared_storage(storage_path: str, n_nodes: int, probe: Callable[[Path], Sequence[str]] | None = None) -> None:
    """Raise a one-line ConfigError unless `storage_path` is usable by a cluster of `n_nodes` nodes.

    One node: any path. A remote URI: shared by construction. A local path on several nodes: shared
    when `probe(folder)` returns no node ids (the ids of the nodes that cannot see the folder);
    without a probe it is refused.
    """
    if n_nodes <= 1 or is_uri(storage_path):
        return
    allowed = (
        "a URI such as s3://BUCKET/runs or gs://BUCKET/runs, or a folder on a file system that every node "
        "mounts at the same path (NFS, EFS)"
    )
    if probe is None:
        raise ConfigError(
            f"sweep.storage_path: {storage_path!r} is a local folder, but the Ray cluster has {n_nodes} nodes; "
            f"use shared storage: {allowed}"
        )
    missing = list(probe(local_path(storage_path)))
    if missing:
        shown = ", ".join(node[:12] for node in missing[:3]) + (", ..." if len(missing) > 3 else "")
        raise ConfigError(
            f"sweep.storage_path: {storage_path!r} is not visible from {len(missing)} of the {n_nodes} Ray "
            f"nodes ({shown}); use shared storage: {allowed}"
        )


def nodes_missing(folder: Path, timeout_s: float = PROBE_TIMEOUT_S) -> list[str]:
    """The ids of the alive nodes that do not see a marker file written into `folder` by this process
    (or do not answer within `timeout_s`). Needs a connected Ray; runs one zero-CPU task per node."""
    import ray
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    folder.mkdir(parents=True, exist_ok=True)
    token = uuid.uuid4().hex
    marker = folder / f".noisesweep-shared-{token}"
    marker.write_text(token)

    def read(path: str) -> str | None:  # nested, so Ray ships it by value: nodes need not import sweep
        try:
            return Path(path).read_text()
        except OSError:
            return None

    reads = ray.remote(num_cpus=0, max_retries=0)(read)
    try:
        nodes = [node["NodeID"] for node in alive_nodes()]
        refs = {
            reads.options(scheduling_strategy=NodeAffinitySchedulingStrategy(node, soft=False)).remote(
                str(marker)
            ): node
            for node in nodes
        }
        ready, _ = ray.wait(list(refs), num_returns=len(refs), timeout=timeout_s)
        seen = set()
        for ref in ready:
            try:
                if ray.get(ref) == token:
                    seen.add(refs[ref])
            except ray.exceptions.RayError:  # the node died meanwhile: it cannot see the folder
                pass
        for ref in set(refs) - set(ready):
            ray.cancel(ref, force=True)
        return [node for node in nodes if node not in seen]
    finally:
        marker.unlink(missing_ok=True)


def ensure_shared_storage(storage_path: str) -> int:
    """After `ray.init`: the number of alive nodes; raises ConfigError (see `check_shared_storage`)
    when the cluster has several nodes and `storage_path` is not shared by all of them."""
    n_nodes = len(alive_nodes())
    check_shared_storage(storage_path, n_nodes, probe=nodes_missing)
    return n_nodes


def trial_slots(resources: ResourcesConfig, total: dict[str, float]) -> int:
    """How many trials fit at once into a cluster with `total` resources (`ray.cluster_resources()`),
    at least 1."""
    slots = int(total.get("CPU", 0) // resources.cpus_per_trial)
    if resources.gpus_per_trial > 0:
        slots = min(slots, int(total.get("GPU", 0) // resources.gpus_per_trial))
    if resources.max_concurrent is not None:
        slots = min(slots, resources.max_concurrent)
    return max(1, slots)


def may_autoscale() -> bool:
    """Whether the connected cluster runs Ray's autoscaler v2 (what `ray up` starts since Ray 2.50): it
    adds nodes of the types that waiting trials ask for, so resources missing now (cluster.yaml's GPU
    workers start at zero) are no error."""
    try:
        from ray.autoscaler.v2.utils import is_autoscaler_v2

        return bool(is_autoscaler_v2(fetch_from_server=True))
    except Exception:  # no GCS client (not connected) or an older Ray: assume a fixed cluster
        return False


def reuse_actors() -> bool:
    """Reuse trial actors on one node only. With reuse, a trial waiting for its actor takes any actor that
    frees up first and Ray removes the one still starting, so on a cluster the node that is up first runs
    every short trial while the other nodes start actors again and again (seen: 4 trials on 2 nodes all
    ran on the head). Fresh actors stay where Ray placed them, one per free slot, for ~3 core-seconds
    per trial (DESIGN.md), which cluster-sized trials do not notice."""
    import ray

    return not ray.is_initialized() or len(alive_nodes()) <= 1


def prepare_cluster(storage_path: str, resources: ResourcesConfig) -> int:
    """After `ray.init`, before the Tuner: refuse storage that the nodes do not share and let Tune queue
    as many trials as fit at once, or with an autoscaler `max_concurrent` of them (the autoscaler starts
    nodes for the trials that wait). A TUNE_MAX_PENDING_TRIALS_PG of the user wins. The number of alive
    nodes."""
    import ray

    n_nodes = ensure_shared_storage(storage_path)
    if not _PENDING_FROM_USER:
        pending = trial_slots(resources, ray.cluster_resources())
        if resources.max_concurrent is not None and may_autoscale():
            pending = resources.max_concurrent
        os.environ[PENDING_ENV] = str(pending)
    return n_nodes

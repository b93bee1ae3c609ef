"""A real two-node Ray cluster on one machine: a head and a second node started with `ray start` as
separate processes, an `mlflow server`, and `sweep run CONFIG --address auto` against them (the
command the README gives for a cluster's head node).

Isolation from other Ray users of this machine: every process gets its own RAY_TMPDIR (so `auto`
finds this cluster and no other ray.init() finds it), its own ports and its own auth token; each is
the leader of a new session, and teardown ends exactly those sessions (never `ray stop`, which ends
every Ray process of the user). Ray resolves `--node-ip-address 127.0.0.1` to this host's address.

Where a mount namespace can be had (root, or unprivileged user namespaces), the second node gets a
private tmpfs over one folder: storage that is not shared, which `sweep run` must refuse.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="session bookkeeping reads /proc")

ROOT = Path(__file__).resolve().parents[3]
BIN = Path(sys.executable).parent  # ray and mlflow of this environment
START_TIMEOUT_S = 120  # per step of the cluster start (the machine may be busy)
SWEEP_TIMEOUT_S = 300
STOP_GRACE_S = 15


HANDED_OUT: set[int] = set()


def free_port() -> int:
    """A free port not handed out before in this session: the OS may give a just-closed port again, and
    two components of one node on the same port stop it from starting (seen in CI once)."""
    while True:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port not in HANDED_OUT:
            HANDED_OUT.add(port)
            return port


def node_ports() -> list[str]:
    """Every port a node opens, chosen free (two nodes on one host must not share Ray's defaults)."""
    flags = ["--node-manager-port", "--object-manager-port", "--dashboard-agent-listen-port"]
    flags += ["--dashboard-agent-grpc-port", "--runtime-env-agent-port", "--metrics-export-port"]
    return [arg for flag in flags for arg in (flag, str(free_port()))] + ["--min-worker-port=0", "--max-worker-port=0"]


def session_members(sid: int) -> list[int]:
    """Live pids whose session id is `sid` (/proc/PID/stat: after `(comm)` come state ppid pgrp session)."""
    pids = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue  # the process ended meanwhile
        if int(fields[3]) == sid and fields[0] != "Z":  # a zombie only waits for its parent to reap it
            pids.append(int(stat.parent.name))
    return pids


class Started:
    """Processes this test started, each the leader of a new session, and their logs."""

    def __init__(self, logs: Path, env: dict[str, str]):
        self.logs, self.env = logs, env
        self.procs: dict[str, subprocess.Popen] = {}

    def start(self, name: str, args: list[str]) -> subprocess.Popen:
        with open(self.logs / f"{name}.log", "w") as log:  # the child keeps its own descriptor
            proc = subprocess.Popen(
                args, cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        self.procs[name] = proc
        return proc

    def run(self, name: str, args: list[str], timeout: float) -> tuple[int, str]:
        """Run to completion (its whole session is ended on timeout); exit code and output."""
        proc = self.start(name, args)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            pytest.fail(f"{name} did not finish within {timeout} s:\n{self.tail(name)}")
        finally:
            self.stop(name)
        return proc.returncode, (self.logs / f"{name}.log").read_text()

    def tail(self, name: str, chars: int = 4000) -> str:
        return (self.logs / f"{name}.log").read_text()[-chars:]

    def check_alive(self, name: str) -> None:
        if self.procs[name].poll() is not None:
            pytest.fail(f"{name} exited with {self.procs[name].returncode}:\n{self.tail(name)}")

    def stop(self, name: str) -> None:
        """SIGTERM to the leader (`ray start --block` then stops its node), SIGKILL to what is left."""
        proc = self.procs.pop(name, None)
        if proc is None:
            return
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(STOP_GRACE_S)
            except subprocess.TimeoutExpired:
                pass
        for pid in session_members(proc.pid):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        proc.wait(STOP_GRACE_S)

    def stop_all(self) -> list[int]:
        """Stop every session (the second node first, the head last); the pids still alive after."""
        sids = [proc.pid for proc in self.procs.values()]
        for name in reversed(list(self.procs)):
            self.stop(name)
        deadline = time.monotonic() + STOP_GRACE_S
        while (left := [pid for sid in sids for pid in session_members(sid)]) and time.monotonic() < deadline:
            time.sleep(0.2)
        return left


def wait_for(what: str, ready, started: Started, watch: list[str]) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while not ready():
        for name in watch:
            started.check_alive(name)
        if time.monotonic() > deadline:
            pytest.fail(f"{what}: not ready after {START_TIMEOUT_S} s:\n" + "\n".join(started.tail(n) for n in watch))
        time.sleep(0.3)


def http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status == 200
    except OSError:
        return False


def private_mount_prefix(folder: Path) -> list[str]:
    """A command prefix that runs its command with a private empty tmpfs over `folder`, if this machine
    allows mount namespaces; else []."""
    script = 'mount -t tmpfs tmpfs "$0" && exec "$@"'
    for unshare in (
        ["unshare", "--mount", "--propagation", "private"],
        ["unshare", "--user", "--map-root-user", "--mount"],
    ):
        prefix = [*unshare, "--", "sh", "-c", script, str(folder)]
        try:
            if subprocess.run([*prefix, "true"], capture_output=True, timeout=10).returncode == 0:
                return prefix
        except (OSError, subprocess.TimeoutExpired):
            pass
    return []


NODES_SCRIPT = textwrap.dedent(
    """
    import json, sys, time, ray
    ray.init(address="auto", logging_level="ERROR")
    deadline = time.monotonic() + float(sys.argv[2])
    while len(alive := [n["NodeID"] for n in ray.nodes() if n["Alive"]]) < int(sys.argv[1]):
        if time.monotonic() > deadline:
            break
        time.sleep(0.3)
    print("NODES=" + json.dumps(alive))
    """
)


@dataclass
class Cluster:
    tmp: Path
    node_ids: list[str]
    mlflow_uri: str
    started: Started
    private: Path | None  # a folder the second node does not see (None: no mount namespace here)

    def sweep(self, name: str, config: Path, *overrides: str) -> tuple[int, str]:
        args = [sys.executable, "-m", "sweep", "run", str(config), "--address", "auto", "-q"]
        return self.started.run(name, [*args, *(a for o in overrides for a in ("--set", o))], SWEEP_TIMEOUT_S)


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    tmp = Path(tempfile.mkdtemp(prefix="ns-", dir="/tmp"))  # short: Ray's socket paths live below it
    (tmp / "logs").mkdir()
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    env.update(
        RAY_TMPDIR=str(tmp),
        RAY_AUTH_MODE="token",
        RAY_AUTH_TOKEN=secrets.token_hex(32),
        RAY_USAGE_STATS_ENABLED="0",
        PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")])),  # "installed" on every node
    )
    started = Started(tmp / "logs", env)
    private = tmp / "private"
    private.mkdir()
    prefix = private_mount_prefix(private)
    node = ["--num-cpus", "1", "--node-ip-address", "127.0.0.1", "--temp-dir", str(tmp / "ray")]
    node += ["--disable-usage-stats", "--block"]
    try:
        mlflow_port = free_port()
        started.start(
            "mlflow",
            [str(BIN / "mlflow"), "server", "--host", "127.0.0.1", "--port", str(mlflow_port), "--workers", "1"]
            + ["--backend-store-uri", f"sqlite:///{tmp}/mlflow.db", "--artifacts-destination", str(tmp / "artifacts")],
        )
        head_args = ["start", "--head", "--port", str(free_port()), "--include-dashboard=false", *node_ports()]
        head_args += ["--dashboard-port", str(free_port())]
        started.start("head", [str(BIN / "ray"), *head_args, *node])
        address_file = tmp / "ray" / "ray_current_cluster"
        wait_for("ray head", lambda: address_file.is_file() and address_file.read_text().strip(), started, ["head"])
        address = address_file.read_text().strip()
        started.start("node2", [*prefix, str(BIN / "ray"), "start", "--address", address, *node_ports(), *node])
        code, out = started.run(
            "nodes", [sys.executable, "-c", NODES_SCRIPT, "2", str(START_TIMEOUT_S)], START_TIMEOUT_S
        )
        node_ids = json.loads(out.split("NODES=")[-1]) if "NODES=" in out else []
        assert code == 0 and len(node_ids) == 2, (
            f"the second node did not join:\n{out[-3000:]}\n{started.tail('node2')}"
        )
        mlflow_uri = f"http://127.0.0.1:{mlflow_port}"
        wait_for("mlflow server", lambda: http_ok(f"{mlflow_uri}/health"), started, ["mlflow"])
        yield Cluster(tmp, node_ids, mlflow_uri, started, private if prefix else None)
    finally:
        left = started.stop_all()
        shutil.rmtree(tmp, ignore_errors=True)
        assert not left, f"processes of this test still alive after stopping: {left}"


CONFIG = """\
seed: 0
data: {{name: digits}}
model: {{name: mlp, options: {{hidden: 16, depth: 1}}}}
method: {{name: baseline}}
train: {{epochs: 2, batch_size: 128, lr: 0.01}}
noise: {{name: additive, sigma: 0.1}}
eval: {{scales: [0.0, 0.1], samples: 2}}
sweep:
  name: twonodes
  grid: {{seed: [0, 1, 2, 3]}}
  resources: {{cpus_per_trial: 1}}
  tracking: {{uri: "{uri}", experiment: multinode}}
  storage_path: {storage}
"""


def last_result(trial_dir: Path) -> dict:
    return json.loads((trial_dir / "result.json").read_text().strip().splitlines()[-1])


def test_sweep_runs_on_both_nodes_and_lands_in_the_mlflow_server(cluster: Cluster) -> None:
    from mlflow.tracking import MlflowClient

    config = cluster.tmp / "twonodes.yaml"
    config.write_text(CONFIG.format(uri=cluster.mlflow_uri, storage=cluster.tmp / "shared"))
    code, out = cluster.sweep("sweep", config)
    assert code == 0, out[-4000:]

    # Ray's results: every trial finished, on a node of this cluster, and both nodes trained
    trials = sorted(p for p in (cluster.tmp / "shared" / "twonodes").iterdir() if (p / "result.json").is_file())
    results = [last_result(p) for p in trials]
    assert len(results) == 4 and all(r["final"] for r in results)
    assert {r["node_id"] for r in results} == set(cluster.node_ids)

    # MLflow (through the server): a parent run and the 4 trial runs, tagged with their node
    client = MlflowClient(tracking_uri=cluster.mlflow_uri)
    experiment = client.get_experiment_by_name("multinode")
    runs = client.search_runs([experiment.experiment_id], "tags.`sweep.role` = 'trial'")
    assert len(runs) == 4 and {r.data.tags["sweep.status"] for r in runs} == {"finished"}
    assert {r.data.tags["node_id"] for r in runs} == set(cluster.node_ids)
    assert sorted(r.data.tags["node_id"] for r in runs) == sorted(r["node_id"] for r in results)
    assert all(0.0 <= r.data.metrics["test_acc"] <= 1.0 for r in runs)
    parents = client.search_runs([experiment.experiment_id], "tags.`sweep.role` = 'parent'")
    assert len(parents) == 1 and all(r.data.tags["mlflow.parentRunId"] == parents[0].info.run_id for r in runs)
    for run in runs:  # artifacts went through the server into its artifact store
        assert "curve.json" in {a.path for a in client.list_artifacts(run.info.run_id)}
    assert len(list((cluster.tmp / "artifacts").rglob("curve.json"))) == 4


def test_storage_the_second_node_cannot_see_is_refused(cluster: Cluster) -> None:
    if cluster.private is None:
        pytest.skip("no mount namespace on this machine: every folder is shared by both nodes")
    config = cluster.tmp / "refused.yaml"
    config.write_text(CONFIG.format(uri=cluster.mlflow_uri, storage=cluster.private))
    code, out = cluster.sweep("refused", config, "sweep.name=refused")
    assert code == 2, out[-4000:]
    error = next(line for line in out.splitlines() if line.startswith("sweep run: error:"))
    assert "sweep.storage_path" in error and "not visible from 1 of the 2 Ray nodes" in error
    assert "s3://" in error
    assert not (cluster.private / "refused").exists()  # refused before any trial wrote there

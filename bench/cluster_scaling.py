"""What the cluster path costs: the same sweep on one Ray node with 2 CPUs and on two Ray nodes with
1 CPU each, both on this machine, measured side by side in one run (alternating A B B A ...).

Each configuration is a fresh Ray cluster started with `ray start` (the head, and for B a second node
joining it; private temp folder, ports and token, as in tests/sweep/execution/test_multinode.py), and the sweep is
the command a cluster's head runs: `sweep run CONFIG --address ADDR -q`, timed from start to exit
(config check, connecting, the storage probe, the trials, MLflow writes; not the cluster start, which is
printed apart). Ray reuses trial actors on one node only (sweep/execution/cluster.py), so B starts a worker
process per trial; that and the nodes' coordination is what B pays over A.

    python bench/cluster_scaling.py [--trials 8] [--epochs 20] [--repeats 2] [--out cluster_scaling.json]
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests" / "sweep" / "execution"))
from test_multinode import BIN, NODES_SCRIPT, Started, free_port, node_ports  # noqa: E402

CONFIG = """\
seed: 0
data: {{name: digits}}
model: {{name: lenet}}
method: {{name: noise_injection}}
train: {{epochs: {epochs}, batch_size: 64}}
noise: {{name: additive, sigma: 0.2}}
eval: {{scales: [0.0, 0.1, 0.2, 0.3], samples: 5}}
sweep:
  name: {name}
  grid: {{seed: {seeds}}}
  resources: {{cpus_per_trial: 1}}
  report_interval: 1.0
  tracking: {{uri: "sqlite:///{tmp}/mlflow.db", experiment: scaling}}
  storage_path: {tmp}/runs
"""


def run_once(nodes: int, trials: int, epochs: int, name: str) -> dict[str, float | int]:
    """Start a cluster of `nodes` nodes with 2 CPUs in all, run the sweep on it, stop it."""
    tmp = Path(tempfile.mkdtemp(prefix="nsb-", dir="/tmp"))
    (tmp / "logs").mkdir()
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    env.update(RAY_TMPDIR=str(tmp), RAY_AUTH_MODE="token", RAY_AUTH_TOKEN=secrets.token_hex(32))
    env.update(
        RAY_USAGE_STATS_ENABLED="0", PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    )
    started = Started(tmp / "logs", env)
    common = ["--node-ip-address", "127.0.0.1", "--temp-dir", str(tmp / "ray"), "--disable-usage-stats", "--block"]
    cpus = ["--num-cpus", str(2 // nodes)]
    try:
        start = time.perf_counter()
        head = ["start", "--head", "--port", str(free_port()), "--include-dashboard=false", *node_ports()]
        started.start("head", [str(BIN / "ray"), *head, "--dashboard-port", str(free_port()), *cpus, *common])
        address_file = tmp / "ray" / "ray_current_cluster"
        while not (address_file.is_file() and address_file.read_text().strip()):
            started.check_alive("head")
            time.sleep(0.2)
        address = address_file.read_text().strip()
        for i in range(1, nodes):
            started.start(f"node{i}", [str(BIN / "ray"), "start", "--address", address, *node_ports(), *cpus, *common])
        code, out = started.run("nodes", [sys.executable, "-c", NODES_SCRIPT, str(nodes), "120"], 150)
        assert code == 0 and len(json.loads(out.split("NODES=")[-1])) == nodes, out[-2000:]
        cluster_s = time.perf_counter() - start
        config = tmp / "sweep.yaml"
        config.write_text(CONFIG.format(epochs=epochs, name=name, seeds=list(range(trials)), tmp=tmp))
        start = time.perf_counter()
        code, out = started.run(
            "sweep", [sys.executable, "-m", "sweep", "run", str(config), "--address", address, "-q"], 900
        )
        sweep_s = time.perf_counter() - start
        assert code == 0, out[-3000:]
        results = [json.loads(p.read_text().splitlines()[-1]) for p in (tmp / "runs" / name).glob("*/result.json")]
        assert len(results) == trials and all(r["final"] for r in results)
        trial_s = sum(r["trial_seconds"] for r in results) / trials
        overhead = (2 * sweep_s - trials * trial_s) / trials  # core-seconds per trial not spent in the trainable
        return {"nodes": nodes, "cluster_start_s": cluster_s, "sweep_s": sweep_s, "trial_s": trial_s,
                "overhead_per_trial_core_s": overhead, "nodes_used": len({r["node_id"] for r in results})}  # fmt: skip
    finally:
        left = started.stop_all()
        assert not left, f"processes left: {left}"
        import shutil

        shutil.rmtree(tmp, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=8)
    parser.add_argument("--epochs", type=int, default=20, help="epochs per trial (LeNet on digits, noise injection)")
    parser.add_argument("--repeats", type=int, default=2, help="runs of each configuration, alternated")
    parser.add_argument("--out", type=Path, default=Path("cluster_scaling.json"), help="JSON file of every run")
    args = parser.parse_args()
    if args.out.exists():
        parser.error(f"--out {args.out}: the file exists; name a new one")
    runs = []
    for i in range(args.repeats):
        for nodes in (1, 2) if i % 2 == 0 else (2, 1):
            r = run_once(nodes, args.trials, args.epochs, f"scale{nodes}n{i}")
            runs.append(r)
            shape = f"{nodes} node(s) x {2 // nodes} CPU"
            print(
                f"{shape}: sweep {r['sweep_s']:.1f} s (trials {r['trial_s']:.1f} s each, {r['nodes_used']} node(s) "
                f"used), overhead {r['overhead_per_trial_core_s']:.1f} core-s per trial, "
                f"cluster start {r['cluster_start_s']:.1f} s",
                flush=True,
            )
    one = [r["sweep_s"] for r in runs if r["nodes"] == 1]
    two = [r["sweep_s"] for r in runs if r["nodes"] == 2]
    summary = {
        "one_node_s": one,
        "two_nodes_s": two,
        "ratio_two_over_one": [b / a for a, b in zip(one, two, strict=True)],
    }
    args.out.write_text(json.dumps({"trials": args.trials, "epochs": args.epochs, "runs": runs, **summary}, indent=1))
    print(
        f"{args.trials} trials: 1 node x 2 CPUs {min(one):.1f} s, 2 nodes x 1 CPU {min(two):.1f} s (best of "
        f"{args.repeats}); 2-node / 1-node per pair: {', '.join(f'{x:.2f}' for x in summary['ratio_two_over_one'])}"
    )


if __name__ == "__main__":
    main()

"""`ray up` for real: the README's cluster commands against configs/cluster/local.yaml, on this machine.

The "head machine" is an sshd on 127.0.0.1:22 inside private network, PID and mount namespaces
(`unshare`): its root account logs in with a key made here and gets a temporary home (a private
/etc/passwd), its Ray gets a private /tmp/ray, and nothing it opens is reachable from outside, so
other Ray users of this machine neither see it nor are stopped by its `ray stop`. The "laptop" side
(`ray up`, `ray dashboard`, `ray job submit`, `ray exec`, `ray down`) runs in the host's PID and mount
namespaces with its own HOME and RAY_TMPDIR, joined to that network namespace with `nsenter`.

Needs root, unshare/nsenter, sshd and rsync: missing sshd or rsync are installed with apt-get when
possible; otherwise the test skips and prints why.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[3]
BIN = Path(sys.executable).parent  # ray of this environment; also the head's environment
LOCAL_PORT = 18265  # `ray dashboard --port`: where the forwarded dashboard answers on the "laptop"
# the whole test, all steps together: a guard against hangs (it took 183-354 s on 2 cores shared with other work)
DEADLINE_S = int(os.environ.get("NOISESWEEP_RAY_UP_BUDGET_S", 420))
SWEEP = [
    "sweep", "run", "configs/digits.yaml", "--address", "auto", "-q",
    "--set", "sweep.tracking.uri=http://127.0.0.1:5000", "--set", "sweep.name=rayup",
    "--set", "sweep.grid={seed: [0, 1]}", "--set", "sweep.space={}", "--set", "train.epochs=2",
    "--set", "eval.samples=2", "--set", "eval.scales=[0.0, 0.1]",
]  # fmt: skip


def skip(reason: str) -> None:
    print(f"test_ray_up skipped: {reason}")
    pytest.skip(reason)


def sshd_and_rsync() -> str:
    """The sshd binary; installs openssh-server / rsync with apt-get if they are missing (skips where it cannot)."""
    sshd = shutil.which("sshd") or ("/usr/sbin/sshd" if Path("/usr/sbin/sshd").exists() else None)
    if sshd and shutil.which("rsync"):
        return sshd
    if not shutil.which("apt-get"):
        skip("no sshd or rsync, and no apt-get to install them")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    try:
        for args in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", "--no-install-recommends"]):
            args += ["openssh-server", "rsync"] if "install" in args else []
            done = subprocess.run(args, env=env, capture_output=True, text=True, timeout=90)
            if done.returncode != 0:
                skip(f"`{' '.join(args)}` failed: {done.stderr.strip()[-300:]}")
    except subprocess.TimeoutExpired:
        skip("installing openssh-server and rsync took over 90 s")
    return shutil.which("sshd") or "/usr/sbin/sshd"


def in_namespace(target: str) -> list[int]:
    """Live pids in the PID namespace `target` (what /proc/PID/ns/pid links to)."""
    pids = []
    for entry in Path("/proc").glob("[0-9]*"):
        try:
            if (
                os.readlink(entry / "ns" / "pid") == target
                and "Z" not in (entry / "stat").read_text().split(")")[-1][:3]
            ):
                pids.append(int(entry.name))
        except OSError:
            pass
    return pids


def command_of(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        return ""


def with_text(pattern: str) -> list[int]:
    """Pids whose command line contains `pattern` (a path unique to this test)."""
    return [int(p.name) for p in Path("/proc").glob("[0-9]*") if pattern in command_of(int(p.name))]


@dataclass
class Head:
    tmp: Path
    unshare: subprocess.Popen
    init: int  # host pid of the sshd that is pid 1 of the namespaces
    env: dict[str, str]
    config: Path
    deadline: float
    logs: list[str] = field(default_factory=list)

    def client(self, *args: str, timeout: float = DEADLINE_S, check: bool = True) -> subprocess.CompletedProcess:
        """A "laptop" command, in the head's network namespace, from the checkout, in a session of its own."""
        timeout = min(timeout, self.deadline - time.monotonic())
        if timeout <= 0:
            pytest.fail(f"over the test's time budget of {DEADLINE_S} s before: {' '.join(args)}")
        proc = subprocess.Popen(
            ["nsenter", f"--net=/proc/{self.init}/ns/net", "--", *args],
            cwd=ROOT, env=self.env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
            start_new_session=True,
        )  # fmt: skip
        start = time.monotonic()
        try:
            out, _ = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            out, _ = proc.communicate()
            pytest.fail(f"`{' '.join(args)}` did not finish within {timeout:.0f} s:\n{out[-4000:]}")
        self.logs.append(f"$ {' '.join(args)}\n{out}")
        print(f"test_ray_up: {time.monotonic() - start:5.1f} s  {' '.join(args)[:100]}", flush=True)
        if check and proc.returncode != 0:
            pytest.fail(f"`{' '.join(args)}` exited with {proc.returncode}:\n{out[-6000:]}")
        return subprocess.CompletedProcess(args, proc.returncode, out)

    def head_processes(self) -> list[str]:
        """What runs on the head besides its sshd: pid and command line."""
        namespace = os.readlink(f"/proc/{self.init}/ns/pid")
        return [f"{pid} {command_of(pid)[:160]}" for pid in in_namespace(namespace) if pid != self.init]


def local_config(tmp: Path, key: Path) -> Path:
    """configs/cluster/local.yaml with its CHANGE places filled in as a user would: this machine as the only node."""
    config = yaml.safe_load((ROOT / "configs/cluster/local.yaml").read_text())
    config["cluster_name"] = f"nstest-{uuid.uuid4().hex[:8]}"
    config["provider"].update(head_ip="127.0.0.1", worker_ips=[])
    config["auth"] = {"ssh_user": "root", "ssh_private_key": str(key)}
    config["setup_commands"] = [c.replace("YOUR-VENV", sys.prefix) for c in config["setup_commands"]]
    assert "YOUR-" not in json.dumps(config)
    path = tmp / "cluster.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


WAIT_FOR_HTTP = """
import sys, time, urllib.error, urllib.request
for _ in range(60):
    try:
        urllib.request.urlopen(sys.argv[1], timeout=2)
        break
    except urllib.error.HTTPError:  # an answer (e.g. 401 without the token) is enough
        break
    except OSError:
        time.sleep(0.5)
else:
    sys.exit(f"nothing answers at {sys.argv[1]}")
"""

NAMESPACE_SCRIPT = """
ip link set lo up && mount --bind "$1/passwd" /etc/passwd && mount -t tmpfs tmpfs /run && mkdir /run/sshd &&
mount -t tmpfs tmpfs /tmp/ray && exec "$2" -D -e -f "$1/sshd_config"
"""


@pytest.fixture
def head() -> Iterator[Head]:
    if sys.platform != "linux" or os.geteuid() != 0:
        skip("needs root on Linux (an sshd for root in private namespaces)")
    if not (shutil.which("unshare") and shutil.which("nsenter") and shutil.which("ip")):
        skip("needs unshare, nsenter and ip (util-linux, iproute2)")
    if subprocess.run(["unshare", "--net", "--pid", "--fork", "--mount", "true"], capture_output=True).returncode:
        skip("this machine does not allow network, PID and mount namespaces")
    sshd = sshd_and_rsync()
    start = time.monotonic()
    tmp = Path(tempfile.mkdtemp(prefix="nsup-", dir="/tmp"))  # short: Ray's socket paths live below ~
    made_tmp_ray = not Path("/tmp/ray").exists()
    Path("/tmp/ray").mkdir(exist_ok=True)  # the mount point of the head's private /tmp/ray
    home, client = tmp / "home", tmp / "client"
    for folder in (home / ".ssh", client / ".ssh"):
        folder.mkdir(parents=True, mode=0o700)
    key = client / ".ssh" / "id_ed25519"
    for path in (key, tmp / "host_key"):
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(path)], check=True)
    shutil.copy(f"{key}.pub", home / ".ssh" / "authorized_keys")
    passwd = re.sub(r"^(root:[^:]*:0:0:[^:]*:)[^:]*:", rf"\g<1>{home}:", Path("/etc/passwd").read_text(), flags=re.M)
    (tmp / "passwd").write_text(passwd)
    (tmp / "sshd_config").write_text(
        f"ListenAddress 127.0.0.1\nPort 22\nHostKey {tmp}/host_key\nPidFile none\nUsePAM no\n"
        "PermitRootLogin prohibit-password\nPasswordAuthentication no\nKbdInteractiveAuthentication no\n"
        "AuthorizedKeysFile .ssh/authorized_keys\nPrintMotd no\nMaxStartups 50\nMaxSessions 50\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_") and k != "PYTHONPATH"}
    env.update(
        HOME=str(client), RAY_TMPDIR=str(tmp / "ray"), RAY_AUTH_MODE="token", RAY_USAGE_STATS_ENABLED="0",
        PATH=f"{BIN}{os.pathsep}{env.get('PATH', '')}",
    )  # fmt: skip
    with open(tmp / "sshd.log", "w") as log:
        unshare = subprocess.Popen(
            ["unshare", "--net", "--pid", "--fork", "--mount-proc", "--mount", "--propagation", "private", "--"]
            + ["sh", "-c", NAMESPACE_SCRIPT, "sh", str(tmp), sshd],
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    head, namespace = None, ""
    try:
        for _ in range(100):
            children = Path(f"/proc/{unshare.pid}/task/{unshare.pid}/children")
            init = int(children.read_text().split()[0]) if children.exists() and children.read_text().split() else 0
            if init and "sshd" in command_of(init):
                break
            if unshare.poll() is not None:
                pytest.fail(f"the namespaces did not start:\n{(tmp / 'sshd.log').read_text()}")
            time.sleep(0.1)
        else:
            pytest.fail(f"sshd did not start:\n{(tmp / 'sshd.log').read_text()}")
        namespace = os.readlink(f"/proc/{init}/ns/pid")
        head = Head(tmp, unshare, init, env, local_config(tmp, key), start + DEADLINE_S)
        ssh = ["ssh", "-i", str(key), "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null"]
        for _ in range(50):
            if head.client(*ssh, "-o", "BatchMode=yes", "root@127.0.0.1", "true", check=False).returncode == 0:
                break
            time.sleep(0.2)
        else:
            pytest.fail(f"cannot log into the test's sshd:\n{head.logs[-1]}\n{(tmp / 'sshd.log').read_text()}")
        yield head
    finally:
        if head:
            os.kill(head.init, signal.SIGKILL)  # the namespace's pid 1 dies: the kernel kills all in it
        os.killpg(unshare.pid, signal.SIGKILL)
        unshare.wait(15)
        deadline = time.monotonic() + 15  # ssh control masters of the "laptop" end once the sshd is gone
        while (namespace and in_namespace(namespace) or with_text(str(tmp))) and time.monotonic() < deadline:
            time.sleep(0.2)
        left = with_text(str(tmp))  # "laptop" processes: `ray dashboard`, ssh control masters
        for pid in left:
            os.kill(pid, signal.SIGKILL)
        head_left = in_namespace(namespace) if namespace else []
        if head:  # Ray's folder of this cluster's SSH control sockets (ray/autoscaler/_private/command_runner.py)
            cluster = yaml.safe_load(head.config.read_text())["cluster_name"]
            for folder in Path("/tmp").glob(f"ray_ssh_*/{hashlib.sha256(cluster.encode()).hexdigest()[:10]}"):
                shutil.rmtree(folder, ignore_errors=True)
        shutil.rmtree(tmp, ignore_errors=True)
        if made_tmp_ray:
            with contextlib.suppress(OSError):  # unless another Ray of this machine uses it by now
                Path("/tmp/ray").rmdir()
        assert not head_left and not left, f"processes left: head {head_left}, laptop {left}"


def test_ray_up_job_submit_exec_and_down(head: Head) -> None:
    from mlflow.tracking import MlflowClient

    config = str(head.config)
    head.client("ray", "get-auth-token", "--generate")  # the README's first step (the "laptop" has no token)
    up = head.client("ray", "up", "-y", "--no-config-cache", config, timeout=DEADLINE_S)
    assert "Ray runtime started" in up.stdout

    # the README's way to the Jobs API: `ray dashboard` forwards the head's 127.0.0.1:8265 over SSH
    with open(head.tmp / "forward.log", "w") as log:
        forward = subprocess.Popen(
            ["nsenter", f"--net=/proc/{head.init}/ns/net", "--", "ray", "dashboard", config, "--port", str(LOCAL_PORT)],
            cwd=ROOT, env=head.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    address = f"http://127.0.0.1:{LOCAL_PORT}"
    try:
        answer = head.client(sys.executable, "-c", WAIT_FOR_HTTP, f"{address}/api/version", timeout=40, check=False)
        assert answer.returncode == 0, f"{answer.stdout}\n`ray dashboard`:\n{(head.tmp / 'forward.log').read_text()}"
        job = head.client(
            "ray", "job", "submit", "--address", address, "--working-dir", ".", "--", *SWEEP, timeout=DEADLINE_S
        )
    finally:
        os.killpg(forward.pid, signal.SIGKILL)
        forward.wait(10)
    assert re.search(r"Job '[^']+' succeeded", job.stdout), job.stdout[-4000:]

    # the trials ran on the head and landed in its MLflow server (~/mlflow.db, artifacts in ~/mlartifacts)
    home = head.tmp / "home"
    curves = [json.loads(c.read_text()) for c in (home / "mlartifacts").rglob("curve.json")]
    assert len(curves) == 2 and all(c["scales"] == [0.0, 0.1] for c in curves)
    assert all(0.0 <= p["mean"] <= 1.0 for c in curves for p in c["points"])
    assert all(c["points"][-1]["n_draws"] == 2 for c in curves)  # eval.samples=2 at the noisy scale
    client = MlflowClient(tracking_uri=f"sqlite:///{home / 'mlflow.db'}")  # the server's own store
    trials = client.search_runs(
        [client.get_experiment_by_name("noisesweep").experiment_id], "tags.`sweep.role` = 'trial'"
    )
    assert len(trials) == 2 and {r.info.status for r in trials} == {"FINISHED"}
    assert {r.data.tags["sweep.status"] for r in trials} == {"finished"}

    exec_ = head.client(
        "ray",
        "exec",
        config,
        "ray status && cd noisesweep && python -m sweep report --tracking-uri http://127.0.0.1:5000",
    )
    assert "InvalidAuthToken" not in exec_.stdout and "Active:" in exec_.stdout, exec_.stdout
    assert "rayup" in exec_.stdout and "baseline" in exec_.stdout
    assert (home / "noisesweep" / "report" / "rayup" / "report.md").is_file()

    down = head.client("ray", "down", "-y", config)
    assert down.returncode == 0
    deadline = time.monotonic() + 30  # the MLflow server notices within ~6 s that Ray is gone, stops within 10 s
    while (running := head.head_processes()) and time.monotonic() < deadline:
        time.sleep(0.5)
    mlflow_log = (home / "mlflow.log").read_text()[-2000:]
    assert not running, "`ray down` left processes on the head:\n" + "\n".join(running) + "\n" + mlflow_log
    ports = head.client("ss", "-Hltn").stdout.split("\n")
    assert [line.split()[3] for line in ports if line.strip()] == ["127.0.0.1:22"], ports

"""A local sweep's Ray listens on 127.0.0.1 only: every TCP socket listened on by this process (the
driver) or a process it started (gcs_server, raylet, agents, the trial's worker), seen by `ss` while
a trial runs, is on a loopback address."""

from __future__ import annotations

import ipaddress
import os
import re
import shutil
import subprocess
import threading
import time
from pathlib import Path

import pytest

from sweep.execution import run_sweep

pytestmark = pytest.mark.usefixtures("ray_runtime")


def listeners(pids: set[int]) -> list[tuple[str, str]]:
    """(local address, process name) of the listening TCP sockets of `pids`."""
    out = subprocess.run(["ss", "-ltnpH"], capture_output=True, text=True, timeout=10, check=True).stdout
    found = []
    for line in out.splitlines():
        fields = line.split()
        owners = re.findall(r'\("([^"]+)",pid=(\d+)', line)
        for name, pid in owners:
            if int(pid) in pids:
                found.append((fields[3].rsplit(":", 1)[0].strip("[]"), name))
    return found


def is_loopback(host: str) -> bool:
    if host.startswith("::ffff:"):  # an IPv4-mapped address on a dual-stack socket
        host = host[len("::ffff:") :]
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:  # `*`, `0.0.0.0` written as a wildcard, or a name
        return False


def test_local_sweep_listens_on_loopback_only(tmp_path: Path, make_sweep, tiny_base) -> None:
    if shutil.which("ss") is None:
        pytest.skip("`ss` (iproute2) is not installed")
    import psutil

    base = {**tiny_base, "train": {**tiny_base["train"], "epochs": 6}}
    cfg = make_sweep({"grid": {"seed": [0]}}, base)
    outcome: list = []
    thread = threading.Thread(target=lambda: outcome.append(run_sweep(cfg, verbose=0)), daemon=True)
    thread.start()
    seen: dict[tuple[str, str], None] = {}
    worker = False
    deadline = time.monotonic() + 240
    while thread.is_alive() and time.monotonic() < deadline:
        family = psutil.Process().children(recursive=True)
        worker = worker or any("ImplicitFunc" in " ".join(p.cmdline()) for p in family if p.is_running())
        seen.update(dict.fromkeys(listeners({os.getpid(), *(p.pid for p in family)})))
        time.sleep(0.3)
    thread.join(timeout=60)
    assert outcome and outcome[0].rows[0]["status"] == "finished"
    names = {name for _, name in seen}
    assert worker and {"gcs_server", "raylet"} <= names, seen  # the sockets were seen while the trial ran
    exposed = [(host, name) for host, name in seen if not is_loopback(host)]
    assert not exposed, f"listening beyond 127.0.0.1: {exposed}"

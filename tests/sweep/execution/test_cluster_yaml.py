"""cluster.yaml is a config that `ray up` accepts, whose commands the installed Ray and MLflow parse."""

from __future__ import annotations

import copy
import re
import shlex
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[3]
CLUSTER_YAML = ROOT / "cluster.yaml"


@pytest.fixture(scope="module")
def raw() -> dict:
    return yaml.safe_load(CLUSTER_YAML.read_text())


@pytest.fixture(scope="module")
def prepared(raw: dict) -> dict:
    """What `ray up` checks before it talks to AWS: defaults merged, then the schema and the node types."""
    from ray.autoscaler._private.util import prepare_config, validate_config

    config = prepare_config(copy.deepcopy(raw))
    validate_config(config)
    return config


def invocations(command: str, program: str, sub: str) -> list[list[str]]:
    """The argument lists of every `program sub ...` in a shell command line (shell operators, groups
    and redirections split it into simple commands)."""
    lexer = shlex.shlex(command, posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    found, words, skip = [], [], False
    for token in [*lexer, ";"]:
        if skip:
            skip = False
        elif token and set(token) <= set("<>&") and set(token) & set("<>"):
            skip = True  # a redirection (`> log`, `2>&1`): drop the fd before it and the target after it
            if words and words[-1].isdigit():
                words.pop()
        elif token and set(token) <= set(";|&()"):
            while words and (words[0] in ("nohup", "exec") or "=" in words[0]):
                words = words[1:]  # `nohup mlflow server ...`, `VAR=1 ray start ...`
            if words[:2] == [program, sub]:
                found.append(words[2:])
            words = []
        else:
            words.append(token)
    return found


def parsed(command: str, program: str, sub: str) -> list[dict]:
    """`invocations`, parsed by the installed CLI itself (an unknown flag raises)."""
    if program == "ray":
        from ray.scripts.scripts import start as cli
    else:
        from mlflow.cli import cli as group

        cli = group.commands[sub]
    return [cli.make_context(sub, args).params for args in invocations(command, program, sub)]


def all_parsed(commands: list[str], program: str, sub: str) -> list[dict]:
    return [params for command in commands for params in parsed(command, program, sub)]


def test_ray_up_accepts_the_config(prepared: dict) -> None:
    types = prepared["available_node_types"]
    head = prepared["head_node_type"]
    assert prepared["provider"]["type"] == "aws"
    assert head in types and types[head]["max_workers"] == 0  # prepare_config pins the head type
    workers = {name: t for name, t in types.items() if name != head}
    gpu = [t for t in workers.values() if t["node_config"]["InstanceType"].startswith(("g", "p"))]
    cpu = [t for t in workers.values() if t["node_config"]["InstanceType"].startswith(("c", "m", "r"))]
    assert len(gpu) == 1 and gpu[0]["min_workers"] == 0 and gpu[0]["max_workers"] >= 1
    assert len(cpu) == 1 and cpu[0]["max_workers"] >= 1
    assert sum(t.get("min_workers", 0) for t in workers.values()) <= prepared["max_workers"]


def test_a_broken_config_is_rejected_by_the_same_checks(raw: dict) -> None:
    """The checks above can fail: a node type without resources breaks Ray's schema."""
    import jsonschema
    from ray.autoscaler._private.util import prepare_config, validate_config

    broken = copy.deepcopy(raw)
    del broken["available_node_types"]["gpu_worker"]["resources"]
    with pytest.raises(jsonschema.ValidationError, match="resources"):
        validate_config(prepare_config(broken))


def test_head_starts_ray_and_an_mlflow_server(prepared: dict) -> None:
    commands = prepared["head_start_ray_commands"]
    (ray_head,) = all_parsed(commands, "ray", "start")
    assert ray_head["head"] and ray_head["port"] == 6379
    assert ray_head["autoscaling_config"] == "~/ray_bootstrap_config.yaml"
    (server,) = all_parsed(commands, "mlflow", "server")
    assert re.match(r"(sqlite:///|postgresql://)", server["backend_store_uri"])
    assert server["artifacts_destination"].startswith("s3://")
    assert server["serve_artifacts"]  # clients upload through the server: no S3 credentials on the driver


def test_workers_join_the_head(prepared: dict) -> None:
    (worker,) = all_parsed(prepared["worker_start_ray_commands"], "ray", "start")
    assert not worker["head"] and worker["address"] == "$RAY_HEAD_IP:6379"


def test_setup_installs_the_mounted_checkout(prepared: dict) -> None:
    mounts = prepared["file_mounts"]
    assert all((ROOT / local).resolve().is_dir() for local in mounts.values())  # paths relative to the checkout
    (remote,) = [r for r, local in mounts.items() if (ROOT / local).resolve() == ROOT]
    installs = [c for c in prepared["setup_commands"] if "pip install" in c and f"-e {remote}" in c]
    assert len(installs) == 1
    assert "pyproject.toml" in {p.name for p in ROOT.iterdir()}
    for name in ("head_setup_commands", "worker_setup_commands"):  # what Ray runs on each kind of node
        assert installs[0] in prepared[name]


def test_no_secrets_and_every_placeholder_is_marked() -> None:
    text = CLUSTER_YAML.read_text()
    secrets = r"AKIA[0-9A-Z]{16}|aws_secret_access_key|aws_session_token|BEGIN [A-Z ]*PRIVATE KEY"
    assert not re.search(secrets, text, re.I)
    assert not re.search(r"ssh_private_key\s*:", text)
    comments = "\n".join(line for line in text.splitlines() if line.lstrip().startswith("#"))
    values = "\n".join(line.split(" #")[0] for line in text.splitlines() if not line.lstrip().startswith("#"))
    placeholders = set(re.findall(r"YOUR-[A-Z]+(?:-[A-Z]+)*", values))
    assert placeholders == {"YOUR-BUCKET", "YOUR-ACCOUNT-ID", "YOUR-AMI-ID"}
    assert all(p in comments for p in placeholders)  # the header says what to put there
    for key in ("region:", "availability_zone:", "ImageId: &ami", "InstanceType:"):
        assert all("CHANGE" in line for line in text.splitlines() if line.strip().startswith(key))

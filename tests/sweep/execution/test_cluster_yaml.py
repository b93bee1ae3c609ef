"""cluster.yaml (AWS) and configs/cluster/local.yaml (your machines) are configs that `ray up` accepts, and the commands
they run (configs/cluster/node.sh, shared by both) are ones the installed Ray and MLflow parse."""

from __future__ import annotations

import copy
import os
import re
import shlex
import subprocess
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


NODE_SH = ROOT / "configs" / "cluster" / "node.sh"


def node_sh(args: list[str], **env: str) -> str:
    """The ray and mlflow commands `configs/cluster/node.sh ARGS` runs, one a line (its dry run)."""
    env = {**os.environ, "NOISESWEEP_DRY_RUN": "1", **env}
    return subprocess.run(["bash", str(NODE_SH), *args], env=env, capture_output=True, text=True, check=True).stdout


def node_sh_args(commands: list[str], sub: str) -> list[str]:
    """The arguments of the one `bash ~/noisesweep/configs/cluster/node.sh SUB ...` in `commands` (all of them)."""
    assert len(commands) == 1, commands  # everything else is in the script, shared by both configs
    words = shlex.split(commands[0].split(" #")[0])
    assert words[:3] == ["bash", "~/noisesweep/configs/cluster/node.sh", sub], commands
    return words[3:]


@pytest.fixture(scope="module")
def local_prepared() -> dict:
    """configs/cluster/local.yaml with its placeholders filled in, through the same checks as `ray up`."""
    from ray.autoscaler._private.util import prepare_config, validate_config

    text = (ROOT / "configs/cluster/local.yaml").read_text()
    for placeholder, value in [("YOUR-HEAD-IP", "10.0.0.1"), ("YOUR-WORKER-IP", "10.0.0.2"), ("YOUR-USER", "me")]:
        text = text.replace(placeholder, value)
    config = prepare_config(yaml.safe_load(text))
    validate_config(config)
    return config


def test_the_local_config_is_accepted_with_every_listed_worker(local_prepared: dict) -> None:
    assert local_prepared["provider"] == {"type": "local", "head_ip": "10.0.0.1", "worker_ips": ["10.0.0.2"]}
    (node_type,) = local_prepared["available_node_types"].values()
    assert node_type["min_workers"] == node_type["max_workers"] == 1


@pytest.mark.parametrize("name", ["aws", "local"])
def test_head_starts_ray_and_an_mlflow_server(name: str, prepared: dict, local_prepared: dict) -> None:
    config = prepared if name == "aws" else local_prepared
    artifacts = node_sh_args(config["head_start_ray_commands"], "start-head")
    assert artifacts == (["s3://YOUR-BUCKET/mlflow"] if name == "aws" else ["~/mlartifacts"])
    commands = node_sh(["start-head", *artifacts]).splitlines()
    assert commands[0] == "ray stop"  # what an earlier `ray up` left
    (ray_head,) = all_parsed(commands, "ray", "start")
    assert ray_head["head"] and ray_head["port"] == 6379
    assert ray_head["autoscaling_config"] == "~/ray_bootstrap_config.yaml"
    assert ray_head["dashboard_host"] == "127.0.0.1"  # the Jobs API runs code: reached through SSH only
    (server,) = all_parsed(commands, "mlflow", "server")
    assert server["host"] == "127.0.0.1" and server["port"] == 5000
    assert re.match(r"(sqlite:///|postgresql://)", server["backend_store_uri"])
    assert server["artifacts_destination"] == artifacts[0]
    assert server["serve_artifacts"]  # clients upload through the server: no S3 credentials on the driver


@pytest.mark.parametrize("name", ["aws", "local"])
def test_workers_join_the_head(name: str, prepared: dict, local_prepared: dict) -> None:
    config = prepared if name == "aws" else local_prepared
    assert node_sh_args(config["worker_start_ray_commands"], "start-worker") == []
    (worker,) = all_parsed(node_sh(["start-worker"], RAY_HEAD_IP="$RAY_HEAD_IP").splitlines(), "ray", "start")
    assert not worker["head"] and worker["address"] == "$RAY_HEAD_IP:6379"


@pytest.mark.parametrize("name", ["aws", "local"])
def test_setup_installs_the_mounted_checkout_and_the_token(name: str, prepared: dict, local_prepared: dict) -> None:
    config = prepared if name == "aws" else local_prepared
    mounts = config["file_mounts"]
    assert mounts["~/.ray/auth_token"] == "~/.ray/auth_token"  # every node's Ray requires the token
    (remote,) = [r for r, local in mounts.items() if (ROOT / local).resolve() == ROOT]  # relative to the checkout
    assert remote == "~/noisesweep" and f"CHECKOUT={remote}\n" in NODE_SH.read_text()
    assert '-e "$CHECKOUT"' in NODE_SH.read_text()
    venv = node_sh_args(config["setup_commands"], "setup")
    assert venv[0] == ("~/venv" if name == "aws" else "YOUR-VENV")
    for kind in ("head_setup_commands", "worker_setup_commands"):  # what Ray runs on each kind of node
        assert config["setup_commands"][0] in config[kind]


def test_node_sh_refuses_an_unknown_command() -> None:
    done = subprocess.run(["bash", str(NODE_SH), "strat-head"], capture_output=True, text=True)
    assert done.returncode == 1 and done.stderr.startswith("node.sh: usage:")


@pytest.mark.parametrize(
    "name, expected",
    [
        ("cluster.yaml", {"YOUR-BUCKET", "YOUR-ACCOUNT-ID", "YOUR-AMI-ID"}),
        ("configs/cluster/local.yaml", {"YOUR-HEAD-IP", "YOUR-WORKER-IP", "YOUR-USER", "YOUR-VENV"}),
    ],
)
def test_no_secrets_and_every_placeholder_is_marked(name: str, expected: set[str]) -> None:
    text = (ROOT / name).read_text()
    secrets = r"AKIA[0-9A-Z]{16}|aws_secret_access_key|aws_session_token|BEGIN [A-Z ]*PRIVATE KEY"
    assert not re.search(secrets, text, re.I)
    comments = "\n".join(line for line in text.splitlines() if line.lstrip().startswith("#"))
    values = "\n".join(line.split(" #")[0] for line in text.splitlines() if not line.lstrip().startswith("#"))
    placeholders = set(re.findall(r"YOUR-[A-Z]+(?:-[A-Z]+)*", values))
    assert placeholders == expected
    assert all(p in comments for p in placeholders)  # the header says what to put there
    for line in text.splitlines():  # every line with a placeholder is marked for the user
        assert "YOUR-" not in line.split(" #")[0] or "CHANGE" in line or line.lstrip().startswith("#"), line
    if name == "cluster.yaml":
        assert not re.search(r"ssh_private_key\s*:", text)
        for key in ("region:", "availability_zone:", "ImageId: &ami", "InstanceType:"):
            assert all("CHANGE" in line for line in text.splitlines() if line.strip().startswith(key))

"""sweep/cluster.py without a cluster: which storage a cluster of n nodes accepts, and the error."""

from __future__ import annotations

from pathlib import Path

import pytest

from sweep.config import ConfigError, ResourcesConfig
from sweep.execution.cluster import check_shared_storage, is_uri, local_path, trial_slots


@pytest.mark.parametrize(
    ("path", "remote"),
    [
        ("s3://bucket/runs", True),
        ("gs://bucket/runs", True),
        ("hdfs://namenode:8020/runs", True),
        ("abfs://container@account.dfs.core.windows.net/runs", True),
        ("file:///tmp/runs", False),
        ("/mnt/efs/runs", False),
        ("runs", False),
        ("C:\\runs", False),
    ],
)
def test_is_uri(path: str, remote: bool) -> None:
    assert is_uri(path) is remote


def test_local_path_is_absolute(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert local_path("runs") == tmp_path / "runs"
    assert local_path(f"file://{tmp_path}/x") == tmp_path / "x"


def never_called(folder: Path) -> list[str]:
    raise AssertionError(f"no probe needed, but probed {folder}")


def test_one_node_or_a_uri_needs_no_probe() -> None:
    check_shared_storage("runs", 1, probe=never_called)
    check_shared_storage("runs", 1)
    check_shared_storage("s3://bucket/runs", 8, probe=never_called)
    check_shared_storage("gs://bucket/runs", 8)


def test_a_local_folder_on_several_nodes_is_probed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    probed: list[Path] = []

    def everyone_sees_it(folder: Path) -> list[str]:
        probed.append(folder)
        return []

    check_shared_storage("runs", 3, probe=everyone_sees_it)
    check_shared_storage(f"file://{tmp_path}/other", 3, probe=everyone_sees_it)
    assert probed == [tmp_path / "runs", tmp_path / "other"]


def test_unshared_folder_is_refused_in_one_line() -> None:
    with pytest.raises(ConfigError) as err:
        check_shared_storage("/data/runs", 4, probe=lambda folder: ["a" * 56, "b" * 56])
    message = str(err.value)
    assert "\n" not in message
    assert message.startswith("sweep.storage_path: '/data/runs' is not visible from 2 of the 4 Ray nodes")
    assert "a" * 12 + ", " + "b" * 12 + ")" in message  # short node ids
    assert "s3://" in message and "NFS" in message  # what is allowed


def test_without_a_probe_a_local_folder_on_a_cluster_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"^sweep\.storage_path: 'runs' is a local folder, but the Ray cluster has 2"):
        check_shared_storage("runs", 2)


@pytest.mark.parametrize(
    ("resources", "total", "slots"),
    [
        ({"cpus_per_trial": 1}, {"CPU": 2.0}, 2),
        ({"cpus_per_trial": 2}, {"CPU": 8.0 + 16.0 * 3}, 28),  # head + 3 c5.4xlarge workers
        ({"cpus_per_trial": 0.5}, {"CPU": 2.0}, 4),
        ({"cpus_per_trial": 3}, {"CPU": 2.0}, 1),  # never 0: one trial waits for a bigger node
        ({"cpus_per_trial": 1, "max_concurrent": 3}, {"CPU": 16.0}, 3),
        ({"cpus_per_trial": 1, "gpus_per_trial": 0.25}, {"CPU": 16.0, "GPU": 2.0}, 8),
        ({"cpus_per_trial": 1, "gpus_per_trial": 1}, {"CPU": 16.0}, 1),  # GPU workers not started yet
    ],
)
def test_trial_slots(resources: dict, total: dict[str, float], slots: int) -> None:
    assert trial_slots(ResourcesConfig(**resources), total) == slots

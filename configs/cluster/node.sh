#!/usr/bin/env bash
# What every node of a noisesweep Ray cluster runs. cluster.yaml (AWS) and configs/cluster/local.yaml
# (your own machines) call only this script for setup and start, so the two cannot drift apart.
#
#   node.sh setup VENV [DATA_ROOT]
#       The Python environment VENV: created with uv (Python 3.11) when it does not exist, then kept up to
#       date with the checkout in ~/noisesweep and Ray $RAY_VERSION at every `ray up`. An environment that
#       exists and was not created here is yours: it is checked, never changed. Then VENV/bin goes on the
#       PATH of login shells (one marked line in ~/.bashrc): Ray runs every command of `ray up`, `ray exec`
#       and `ray down` (its `ray stop`) in such a shell. With DATA_ROOT: the torchvision data sets of
#       configs/ are downloaded there.
#   node.sh start-head ARTIFACTS
#       Ray's head (dashboard and Jobs API on 127.0.0.1 only: reach them with `ray dashboard CONFIG`), then
#       an MLflow server on 127.0.0.1:5000 (runs in ~/mlflow.db, artifacts in ARTIFACTS, a folder or an
#       s3:// URI) unless one still answers after the old Ray stopped; the server stops when the head's Ray
#       stops (`ray down`).
#   node.sh start-worker
#       A Ray node that joins the head at $RAY_HEAD_IP (set by `ray up`).
#
# Token authentication: `ray up` copies the token of the machine it runs on (~/.ray/auth_token, see
# file_mounts) to every node, and every node runs Ray with RAY_AUTH_MODE=token.
# NOISESWEEP_DRY_RUN=1 prints the ray and mlflow commands instead of running them (tests parse them with
# Ray's and MLflow's own command lines).
set -euo pipefail

RAY_VERSION=2.60.0
RAY_PORT=6379
MLFLOW_PORT=5000
CHECKOUT=~/noisesweep
MARK="# added by noisesweep configs/cluster/node.sh"
export RAY_AUTH_MODE=token

die() { echo "node.sh: $*" >&2; exit 1; }
run() { if [ -n "${NOISESWEEP_DRY_RUN:-}" ]; then echo "$*"; else "$@"; fi; }
dry() { [ -n "${NOISESWEEP_DRY_RUN:-}" ]; }

setup() {
    local venv=${1:?usage: node.sh setup VENV [DATA_ROOT]} data=${2:-}
    if [ ! -e "$venv" ]; then
        command -v uv >/dev/null || test -x ~/.local/bin/uv || curl -LsSf https://astral.sh/uv/install.sh | sh
        "$(command -v uv || echo ~/.local/bin/uv)" venv --python 3.11 "$venv"
        touch "$venv/.noisesweep-managed"
    fi
    if [ -e "$venv/.noisesweep-managed" ]; then
        "$(command -v uv || echo ~/.local/bin/uv)" pip install --python "$venv/bin/python" \
            -e "$CHECKOUT" "ray[default,tune]==$RAY_VERSION"
    fi
    "$venv/bin/python" -c "import importlib.util as u, sys
sys.exit(any(u.find_spec(m) is None for m in ('ray', 'aiohttp_cors', 'mlflow', 'torch', 'optuna', 'sweep')))" \
        || die "$venv lacks noisesweep's dependencies or Ray's dashboard: pip install -e ~/noisesweep 'ray[default,tune]'"
    [ -x "$venv/bin/ray" ] && [ -x "$venv/bin/mlflow" ] || die "$venv/bin has no ray or mlflow command"
    touch ~/.bashrc
    grep -vF "$MARK" ~/.bashrc > ~/.bashrc.noisesweep || true
    echo "export PATH=\"$venv/bin:\$PATH\" RAY_AUTH_MODE=token  $MARK" >> ~/.bashrc.noisesweep
    cat ~/.bashrc.noisesweep > ~/.bashrc && rm ~/.bashrc.noisesweep
    if [ -n "$data" ]; then
        "$venv/bin/python" -c "from torchvision import datasets as d
for c in (d.MNIST, d.FashionMNIST, d.CIFAR10): c('$data', download=True)"
    fi
}

ready() {  # ray on the PATH (from setup) and the token from file_mounts
    dry && return
    command -v ray >/dev/null || die "ray is not on the PATH of this login shell: run node.sh setup first"
    [ -s ~/.ray/auth_token ] || die "no ~/.ray/auth_token: run 'ray get-auth-token --generate' where you run 'ray up'"
    ulimit -n 65536 2>/dev/null || true
}

gcs_up() { (exec 3<>"/dev/tcp/127.0.0.1/$RAY_PORT") 2>/dev/null; }

mlflow_up() {
    python -c "import urllib.request as u; u.urlopen('http://127.0.0.1:$MLFLOW_PORT/health', timeout=2)" 2>/dev/null
}

start_head() {
    local artifacts=${1:?usage: node.sh start-head ARTIFACTS}
    ready
    run ray stop
    # the MLflow server of an earlier `ray up` notices that its Ray is gone and stops (within ~16 s)
    dry || for _ in $(seq 40); do mlflow_up || break; sleep 0.5; done
    run ray start --head --port=$RAY_PORT --object-manager-port=8076 --dashboard-host=127.0.0.1 \
        --autoscaling-config=~/ray_bootstrap_config.yaml --disable-usage-stats
    local server=(mlflow server --host 127.0.0.1 --port "$MLFLOW_PORT" --workers 1
        --backend-store-uri "sqlite:///$HOME/mlflow.db" --artifacts-destination "$artifacts" --serve-artifacts)
    if dry; then echo "${server[*]}"; return; fi
    mlflow_up && return
    # MLflow's job runner (GenAI evaluation jobs, seven processes) is not used by noisesweep
    MLFLOW_SERVER_ENABLE_JOB_EXECUTION=false setsid bash "$0" serve-mlflow "${server[@]}" \
        > ~/mlflow.log 2>&1 < /dev/null &
    for _ in $(seq 240); do mlflow_up && return; sleep 0.5; done
    die "the MLflow server did not answer within 120 s: see ~/mlflow.log"
}

serve_mlflow() {  # the leader of its own session: runs the server until the head's Ray is gone
    "$@" &
    local server=$! down=0
    while kill -0 "$server" 2>/dev/null && [ "$down" -lt 3 ]; do
        sleep 2
        if gcs_up; then down=0; else down=$((down + 1)); fi
    done
    trap '' TERM
    kill -TERM -- -$$  # the server and its workers (this process group), then what is left after 10 s
    for _ in $(seq 20); do kill -0 "$server" 2>/dev/null || break; sleep 0.5; done
    kill -KILL -- -$$
}

start_worker() {
    ready
    run ray stop
    run ray start --address="${RAY_HEAD_IP:?set by ray up}:$RAY_PORT" --object-manager-port=8076 --disable-usage-stats
}

case "${1:-}" in
    setup) shift; setup "$@" ;;
    start-head) shift; start_head "$@" ;;
    start-worker) shift; start_worker "$@" ;;
    serve-mlflow) shift; serve_mlflow "$@" ;;
    *) die "usage: node.sh setup VENV [DATA_ROOT] | start-head ARTIFACTS | start-worker" ;;
esac

#!/usr/bin/env bash
# berth against the upstream kubelet v1.37.2, side by side (docs/benchmarks.md).
#
#   hack/bench.sh [BERTHBENCH_FLAGS...]   build everything, start the bench's own control
#                                         plane and containerd, run bench/cmd/berthbench
#                                         (A/B rounds + CRI floor), then the Go
#                                         micro-benchmarks, and stop what it started
#   hack/bench.sh down                    stop what an interrupted run left running
#
# Everything lives in _output/bench: state/ (hack/cluster.sh's STATE_DIR, with
# containerd in state/containerd), agents/{berth,upstream} (each agent's
# config, root dir, pod logs and log), results.{json,md}. The control plane
# listens on ports of its own and the node is called bench-node, so a
# developer's `make cluster` and the e2e suites are not disturbed. The
# upstream kubelet keeps its pod cgroups under /berthbench: it kills the
# processes of any pod cgroup it does not know under its cgroupRoot, which
# with the default (/) would include every other kubelet's pods on the host.
#
# Environment:
#   BERTH_BENCH_APISERVER_PORT 16443   BERTH_BENCH_ETCD_PORT 23990 (peer 24000)
#   BERTH_BENCH_KCM_PORT 10367         BERTH_BENCH_SCHEDULER_PORT 10369
#   BERTH_BENCH_KUBELET_PORT 11250     (both agents' kubelet API; healthz 11248)
#   BERTH_BENCH_KEEP=1                 leave the cluster running afterwards
#   BERTH_BENCH_MICRO=0                skip the Go micro-benchmarks
#   BASELINE=<git rev>                 also measure berth as built from that revision, as a
#                                      third agent ("baseline") in the same rounds: the
#                                      before/after of a change on the same day's machine
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
OUT="$REPO_ROOT/_output/bench"
STATE="$OUT/state"
CTRD="$STATE/containerd"
BIN="$OUT/bin"
NODE=bench-node

export BERTH_NODE_NAME="$NODE"
export BERTH_APISERVER_PORT="${BERTH_BENCH_APISERVER_PORT:-16443}"
export BERTH_ETCD_PORT="${BERTH_BENCH_ETCD_PORT:-23990}"
export BERTH_ETCD_PEER_PORT="${BERTH_BENCH_ETCD_PEER_PORT:-24000}"
export BERTH_KCM_PORT="${BERTH_BENCH_KCM_PORT:-10367}"
export BERTH_SCHEDULER_PORT="${BERTH_BENCH_SCHEDULER_PORT:-10369}"
KUBELET_PORT="${BERTH_BENCH_KUBELET_PORT:-11250}"
HEALTHZ_PORT=$((KUBELET_PORT - 2))

log() { echo "bench.sh: $*" >&2; }

down() {
	if [[ -f "$CTRD/config.toml" ]]; then
		"$REPO_ROOT/hack/containerd.sh" down "$CTRD" || true
	fi
	if [[ -d "$STATE" ]]; then
		"$REPO_ROOT/hack/cluster.sh" down "$STATE" || true
	fi
}

if [[ "${1:-}" == down ]]; then
	down
	exit 0
fi

start=$SECONDS
"$REPO_ROOT/hack/install-deps.sh"
"$REPO_ROOT/hack/images.sh" build
"$REPO_ROOT/hack/cluster.sh" build
mkdir -p "$BIN"
log "building berth and berthbench"
(
	cd "$REPO_ROOT"
	go build -o "$BIN/berth" ./cmd/berth
	go build -o "$BIN/berthbench" ./bench/cmd/berthbench
)
baseline_args=()
if [[ -n "${BASELINE:-}" ]]; then
	rev="$(git -C "$REPO_ROOT" rev-parse --verify "${BASELINE}^{commit}")"
	log "building the baseline berth at $rev"
	src="$OUT/baseline-src"
	rm -rf "$src"
	mkdir -p "$src"
	git -C "$REPO_ROOT" archive "$rev" | tar -x -C "$src"
	(cd "$src" && go build -o "$BIN/berth-baseline" ./cmd/berth)
	rm -rf "$src"
	baseline_args=(-baseline "$BIN/berth-baseline")
fi

# A fresh etcd and runtime every run: nothing from a previous run (or one
# that was interrupted) may be in the way.
down
rm -rf "$STATE"
trap 'if [[ "${BERTH_BENCH_KEEP:-}" != 1 ]]; then down; fi' EXIT
"$REPO_ROOT/hack/cluster.sh" up "$STATE"
"$REPO_ROOT/hack/containerd.sh" up "$CTRD"
log "set up in $((SECONDS - start))s"

"$BIN/berthbench" \
	-state "$STATE" -out "$OUT" \
	-berth "$BIN/berth" -kubelet "$REPO_ROOT/_output/cluster/bin/kubelet" \
	-cri "unix://$CTRD/containerd.sock" -runtime-pid-file "$CTRD/containerd.pid" -node "$NODE" \
	-port "$KUBELET_PORT" -healthz-port "$HEALTHZ_PORT" \
	"${baseline_args[@]}" "$@"

if [[ "${BERTH_BENCH_MICRO:-1}" != 0 ]]; then
	echo
	echo "Go micro-benchmarks (go test -run='^\$' -bench=. -benchmem ./internal/...):"
	(cd "$REPO_ROOT" && go test -run='^$' -bench=. -benchmem ./internal/... | grep -E '^(pkg:|Benchmark)')
fi
log "done in $((SECONDS - start))s"

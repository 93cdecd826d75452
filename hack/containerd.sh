#!/usr/bin/env bash
# A private containerd for development and tests.
#
#   hack/containerd.sh up     [STATE_DIR]   start it, wait for it, import the local images
#   hack/containerd.sh down   [STATE_DIR]   stop it and everything it ran; STATE_DIR stays, removable
#   hack/containerd.sh status [STATE_DIR]   exit 0 if it answers
#   hack/containerd.sh down-all [ROOT...]   `down` every instance whose STATE_DIR is under
#                                           a ROOT (default _output): the CI safety net
#
# Everything lives under STATE_DIR (default _output/containerd): config.toml,
# containerd.sock (+ .ttrpc), containerd.pid, containerd.log, root/, state/,
# the runc roots (runc/, and runc-test-handler/ of the second runtime handler
# "test-handler"), the CNI config and IPAM store, and the registry hosts config.
# Several instances may run at once with different STATE_DIRs; each gets its
# own bridge and pod subnet, derived from a hash of STATE_DIR. `up` writes
# STATE_DIR/env (CONTAINERD_ADDRESS, CNI_BRIDGE, POD_SUBNET) for callers.
#
# Keep STATE_DIR short: a unix socket path is limited to 107 bytes.
#
# Environment:
#   BERTH_INSECURE_REGISTRIES  space-separated registries pulled over plain HTTP
#                              (default 127.0.0.1:5000; empty for none)
#   BERTH_SKIP_IMAGES=1        do not import the local images on `up`
#   BERTH_CNI_TEMPLATE=1       no CNI configuration of ours: containerd writes it from a
#                              template (conf_template) once the kubelet hands it the
#                              node's pod CIDR (CRI UpdateRuntimeConfig), as on a node
#                              whose CIDR the controller-manager allocates
#                              (hack/multinode.sh); POD_SUBNET is then empty
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CNI_BIN_DIR="/usr/lib/cni"
PAUSE_IMAGE="registry.k8s.io/pause:3.10"
INSECURE_REGISTRIES="${BERTH_INSECURE_REGISTRIES-127.0.0.1:5000}"

usage() {
	echo "usage: $0 up|down|status [STATE_DIR] | down-all [ROOT...]" >&2
	exit 2
}

CMD="${1:-}"
[[ -n "$CMD" ]] || usage

# down-all finds instances by the marker line at the top of their config.
if [[ "$CMD" == down-all ]]; then
	shift
	(($# > 0)) || set -- "$REPO_ROOT/_output"
	rc=0
	while read -r cfg; do
		"${BASH_SOURCE[0]}" down "$(dirname "$cfg")" || rc=1
	done < <(find "$@" -maxdepth 5 -name config.toml -exec grep -l -x '# written by berth hack/containerd.sh' {} + 2>/dev/null)
	exit "$rc"
fi
S="$(realpath -m "${2:-$REPO_ROOT/_output/containerd}")"
SOCK="$S/containerd.sock"
CONF_TEMPLATE=""
[[ "${BERTH_CNI_TEMPLATE:-}" != 1 ]] || CONF_TEMPLATE="$S/cni/template.conflist"
PIDFILE="$S/containerd.pid"
LOG="$S/containerd.log"

log() { echo "containerd.sh[$S]: $*" >&2; }
die() {
	log "error: $*"
	exit 1
}

# running: the process exists and is not a zombie.
running() {
	local stat
	stat="$(cat "/proc/$1/stat" 2>/dev/null)" || return 1
	stat="${stat##*) }"
	[[ "${stat:0:1}" != Z ]]
}

pid_alive() {
	local pid
	[[ -f "$PIDFILE" ]] || return 1
	pid="$(cat "$PIDFILE")"
	[[ -n "$pid" ]] && running "$pid" || return 1
	# The pid file could be stale and the number reused by another process.
	[[ "$(cat "/proc/$pid/comm" 2>/dev/null)" == containerd ]]
}

answers() { ctr --address "$SOCK" --timeout 2s version >/dev/null 2>&1; }

# pick_network chooses a bridge name and a /24 in 10.64.0.0/10 from a hash of
# the state dir, skipping any subnet already routed through another device.
pick_network() {
	local i h a b subnet dev
	for i in $(seq 0 31); do
		h="$(printf '%s#%d' "$S" "$i" | sha256sum | cut -c1-8)"
		a=$((64 + 0x${h:0:2} % 64))
		b=$((0x${h:2:2}))
		subnet="10.$a.$b.0/24"
		CNI_BRIDGE="berth-${h:4:4}$(printf '%02x' "$i")"
		dev="$(ip -4 route show "$subnet" 2>/dev/null | awk '{for (i = 1; i < NF; i++) if ($i == "dev") print $(i+1)}')"
		if [[ -z "$dev" || "$dev" == "$CNI_BRIDGE" ]]; then
			POD_SUBNET="$subnet"
			POD_GATEWAY="10.$a.$b.1"
			return 0
		fi
	done
	die "no free pod subnet found"
}

write_config() {
	local reg
	mkdir -p "$S/root" "$S/state" "$S/opt" "$S/runc" "$S/runc-test-handler" "$S/cni/net.d" "$S/cni/ipam" "$S/certs.d"

	# CRI notes:
	# - restrict_oom_score_adj: we lack CAP_SYS_RESOURCE, so lowering a
	#   container's oom_score_adj below ours (the sandbox asks for -998) fails in
	#   runc with "can't get final child's PID from pipe: EOF". This clamps it.
	# - netns_mounts_under_state_dir: pod network namespaces are mounted under
	#   STATE_DIR instead of /var/run/netns, so `down` can find and unmount them.
	# - registry.config_path: hosts.toml per registry; the mirrors table cannot
	#   be combined with it.
	cat >"$S/config.toml" <<-EOF
		# written by berth hack/containerd.sh
		version = 2
		root = "$S/root"
		state = "$S/state"
		disabled_plugins = [
		  "io.containerd.snapshotter.v1.aufs",
		  "io.containerd.snapshotter.v1.btrfs",
		  "io.containerd.snapshotter.v1.devmapper",
		  "io.containerd.snapshotter.v1.zfs",
		  "io.containerd.tracing.processor.v1.otlp",
		  "io.containerd.internal.v1.tracing",
		]

		[grpc]
		  address = "$SOCK"

		[ttrpc]
		  address = "$SOCK.ttrpc"

		# Empty addresses: no debug or metrics listener.
		[debug]
		  address = ""
		  level = "info"

		[metrics]
		  address = ""

		[plugins."io.containerd.internal.v1.opt"]
		  path = "$S/opt"

		# The legacy v1 runtime cannot be disabled (the tasks service needs it),
		# but it is never used; keep its state under STATE_DIR all the same.
		[plugins."io.containerd.runtime.v1.linux"]
		  runtime_root = "$S/runc-v1"

		[plugins."io.containerd.grpc.v1.cri"]
		  sandbox_image = "$PAUSE_IMAGE"
		  restrict_oom_score_adj = true
		  netns_mounts_under_state_dir = true
		  disable_apparmor = true
		  stream_server_address = "127.0.0.1"
		  stream_server_port = "0"

		  [plugins."io.containerd.grpc.v1.cri".containerd]
		    snapshotter = "overlayfs"
		    default_runtime_name = "runc"

		    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
		      runtime_type = "io.containerd.runc.v2"

		      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
		        SystemdCgroup = false
		        Root = "$S/runc"

		    # A second handler for RuntimeClass tests: runc again, with a
		    # state root of its own, so a test sees which handler ran a
		    # sandbox. Named as upstream's e2e expects a preconfigured one.
		    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.test-handler]
		      runtime_type = "io.containerd.runc.v2"

		      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.test-handler.options]
		        SystemdCgroup = false
		        Root = "$S/runc-test-handler"

		  [plugins."io.containerd.grpc.v1.cri".cni]
		    bin_dir = "$CNI_BIN_DIR"
		    conf_dir = "$S/cni/net.d"
		    max_conf_num = 1
		    conf_template = "$CONF_TEMPLATE"

		  [plugins."io.containerd.grpc.v1.cri".registry]
		    config_path = "$S/certs.d"
	EOF

	# The loopback interface is set up by containerd itself (it runs
	# "loopback" from bin_dir); the conflist only describes eth0. With a
	# template, containerd writes net.d/10-containerd-net.conflist itself,
	# with the pod CIDR for {{.PodCIDR}}; a previous run's must not stay.
	rm -f "$S/cni/net.d/"*
	local subnet="$POD_SUBNET" gateway=', "gateway": "'"$POD_GATEWAY"'"' conf="$S/cni/net.d/10-berth.conflist"
	if [[ -n "$CONF_TEMPLATE" ]]; then
		subnet='{{.PodCIDR}}' gateway='' conf="$CONF_TEMPLATE" POD_SUBNET=''
	fi
	cat >"$conf" <<-EOF
		{
		  "cniVersion": "1.0.0",
		  "name": "$CNI_BRIDGE",
		  "plugins": [
		    {
		      "type": "bridge",
		      "bridge": "$CNI_BRIDGE",
		      "isGateway": true,
		      "ipMasq": false,
		      "hairpinMode": true,
		      "ipam": {
		        "type": "host-local",
		        "ranges": [[{"subnet": "$subnet"$gateway}]],
		        "routes": [{"dst": "0.0.0.0/0"}],
		        "dataDir": "$S/cni/ipam"
		      }
		    },
		    {"type": "portmap", "capabilities": {"portMappings": true}}
		  ]
		}
	EOF

	rm -rf "$S/certs.d"
	for reg in $INSECURE_REGISTRIES; do
		mkdir -p "$S/certs.d/$reg"
		cat >"$S/certs.d/$reg/hosts.toml" <<-EOF
			server = "http://$reg"

			[host."http://$reg"]
			  capabilities = ["pull", "resolve", "push"]
		EOF
	done

	cat >"$S/env" <<-EOF
		CONTAINERD_ADDRESS=$SOCK
		CONTAINERD_STATE_DIR=$S
		CNI_BRIDGE=$CNI_BRIDGE
		POD_SUBNET=$POD_SUBNET
	EOF
}

up() {
	[[ $((${#SOCK} + 6)) -lt 108 ]] || die "socket path $SOCK.ttrpc is too long for a unix socket; use a shorter STATE_DIR"
	if pid_alive && answers; then
		log "already running (pid $(cat "$PIDFILE"))"
	else
		# A daemon that no longer answers, and the leftovers of one that
		# died, must go before a new one starts on the same state.
		stop_daemon
		cleanup_leftovers
		pick_network
		write_config
		: >"$LOG"
		log "starting; log at $LOG"
		# setsid: the daemon must not share the caller's process group (a ^C in
		# make would kill it half-way); no inherited stdio, or a caller reading
		# our output (go test's exec) would wait for the daemon to exit.
		# 8>&-: the daemon must not inherit (and so hold) our lock.
		setsid containerd --config "$S/config.toml" </dev/null >>"$LOG" 2>&1 8>&- &
		local pid=$! deadline=$((SECONDS + 30))
		echo "$pid" >"$PIDFILE"
		until answers; do
			if ! running "$pid" || ((SECONDS >= deadline)); then
				log "did not come up; last lines of $LOG:"
				tail -n 40 "$LOG" >&2 || true
				stop_daemon
				exit 1
			fi
			sleep 0.2
		done
		wait_cri "$deadline"
		log "running (pid $(cat "$PIDFILE")), socket $SOCK, bridge $(grep CNI_BRIDGE "$S/env" | cut -d= -f2)"
	fi
	if [[ "${BERTH_SKIP_IMAGES:-}" != 1 ]]; then
		"$REPO_ROOT/hack/images.sh" import "$SOCK"
	fi
}

# wait_cri waits until the CRI plugin has loaded; it comes up a moment after
# the socket answers, and fails there (not at startup) on a bad config.
wait_cri() {
	local deadline="$1" status
	while :; do
		status="$(ctr --address "$SOCK" plugins ls 2>/dev/null | awk '$1 == "io.containerd.grpc.v1" && $2 == "cri" {print $NF}')"
		[[ "$status" == ok ]] && return 0
		if [[ "$status" == error ]] || ((SECONDS >= deadline)); then
			log "CRI plugin not ready (status '${status:-none}'); last lines of $LOG:"
			tail -n 40 "$LOG" >&2 || true
			stop_daemon
			exit 1
		fi
		sleep 0.2
	done
}

# stop_daemon stops the containerd in PIDFILE: TERM, then KILL after 10 s.
stop_daemon() {
	local pid
	pid_alive || return 0
	pid="$(cat "$PIDFILE")"
	kill -TERM "$pid" 2>/dev/null || true
	for _ in $(seq 1 100); do
		[[ -d "/proc/$pid" ]] || break
		sleep 0.1
	done
	if [[ -d "/proc/$pid" ]]; then
		log "containerd $pid ignored SIGTERM; killing"
		kill -KILL "$pid" 2>/dev/null || true
		sleep 0.2
	fi
}

# remove_tasks kills and deletes every task through containerd while it is
# up, so that shims exit and containerd cleans its mounts and cgroups itself.
remove_tasks() {
	local ns id
	for ns in $(ctr --address "$SOCK" namespaces ls -q 2>/dev/null); do
		for id in $(ctr --address "$SOCK" -n "$ns" tasks ls -q 2>/dev/null); do
			ctr --address "$SOCK" -n "$ns" --timeout 10s tasks rm -f "$id" >/dev/null 2>&1 || true
		done
	done
}

# shim_pids prints the pids of runc shims serving this instance's socket
# (their command line has "-address SOCK").
shim_pids() {
	local d i argv
	for d in /proc/[0-9]*; do
		{ mapfile -d '' -t argv <"$d/cmdline"; } 2>/dev/null || continue
		[[ "${argv[0]:-}" == *containerd-shim-runc-v2 ]] || continue
		for ((i = 1; i + 1 < ${#argv[@]}; i++)); do
			if [[ "${argv[i]}" == -address && "${argv[i + 1]}" == "$SOCK" ]]; then
				echo "${d#/proc/}"
				break
			fi
		done
	done
}

# cleanup_leftovers removes what a dead instance can leave behind: running
# containers, shims, mounts and the bridge. Safe to run when nothing is left.
cleanup_leftovers() {
	local ns id pid addr sock mnt bridge
	# Containers first, via runc's own state: it knows their cgroups.
	for ns in "$S"/runc/*/ "$S"/runc-test-handler/*/; do
		[[ -d "$ns" ]] || continue
		for id in $(runc --root "$ns" list -q 2>/dev/null); do
			runc --root "$ns" delete --force "$id" >/dev/null 2>&1 || true
		done
	done
	for pid in $(shim_pids); do
		kill -KILL "$pid" 2>/dev/null || true
	done
	# A killed shim leaves its socket in /run/containerd/s; each task bundle
	# says which one it used.
	for addr in "$S"/state/io.containerd.runtime.v2.task/*/*/address; do
		[[ -f "$addr" ]] || continue
		sock="$(sed -n 's|^unix://||p' "$addr")"
		if [[ "$sock" == /run/containerd/s/* && -S "$sock" ]]; then
			rm -f "$sock"
		fi
	done
	# A pod that was never stopped through CRI leaves libcni's result cache in
	# /var/lib/cni/results (not configurable in containerd 1.6), named by
	# network (our bridge name) or "cni-loopback" and the sandbox id.
	for id in "$S"/root/io.containerd.grpc.v1.cri/sandboxes/*; do
		if [[ -d "$id" ]]; then
			rm -f "/var/lib/cni/results/cni-loopback-$(basename "$id")-lo"
		fi
	done
	# Deepest mounts first; lazy, because a dying process may still hold one.
	while read -r mnt; do
		umount -l "$mnt" 2>/dev/null || true
	done < <(awk -v p="$S/" 'index($5, p) == 1 {print $5}' /proc/self/mountinfo | sort -r)
	if [[ -f "$S/env" ]]; then
		bridge="$(sed -n 's/^CNI_BRIDGE=//p' "$S/env")"
		if [[ -n "$bridge" ]] && ip link show "$bridge" >/dev/null 2>&1; then
			ip link delete "$bridge" || true
		fi
		if [[ -n "$bridge" ]]; then
			rm -f "/var/lib/cni/results/$bridge-"*
			cleanup_hostports "$bridge"
		fi
	fi
	rm -f "$SOCK" "$SOCK.ttrpc" "$PIDFILE"
}

# cleanup_hostports removes the hostPort rules of pods that were never
# stopped through CRI. portmap's jump rule names the network (our bridge
# name) in a comment and jumps to that pod's own CNI-DN-* chain.
cleanup_hostports() {
	local bridge="$1" rule chain
	command -v iptables >/dev/null || return 0
	while read -r rule; do
		chain="${rule##*-j }"
		# The rule as printed is shell-quoted (its comment has quotes).
		eval "iptables -t nat ${rule/#-A /-D }" || true
		iptables -t nat -F "$chain" 2>/dev/null || true
		iptables -t nat -X "$chain" 2>/dev/null || true
	done < <(iptables -t nat -S CNI-HOSTPORT-DNAT 2>/dev/null | grep -F -- "dnat name: \\\"$bridge\\\"")
}

down() {
	[[ -d "$S" ]] || {
		log "nothing to stop"
		return 0
	}
	local was="was not running"
	if pid_alive; then
		was="stopped"
		if answers; then
			remove_tasks
		fi
	fi
	stop_daemon
	cleanup_leftovers
	if [[ -n "$(shim_pids)" ]] || awk -v p="$S/" 'index($5, p) == 1 {found = 1} END {exit !found}' /proc/self/mountinfo; then
		die "shims or mounts remain under $S"
	fi
	log "$was; nothing left running"
}

status() {
	if pid_alive && answers; then
		echo "running: pid $(cat "$PIDFILE"), socket $SOCK"
		ctr --address "$SOCK" version
		return 0
	fi
	echo "not running ($S)"
	return 1
}

[[ "$CMD" != up ]] || mkdir -p "$S"
# One command at a time per instance: tests may race up/down on one STATE_DIR.
if [[ -d "$S" ]]; then
	exec 8>"$S/.lock"
	flock 8
fi
case "$CMD" in
up) up ;;
down) down ;;
status) status ;;
*) usage ;;
esac

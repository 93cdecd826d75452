#!/usr/bin/env bash
# A cluster of several berth nodes on this machine (make cluster NODES=N).
#
#   hack/multinode.sh up N [STATE_DIR]   the control plane (hack/cluster.sh) on a bridge of
#                                        its own, N berth nodes, each in its own network
#                                        namespace with its own containerd, and the add-ons
#                                        (hack/addons.sh: kube-proxy, CoreDNS, metrics-server);
#                                        wait until every node is Ready and the add-ons run
#   hack/multinode.sh down [STATE_DIR]   stop all of it; remove every namespace, veth, route,
#                                        mount and cgroup it made, and the bridge
#   hack/multinode.sh status [STATE_DIR] what runs
#
# The network: a bridge on the host (BERTH_MN_BRIDGE, default berth-mn)
# holds NET.1/24 (BERTH_MN_NET, default 10.233.0), where the API server
# listens and which it advertises. Node i is the network namespace
# NAME-i (ip netns), linked to the bridge by a veth pair (NET.(10+i) on its
# side, default route through the bridge's address): its own loopback, its
# own ports (every kubelet on 10250), its own iptables (kube-proxy's). The
# controller-manager allocates each Node a /24 of the cluster CIDR
# (BERTH_MN_CLUSTER_CIDR, default 10.244.0.0/16); berth hands it to its
# containerd (CRI UpdateRuntimeConfig), which writes the node's CNI
# configuration from a template (hack/containerd.sh, BERTH_CNI_TEMPLATE).
# Once a Node has its CIDR, a route to it through that node's address goes
# into every other node and into the host (the API server reaches
# metrics-server's pod directly: --enable-aggregator-routing). No traffic
# leaves the bridge: the nodes have no way out of the machine, and nothing
# is masqueraded.
#
# Nodes are named NAME-1..NAME-N (BERTH_MN_NODE_PREFIX, default
# berth-node). Each has STATE_DIR/nodes/NAME-i with its containerd, berth's
# root dir, configuration and log, and cgroupRoot /NAME-i: the kubelets on
# this machine must not manage one another's pod cgroups. berth serves the
# kubelet API with a certificate from a kubelet-serving CSR
# (serverTLSBootstrap), which `up` approves as an operator would; the API
# server and metrics-server verify it against the cluster CA.
#
# STATE_DIR defaults to _output/cluster/state; hack/cluster.sh's
# environment (ports, BERTH_BIN, ...) applies to the control plane. One
# cluster per bridge and node network at a time: tests pick other ones.
#
# Environment:
#   BERTH_MN_BRIDGE, BERTH_MN_NET, BERTH_MN_CLUSTER_CIDR, BERTH_MN_NODE_PREFIX   as above
#   BERTH_MN_TIMEOUT   seconds `up` waits for the nodes and then for the add-ons (default 180)
#   BERTH_MN_ADDONS=0  no add-ons (nodes and pod network only)
#   BERTH_BIN          the berth binary (default bin/berth)
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BIN="$(realpath -m "${BERTH_CLUSTER_BIN_DIR:-$REPO_ROOT/_output/cluster/bin}")"
KUBECTL="$BIN/kubectl"
DNS_IP="10.0.0.10" # in hack/cluster.sh's service CIDR, 10.0.0.0/24
APISERVER_PORT="${BERTH_APISERVER_PORT:-6443}"
TIMEOUT="${BERTH_MN_TIMEOUT:-180}"

usage() {
	echo "usage: $0 up N [STATE_DIR] | down [STATE_DIR] | status [STATE_DIR]" >&2
	exit 2
}

CMD="${1:-}"
case "$CMD" in
up)
	NODES="${2:-}"
	[[ "$NODES" =~ ^[1-9][0-9]?$ ]] || usage
	S="$(realpath -m "${3:-$REPO_ROOT/_output/cluster/state}")"
	;;
down | status) S="$(realpath -m "${2:-$REPO_ROOT/_output/cluster/state}")" ;;
*) usage ;;
esac

log() { echo "multinode.sh[$S]: $*" >&2; }
die() {
	log "error: $*"
	exit 1
}

# The settings `up` chose are kept in STATE_DIR/multinode.env, so that
# `down` and `status` undo exactly that whatever their environment says.
load_settings() {
	BRIDGE="${BERTH_MN_BRIDGE:-berth-mn}"
	NET="${BERTH_MN_NET:-10.233.0}"
	CLUSTER_CIDR="${BERTH_MN_CLUSTER_CIDR:-10.244.0.0/16}"
	PREFIX="${BERTH_MN_NODE_PREFIX:-berth-node}"
	if [[ "$CMD" != up && -f "$S/multinode.env" ]]; then
		# shellcheck source=/dev/null
		source "$S/multinode.env"
	fi
	HOST_IP="$NET.1"
	APISERVER="https://$HOST_IP:$APISERVER_PORT"
	((${#BRIDGE} <= 12)) || die "bridge name $BRIDGE is too long (12 characters at most: its veths add 3)"
}

write_settings() {
	cat >"$S/multinode.env" <<-EOF
		BRIDGE=$BRIDGE
		NET=$NET
		CLUSTER_CIDR=$CLUSTER_CIDR
		PREFIX=$PREFIX
		NODES=$NODES
	EOF
}

node_name() { echo "$PREFIX-$1"; }
node_ip() { echo "$NET.$((10 + $1))"; }
node_dir() { echo "$S/nodes/$(node_name "$1")"; }
netns() { echo "$(node_name "$1")"; }
veth() { echo "${BRIDGE}v$1"; }
# in_node I CMD... runs CMD in node I's network namespace only: it shares
# the host's mounts, so containerd's mounts stay where hack/containerd.sh
# looks for them.
in_node() {
	local i="$1"
	shift
	nsenter --net="/run/netns/$(netns "$i")" -- "$@"
}

kubectl_admin() { "$KUBECTL" --kubeconfig "$S/admin.kubeconfig" --request-timeout=10s "$@"; }

# running: the process exists and is not a zombie.
running() {
	local stat
	stat="$(cat "/proc/$1/stat" 2>/dev/null)" || return 1
	stat="${stat##*) }"
	[[ "${stat:0:1}" != Z ]]
}

berth_pid() {
	local f="$1/berth.pid" pid
	[[ -f "$f" ]] || return 1
	pid="$(cat "$f")"
	[[ -n "$pid" ]] && running "$pid" && [[ "$(cat "/proc/$pid/comm" 2>/dev/null)" == berth ]] || return 1
	echo "$pid"
}

# --- network -----------------------------------------------------------------

bridge_up() {
	if ! ip link show "$BRIDGE" >/dev/null 2>&1; then
		log "creating bridge $BRIDGE with $HOST_IP/24"
		ip link add "$BRIDGE" type bridge
	fi
	ip addr replace "$HOST_IP/24" dev "$BRIDGE"
	ip link set "$BRIDGE" up
}

# netns_up I makes node I's network namespace and links it to the bridge.
netns_up() {
	local i="$1" ns v ip
	ns="$(netns "$i")" v="$(veth "$i")" ip="$(node_ip "$i")"
	[[ -e "/run/netns/$ns" ]] || ip netns add "$ns"
	if ! ip link show "$v" >/dev/null 2>&1; then
		ip link add "$v" type veth peer name eth0 netns "$ns"
	fi
	ip link set "$v" master "$BRIDGE" up
	in_node "$i" ip link set lo up
	in_node "$i" ip addr replace "$ip/24" dev eth0
	in_node "$i" ip link set eth0 up
	in_node "$i" ip route replace default via "$HOST_IP" dev eth0
	# The node routes for its pods; bridged pod traffic goes through
	# iptables (kube-proxy's rules for Services between pods of one node).
	in_node "$i" sysctl -qw net.ipv4.ip_forward=1
	if in_node "$i" test -e /proc/sys/net/bridge/bridge-nf-call-iptables; then
		in_node "$i" sysctl -qw net.bridge.bridge-nf-call-iptables=1
	fi
}

# routes_up adds, once every Node has its pod CIDR, a route to each node's
# pods through its address, in the host and in every other node.
routes_up() {
	local i j cidr
	for i in $(seq 1 "$NODES"); do
		cidr="$(kubectl_admin get node "$(node_name "$i")" -o jsonpath='{.spec.podCIDR}')"
		[[ -n "$cidr" ]] || die "node $(node_name "$i") has no pod CIDR"
		ip route replace "$cidr" via "$(node_ip "$i")" dev "$BRIDGE"
		for j in $(seq 1 "$NODES"); do
			((i == j)) || in_node "$j" ip route replace "$cidr" via "$(node_ip "$i")" dev eth0
		done
	done
	log "routes to every node's pod CIDR in place"
}

# --- nodes -------------------------------------------------------------------

cgroup_root() { echo "/$(node_name "$1")"; }

# node_up I starts node I's containerd (with the add-on images) and berth.
node_up() {
	local i="$1" d name sock h pid
	d="$(node_dir "$i")" name="$(node_name "$i")"
	mkdir -p "$d/root" "$d/pod-logs" "$d/manifests"
	in_node "$i" env BERTH_CNI_TEMPLATE=1 "$REPO_ROOT/hack/containerd.sh" up "$d/containerd" 2>>"$d/up.log"
	sock="$d/containerd/containerd.sock"
	if [[ "${BERTH_MN_ADDONS:-1}" != 0 ]]; then
		"$REPO_ROOT/hack/addons.sh" import "$sock" 2>>"$d/up.log"
	fi
	# cgroupfs: the root must exist in every hierarchy.
	for h in /sys/fs/cgroup/*/ /sys/fs/cgroup/; do
		[[ -d "$h" && -w "$h" ]] && mkdir -p "$h${name}" 2>/dev/null || true
	done
	cat >"$d/kubelet-config.yaml" <<-EOF
		apiVersion: kubelet.config.k8s.io/v1beta1
		kind: KubeletConfiguration
		containerRuntimeEndpoint: unix://$sock
		cgroupDriver: cgroupfs
		cgroupRoot: $(cgroup_root "$i")
		address: $(node_ip "$i")
		readOnlyPort: 0
		port: 10250
		healthzBindAddress: 127.0.0.1
		healthzPort: 10248
		staticPodPath: $d/manifests
		podLogsDir: $d/pod-logs
		clusterDomain: cluster.local
		clusterDNS: [$DNS_IP]
		serverTLSBootstrap: true
		authentication:
		  anonymous:
		    enabled: false
		  webhook:
		    enabled: true
		  x509:
		    clientCAFile: $S/pki/ca.crt
		authorization:
		  mode: Webhook
	EOF
	if pid="$(berth_pid "$d")"; then
		log "berth already runs as $name (pid $pid)"
		return 0
	fi
	log "starting berth as $name ($(node_ip "$i")); log at $d/berth.log"
	# setsid, no inherited stdio or locks: as hack/cluster.sh starts daemons.
	setsid nsenter --net="/run/netns/$(netns "$i")" -- "$BERTH" \
		--config "$d/kubelet-config.yaml" \
		--kubeconfig "$S/node-$name.kubeconfig" \
		--hostname-override "$name" \
		--node-ip "$(node_ip "$i")" \
		--root-dir "$d/root" \
		</dev/null >>"$d/berth.log" 2>&1 8>&- 9>&- &
	echo "$!" >"$d/berth.pid"
}

# approve_serving_csrs approves the pending kubelet-serving CSRs of our
# nodes, as an operator does for serverTLSBootstrap (the controller-manager
# approves only client certificates); prints how many nodes have one.
approve_serving_csrs() {
	local i name user cond signer approved=0
	local -A ours=()
	for i in $(seq 1 "$NODES"); do ours["system:node:$(node_name "$i")"]=1; done
	while read -r name signer user cond; do
		[[ "$signer" == kubernetes.io/kubelet-serving && -n "${ours[$user]:-}" ]] || continue
		if [[ "$cond" == "<none>" ]]; then
			kubectl_admin certificate approve "$name" >/dev/null
		fi
		approved=$((approved + 1))
	done < <(kubectl_admin get csr --no-headers \
		-o custom-columns=N:.metadata.name,S:.spec.signerName,U:.spec.username,C:.status.conditions[0].type 2>/dev/null)
	echo "$approved"
}

node_ready() {
	[[ "$(kubectl_admin get node "$1" -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}' 2>/dev/null)" == True ]]
}

# wait_nodes waits until every Node exists with a pod CIDR (then routes
# them) and is Ready, approving serving CSRs as they come.
wait_nodes() {
	local deadline=$((SECONDS + TIMEOUT)) i ready routed=0 served
	log "waiting up to ${TIMEOUT}s for $NODES nodes to be Ready"
	while :; do
		ready=0
		for i in $(seq 1 "$NODES"); do
			berth_pid "$(node_dir "$i")" >/dev/null || {
				tail -n 30 "$(node_dir "$i")/berth.log" >&2
				die "berth of $(node_name "$i") exited; log at $(node_dir "$i")/berth.log"
			}
			node_ready "$(node_name "$i")" && ready=$((ready + 1))
		done
		served="$(approve_serving_csrs)"
		if ((routed == 0)) && [[ "$(kubectl_admin get nodes -o jsonpath='{range .items[*]}{.spec.podCIDR}{"\n"}{end}' 2>/dev/null | grep -c .)" -ge "$NODES" ]]; then
			routes_up
			routed=1
		fi
		((ready == NODES && routed == 1 && served >= NODES)) && break
		if ((SECONDS >= deadline)); then
			kubectl_admin get nodes -o wide >&2 || true
			die "$ready of $NODES nodes Ready, $served serving certificates after ${TIMEOUT}s"
		fi
		sleep 1
	done
	log "$NODES nodes Ready"
}

# --- add-ons -----------------------------------------------------------------

proxies_ready() {
	[[ "$(kubectl_admin -n kube-system get daemonset kube-proxy -o jsonpath='{.status.numberReady}' 2>/dev/null)" == "$NODES" ]]
}

# addons_up starts kube-proxy first: CoreDNS and metrics-server reach the
# API server through the kubernetes Service, which works once its rules
# are there (metrics-server exits when it cannot, and then waits out a
# back-off).
addons_up() {
	local deadline=$((SECONDS + TIMEOUT)) want
	local apply=("$REPO_ROOT/hack/addons.sh" apply "$S/admin.kubeconfig" "$APISERVER" "$CLUSTER_CIDR" "$DNS_IP")
	"${apply[@]}" kube-proxy
	log "waiting up to ${TIMEOUT}s for kube-proxy on every node, then CoreDNS and metrics-server"
	until proxies_ready; do
		((SECONDS < deadline)) || break
		sleep 1
	done
	"${apply[@]}" coredns metrics-server
	until proxies_ready &&
		kubectl_admin -n kube-system wait --for=condition=Available --timeout=1s deployment/coredns deployment/metrics-server >/dev/null 2>&1 &&
		[[ "$(kubectl_admin get apiservice v1beta1.metrics.k8s.io -o jsonpath='{.status.conditions[?(@.type=="Available")].status}' 2>/dev/null)" == True ]]; do
		if ((SECONDS >= deadline)); then
			kubectl_admin -n kube-system get pods -o wide >&2 || true
			kubectl_admin get apiservice v1beta1.metrics.k8s.io >&2 || true
			die "the add-ons are not ready after ${TIMEOUT}s"
		fi
		sleep 2
	done
	want="$NODES"
	log "add-ons ready: kube-proxy on $want nodes, CoreDNS at $DNS_IP, metrics-server"
}

# --- up, down, status --------------------------------------------------------

up() {
	local i names=() pids=() rc=0 start=$SECONDS
	((EUID == 0)) || die "must run as root (namespaces, bridge, routes)"
	load_settings
	BERTH="$(realpath -m "${BERTH_BIN:-$REPO_ROOT/bin/berth}")"
	[[ -x "$BERTH" ]] || die "no berth binary at $BERTH; run make build"
	mkdir -p "$S"
	write_settings
	for i in $(seq 1 "$NODES"); do names+=("$(node_name "$i")"); done

	bridge_up
	for i in $(seq 1 "$NODES"); do netns_up "$i"; done
	# The add-ons' images build (cached) while the control plane starts.
	if [[ "${BERTH_MN_ADDONS:-1}" != 0 ]]; then
		"$REPO_ROOT/hack/addons.sh" build &
		pids+=($!)
	fi
	# The API server on the bridge (reaching the kubelets at their
	# InternalIP: hack/cluster.sh), verifying their serving
	# certificates, and with the
	# aggregation layer (metrics-server): the front proxy's client
	# certificate comes from the cluster CA, with its CN alone allowed.
	# hack/cluster.sh reads each flag variable as one line of words.
	local apiserver_flags=(
		"${BERTH_APISERVER_FLAGS:-}" --kubelet-certificate-authority="$S/pki/ca.crt" --enable-aggregator-routing=true
		--requestheader-client-ca-file="$S/pki/ca.crt" --requestheader-allowed-names=front-proxy-client
		--requestheader-username-headers=X-Remote-User --requestheader-group-headers=X-Remote-Group
		--requestheader-extra-headers-prefix=X-Remote-Extra-
		--proxy-client-cert-file="$S/pki/front-proxy-client.crt" --proxy-client-key-file="$S/pki/front-proxy-client.key"
	)
	local kcm_flags=("${BERTH_KCM_FLAGS:-}" --allocate-node-cidrs=true --cluster-cidr="$CLUSTER_CIDR" --node-cidr-mask-size=24)
	BERTH_APISERVER_HOST="$HOST_IP" BERTH_NODE_NAMES="$(
		IFS=,
		echo "${names[*]}"
	)" \
		BERTH_APISERVER_FLAGS="${apiserver_flags[*]}" BERTH_KCM_FLAGS="${kcm_flags[*]}" \
		"$REPO_ROOT/hack/cluster.sh" up "$S" || rc=$?
	for i in "${pids[@]}"; do wait "$i" || rc=$?; done
	((rc == 0)) || die "the control plane or the add-on images failed (above)"
	log "control plane up at $APISERVER in $((SECONDS - start))s"

	# Each node's containerd imports images: all at once.
	pids=()
	for i in $(seq 1 "$NODES"); do
		node_up "$i" &
		pids+=($!)
	done
	for i in "${pids[@]}"; do wait "$i" || rc=$?; done
	((rc == 0)) || die "a node did not start; see $S/nodes/*/up.log"
	wait_nodes
	log "nodes Ready in $((SECONDS - start))s"
	if [[ "${BERTH_MN_ADDONS:-1}" != 0 ]]; then
		addons_up
	fi
	log "cluster of $NODES berth nodes up in $((SECONDS - start))s; export KUBECONFIG=$S/admin.kubeconfig"
}

# node_down I stops berth and containerd (inside the node, where its
# bridge and pods' interfaces are) and removes the namespace and cgroups.
node_down() {
	local i="$1" d name pid h
	d="$(node_dir "$i")" name="$(node_name "$i")"
	if pid="$(berth_pid "$d")"; then
		kill -TERM "$pid" 2>/dev/null || true
		for _ in $(seq 1 150); do
			running "$pid" || break
			sleep 0.1
		done
		running "$pid" && kill -KILL "$pid" 2>/dev/null
	fi
	rm -f "$d/berth.pid"
	if [[ -f "$d/containerd/config.toml" ]]; then
		if [[ -e "/run/netns/$(netns "$i")" ]]; then
			in_node "$i" "$REPO_ROOT/hack/containerd.sh" down "$d/containerd"
		else
			"$REPO_ROOT/hack/containerd.sh" down "$d/containerd"
		fi
	fi
	if [[ -e "/run/netns/$(netns "$i")" ]]; then
		ip netns delete "$(netns "$i")"
	fi
	ip link delete "$(veth "$i")" 2>/dev/null || true
	# berth's volume mounts (tmpfs, binds) stay when it stops, as a
	# kubelet's do: deepest first.
	while read -r mnt; do
		umount -l "$mnt" 2>/dev/null || true
	done < <(awk -v p="$d/" 'index($5, p) == 1 {print $5}' /proc/self/mountinfo | sort -r)
	# Leaf cgroups first: what berth left under its root.
	for h in /sys/fs/cgroup/*/ /sys/fs/cgroup/; do
		[[ -d "$h$name" ]] || continue
		find "$h$name" -depth -type d -exec rmdir {} + 2>/dev/null || true
	done
}

down() {
	local i rc=0
	[[ -f "$S/multinode.env" ]] || {
		log "no multi-node cluster in $S"
		[[ ! -d "$S" ]] || "$REPO_ROOT/hack/cluster.sh" down "$S"
		return 0
	}
	load_settings
	for i in $(seq 1 "$NODES"); do node_down "$i" || rc=1; done
	"$REPO_ROOT/hack/cluster.sh" down "$S" || rc=1
	if ip link show "$BRIDGE" >/dev/null 2>&1; then
		ip link delete "$BRIDGE" # its routes go with it
	fi
	for i in $(seq 1 "$NODES"); do
		if [[ -e "/run/netns/$(netns "$i")" ]] || ip link show "$(veth "$i")" >/dev/null 2>&1; then
			log "node $(node_name "$i")'s namespace or veth remains"
			rc=1
		fi
	done
	if awk -v p="$S/" 'index($5, p) == 1 {found = 1} END {exit !found}' /proc/self/mountinfo; then
		log "mounts remain under $S"
		rc=1
	fi
	((rc == 0)) || die "not everything could be removed (above)"
	rm -f "$S/multinode.env"
	log "$NODES nodes, their namespaces and the bridge $BRIDGE removed"
}

status() {
	local i d pid
	load_settings
	[[ -f "$S/multinode.env" ]] || {
		log "no multi-node cluster in $S"
		return 1
	}
	"$REPO_ROOT/hack/cluster.sh" status "$S" || true
	for i in $(seq 1 "$NODES"); do
		d="$(node_dir "$i")"
		if pid="$(berth_pid "$d")"; then
			printf '%-24s berth running, pid %s, %s\n' "$(node_name "$i")" "$pid" "$(node_ip "$i")"
		else
			printf '%-24s berth not running\n' "$(node_name "$i")"
		fi
	done
	kubectl_admin get nodes -o wide 2>/dev/null || true
}

# One command at a time per state dir. flock -o: the lock is not
# inherited by the daemons started here, which outlive the command.
if [[ "$CMD" != up && ! -d "$S" ]]; then
	log "nothing in $S"
	[[ "$CMD" == down ]] && exit 0
	exit 1
fi
mkdir -p "$S"
if [[ "${BERTH_MN_LOCKED:-}" != "$S" ]]; then
	BERTH_MN_LOCKED="$S" exec flock -o "$S/.multinode.lock" "${BASH_SOURCE[0]}" "$@"
fi
case "$CMD" in
up) up ;;
down) down ;;
status) status ;;
esac

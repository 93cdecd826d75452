#!/usr/bin/env bash
# A local Kubernetes control plane (the upstream one) for development and tests.
#
#   hack/cluster.sh build                build kube-apiserver, -controller-manager, -scheduler,
#                                        kubelet, kubectl and kubeadm v1.37.2, etcd 3.7.0
#                                        (kubeadm's etcd image), the sample device plugin,
#                                        external-provisioner (the CSI tests' sidecar) and the
#                                        DRA test driver, into _output/cluster/bin (cached)
#   hack/cluster.sh build-e2e [OUT_DIR]  build upstream's e2e.test, the ginkgo CLI and the test
#                                        images' agnhost and nonewprivs v1.37.2 into OUT_DIR
#                                        (default _output/conformance/bin; cached)
#   hack/cluster.sh up        [STATE_DIR]   certs, etcd, apiserver, controller-manager, scheduler;
#                                           wait until /readyz is ok and the default ServiceAccount exists
#   hack/cluster.sh node-up   [STATE_DIR]   a containerd (STATE_DIR/containerd) and berth (or the
#                                           upstream kubelet) as node NODE; wait until the Node is Ready;
#                                           with BERTH_NODE_JOIN=kubeadm the node is made by kubeadm join
#   hack/cluster.sh restart-control-plane [STATE_DIR]
#                                           stop kube-apiserver and kube-controller-manager and
#                                           start them again as `up` does (e.g. with other
#                                           BERTH_APISERVER_FLAGS / BERTH_KCM_FLAGS)
#   hack/cluster.sh down      [STATE_DIR]   stop what `up` and `node-up` started here (pid files)
#   hack/cluster.sh status    [STATE_DIR]   what runs; exit 0 if the control plane answers
#
# STATE_DIR (default _output/cluster/state) holds pki/, the kubeconfigs
# (admin, controller-manager, scheduler, node), etcd's data, and NAME.pid and
# NAME.log per process. `up` writes STATE_DIR/env (KUBECONFIG, APISERVER,
# NODE_NAME, ...) for callers. Everything listens on 127.0.0.1; etcd is plain
# HTTP there. One instance at a time unless the ports below are changed.
#
# Environment:
#   BERTH_NODE_NAME          node name for berth's identity (default berth-node); `up`
#                            makes it resolve to 127.0.0.1 through /etc/hosts, since the
#                            apiserver reaches the kubelet by Hostname
#   BERTH_APISERVER_HOST     the address the apiserver listens on and advertises (default
#                            127.0.0.1); another one (hack/multinode.sh's bridge) also turns
#                            the kubernetes Service's endpoint reconciler on and leaves
#                            /etc/hosts alone: nodes are reached by their own addresses
#   BERTH_NODE_NAMES         comma-separated further nodes, each with a client certificate
#                            (pki/node-NAME.*) and node-NAME.kubeconfig (hack/multinode.sh)
#   BERTH_APISERVER_PORT     6443
#   BERTH_ETCD_PORT          23790 (client); BERTH_ETCD_PEER_PORT 23800
#   BERTH_KCM_PORT           10257 (controller-manager); BERTH_SCHEDULER_PORT 10259
#   BERTH_APISERVER_FLAGS    extra kube-apiserver flags, split on blanks (default none), e.g.
#                            "--kubelet-certificate-authority=CA"
#   BERTH_KCM_FLAGS          extra kube-controller-manager flags, e.g. --cluster-signing-duration=3m
#   BERTH_CLUSTER_TIMEOUT    seconds `up` waits for the control plane (default 120)
#   BERTH_NODE_TIMEOUT       seconds `node-up` waits for the Node to be Ready (default 60)
#   BERTH_BIN                the berth binary `node-up` runs (default bin/berth)
#   BERTH_NODE_JOIN          certs (default): berth uses the node certificate `up` made;
#                            kubeadm: `kubeadm join` with a bootstrap token, TLS bootstrap
#                            (node_up_kubeadm; berth only)
#   BERTH_NODE_AGENT         berth (default) or upstream: the upstream kubelet v1.37.2
#                            from `build` as the node, for reference runs
#   BERTH_KUBELET_PORT       the node's kubelet API port (default 10250; healthz at port-2)
#   BERTH_NODE_CGROUP_ROOT   the upstream kubelet's cgroupRoot (default /berth-NODE): it
#                            kills every process in a pod cgroup under its root that it does
#                            not know, so it must not share one with another kubelet here
#   BERTH_CLUSTER_BIN_DIR    where `build` writes (default _output/cluster/bin)
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
KUBE_VERSION="v1.37.2"
BIN="$(realpath -m "${BERTH_CLUSTER_BIN_DIR:-$REPO_ROOT/_output/cluster/bin}")"
COMPONENTS=(kube-apiserver kube-controller-manager kube-scheduler kubelet kubectl)
SERVICE_CIDR="10.0.0.0/24"
SERVICE_IP="10.0.0.1" # the first IP of SERVICE_CIDR: the kubernetes Service
NODE="${BERTH_NODE_NAME:-berth-node}"
APISERVER_PORT="${BERTH_APISERVER_PORT:-6443}"
ETCD_PORT="${BERTH_ETCD_PORT:-23790}"
ETCD_PEER_PORT="${BERTH_ETCD_PEER_PORT:-23800}"
KCM_PORT="${BERTH_KCM_PORT:-10257}"
SCHEDULER_PORT="${BERTH_SCHEDULER_PORT:-10259}"
APISERVER_HOST="${BERTH_APISERVER_HOST:-127.0.0.1}"
APISERVER="https://$APISERVER_HOST:$APISERVER_PORT"
ETCD="http://127.0.0.1:$ETCD_PORT"

usage() {
	echo "usage: $0 build | build-e2e [OUT_DIR] | up|restart-control-plane|node-up|down|status [STATE_DIR]" >&2
	exit 2
}

CMD="${1:-}"
[[ -n "$CMD" ]] || usage
S="$(realpath -m "${2:-$REPO_ROOT/_output/cluster/state}")"

log() {
	if [[ "$CMD" == build* ]]; then echo "cluster.sh: $*" >&2; else echo "cluster.sh[$S]: $*" >&2; fi
}
die() {
	log "error: $*"
	exit 1
}

# --- build -------------------------------------------------------------------

# ldflags stamp the version the components report (and check skew with), as
# upstream's hack/lib/version.sh does, minus the git details.
ldflags() {
	local p flags="-s -w"
	for p in k8s.io/client-go/pkg/version k8s.io/component-base/version; do
		flags+=" -X $p.gitVersion=$KUBE_VERSION -X $p.gitMajor=1 -X $p.gitMinor=37"
		flags+=" -X $p.gitTreeState=clean -X $p.buildDate=1970-01-01T00:00:00Z"
	done
	echo "$flags"
}

# build_inputs_hash [MODULE_DIR]: the module cluster/ (default) or cluster/e2e.
build_inputs_hash() {
	local m="${1:-$REPO_ROOT/cluster}"
	{
		go version
		ldflags
		sha256sum "$m/go.mod" "$m/go.sum" "$m"/*.go | awk '{print $1}'
	} | sha256sum | awk '{print $1}'
}

# build compiles the upstream binaries once per cluster/go.mod+go.sum: a cold
# build takes minutes, and even a fully cached one spends a minute linking.
build() {
	local hash c missing=0
	mkdir -p "$BIN"
	# Parallel callers: one builds, the others wait and then find it done.
	exec 9>"$BIN/.lock"
	flock 9
	hash="$(build_inputs_hash)"
	for c in "${COMPONENTS[@]}"; do [[ -x "$BIN/$c" ]] || missing=1; done
	if ((missing == 0)) && [[ -f "$BIN/.stamp" && "$(cat "$BIN/.stamp")" == "$hash" ]]; then
		log "binaries up to date in $BIN"
		return 0
	fi
	rm -f "$BIN/.stamp"
	log "building ${COMPONENTS[*]} $KUBE_VERSION into $BIN (minutes when cold)"
	# As upstream builds its release binaries (hack/lib/golang.sh), except that
	# the kubelet is static too: one CGO setting lets all five share the
	# compiled packages.
	(
		cd "$REPO_ROOT/cluster"
		CGO_ENABLED=0 go build -trimpath -tags=selinux,notest,grpcnotrace -ldflags="$(ldflags)" \
			-o "$BIN/" "${COMPONENTS[@]/#/k8s.io/kubernetes/cmd/}"
	)
	echo "$hash" >"$BIN/.stamp"
	log "built $("$BIN/kube-apiserver" --version)"
}

# build_kubeadm compiles kubeadm in the module cluster/kubeadm, and the etcd
# server that kubeadm v1.37.2's etcd image holds (3.7.0) in cluster/etcd,
# and upstream's DRA test driver (test/e2e/dra/test-driver: the DRA kubelet
# plugin berth's DRA test registers) in cluster/dra-test-driver,
# each cached by a stamp of its own: their dependencies (CoreDNS's Corefile
# migration, the system validators, etcd's) would otherwise change the
# control plane's build inputs and rebuild all of it. kubeadm has the same
# versions as the control plane, so both share the compiled packages.
build_kubeadm() {
	local hash m name
	mkdir -p "$BIN"
	exec 9>"$BIN/.lock"
	flock 9
	for m in kubeadm:k8s.io/kubernetes/cmd/kubeadm etcd:. dra-test-driver:k8s.io/kubernetes/test/e2e/dra/test-driver; do
		name="${m%%:*}"
		hash="$(build_inputs_hash "$REPO_ROOT/cluster/$name")"
		if [[ -x "$BIN/$name" && -f "$BIN/.stamp-$name" && "$(cat "$BIN/.stamp-$name")" == "$hash" ]]; then
			log "$name up to date in $BIN"
			continue
		fi
		rm -f "$BIN/.stamp-$name"
		log "building $name into $BIN"
		(
			cd "$REPO_ROOT/cluster/$name"
			CGO_ENABLED=0 go build -trimpath -tags=selinux,notest,grpcnotrace -ldflags="$(ldflags)" \
				-o "$BIN/$name" "${m#*:}"
		)
		echo "$hash" >"$BIN/.stamp-$name"
		log "built $name"
	done
}

# build_test_plugins compiles node plugins of k8s.io/kubernetes that berth's
# tests register: the sample device plugin (test/images/sample-device-plugin,
# example.com/resource: 2). It is in the control plane's module (its
# dependencies are the kubelet's), cached by a stamp of its own so that the
# control plane is not relinked for it.
build_test_plugins() {
	local hash
	mkdir -p "$BIN"
	exec 9>"$BIN/.lock"
	flock 9
	hash="$(build_inputs_hash)"
	if [[ -x "$BIN/sample-device-plugin" && -f "$BIN/.stamp-sample-device-plugin" && "$(cat "$BIN/.stamp-sample-device-plugin")" == "$hash" ]]; then
		log "sample-device-plugin up to date in $BIN"
		return 0
	fi
	rm -f "$BIN/.stamp-sample-device-plugin"
	log "building sample-device-plugin into $BIN"
	(
		cd "$REPO_ROOT/cluster"
		CGO_ENABLED=0 go build -trimpath -tags=selinux,notest,grpcnotrace -ldflags="$(ldflags)" \
			-o "$BIN/sample-device-plugin" k8s.io/kubernetes/test/images/sample-device-plugin
	)
	echo "$hash" >"$BIN/.stamp-sample-device-plugin"
	log "built sample-device-plugin"
}

# build_csi compiles the CSI sidecar the CSI tests run next to the control
# plane, external-provisioner, in the module cluster/csi (its dependencies
# must not move the control plane's), cached by a stamp of its own.
build_csi() {
	local hash
	mkdir -p "$BIN"
	exec 9>"$BIN/.lock"
	flock 9
	hash="$(build_inputs_hash "$REPO_ROOT/cluster/csi")"
	if [[ -x "$BIN/csi-provisioner" && -f "$BIN/.stamp-csi" && "$(cat "$BIN/.stamp-csi")" == "$hash" ]]; then
		log "csi-provisioner up to date in $BIN"
		return 0
	fi
	rm -f "$BIN/.stamp-csi"
	log "building csi-provisioner into $BIN"
	(
		cd "$REPO_ROOT/cluster/csi"
		CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o "$BIN/csi-provisioner" \
			github.com/kubernetes-csi/external-provisioner/v6/cmd/csi-provisioner
	)
	echo "$hash" >"$BIN/.stamp-csi"
	log "built csi-provisioner"
}

# build_e2e compiles, in the module cluster/e2e, e2e.test as upstream does
# (go test -c, with the tags of the control plane, so that both share the
# compiled packages), the ginkgo CLI that runs it in parallel, and the
# binaries of the test images (hack/conformance.sh). A cold build of
# e2e.test takes many minutes.
build_e2e() {
	local out hash b missing=0
	out="$(realpath -m "${1:-$REPO_ROOT/_output/conformance/bin}")"
	mkdir -p "$out"
	exec 9>"$out/.lock"
	flock 9
	hash="$(build_inputs_hash "$REPO_ROOT/cluster/e2e")"
	for b in e2e.test ginkgo agnhost nonewprivs; do [[ -x "$out/$b" ]] || missing=1; done
	if ((missing == 0)) && [[ -f "$out/.stamp" && "$(cat "$out/.stamp")" == "$hash" ]]; then
		log "e2e binaries up to date in $out"
		return 0
	fi
	rm -f "$out/.stamp"
	local start=$SECONDS
	log "building e2e.test, ginkgo, agnhost, nonewprivs $KUBE_VERSION into $out (many minutes when cold)"
	(
		cd "$REPO_ROOT/cluster/e2e"
		CGO_ENABLED=0 go test -c -vet=off -trimpath -tags=selinux,notest,grpcnotrace -ldflags="$(ldflags)" \
			-o "$out/e2e.test" k8s.io/kubernetes/test/e2e
		CGO_ENABLED=0 go build -trimpath -tags=selinux,notest,grpcnotrace -ldflags="$(ldflags)" -o "$out/" \
			github.com/onsi/ginkgo/v2/ginkgo k8s.io/kubernetes/test/images/agnhost k8s.io/kubernetes/test/images/nonewprivs
	)
	echo "$hash" >"$out/.stamp"
	log "built in $((SECONDS - start))s"
}

# --- processes ---------------------------------------------------------------

# running: the process exists and is not a zombie.
running() {
	local stat
	stat="$(cat "/proc/$1/stat" 2>/dev/null)" || return 1
	stat="${stat##*) }"
	[[ "${stat:0:1}" != Z ]]
}

# pid_of NAME prints the pid in STATE_DIR/NAME.pid if that process runs and
# is NAME (a stale pid file's number may have been reused); comm is cut to
# 15 characters.
pid_of() {
	local name="$1" pid
	[[ -f "$S/$name.pid" ]] || return 1
	pid="$(cat "$S/$name.pid")"
	[[ -n "$pid" ]] && running "$pid" || return 1
	[[ "$(cat "/proc/$pid/comm" 2>/dev/null)" == "${name:0:15}" ]] || return 1
	echo "$pid"
}

port_free() { [[ -z "$(ss -Hltn "sport = :$1" 2>/dev/null)" ]]; }

# preflight fails before anything starts if a port that a component which is
# not running yet needs is taken (by another instance, say).
preflight() {
	local name port
	for name in etcd:"$ETCD_PORT" etcd:"$ETCD_PEER_PORT" kube-apiserver:"$APISERVER_PORT" \
		kube-controller-manager:"$KCM_PORT" kube-scheduler:"$SCHEDULER_PORT"; do
		port="${name#*:}"
		name="${name%:*}"
		if ! pid_of "$name" >/dev/null && ! port_free "$port"; then
			die "port 127.0.0.1:$port for $name is taken (another instance?); see BERTH_*_PORT in $0"
		fi
	done
}

# start NAME CMD... runs CMD in the background as NAME, unless it runs.
start() {
	local name="$1" pid
	shift
	if pid="$(pid_of "$name")"; then
		log "$name already running (pid $pid)"
		return 0
	fi
	log "starting $name; log at $S/$name.log"
	# setsid: not in the caller's process group (a ^C in make must not kill
	# it half-way); no inherited stdio, or a caller reading our output would
	# wait for the daemon; 8>&- 9>&-: it must not hold our locks.
	setsid "$@" </dev/null >>"$S/$name.log" 2>&1 8>&- 9>&- &
	echo "$!" >"$S/$name.pid"
}

# stop NAME: TERM, then KILL after 15 s.
stop() {
	local name="$1" pid
	if ! pid="$(pid_of "$name")"; then
		rm -f "$S/$name.pid"
		return 0
	fi
	kill -TERM "$pid" 2>/dev/null || true
	for _ in $(seq 1 150); do
		running "$pid" || break
		sleep 0.1
	done
	if running "$pid"; then
		log "$name $pid ignored SIGTERM; killing"
		kill -KILL "$pid" 2>/dev/null || true
		sleep 0.2
	fi
	rm -f "$S/$name.pid"
	log "stopped $name"
}

# wait_for NAME WHAT DEADLINE CHECK...: until CHECK succeeds; on failure (the
# process died, or the deadline passed) print the log tails and return 1.
wait_for() {
	local name="$1" what="$2" deadline="$3"
	shift 3
	until "$@" >/dev/null 2>&1; do
		if ! pid_of "$name" >/dev/null; then
			log "$name exited before $what"
			tails
			return 1
		fi
		if ((SECONDS >= deadline)); then
			log "timed out waiting for $what"
			tails
			return 1
		fi
		sleep 0.5
	done
}

tails() {
	local f
	for f in "$S"/*.log; do
		[[ -f "$f" ]] || continue
		log "last lines of $f:"
		tail -n 25 "$f" >&2 || true
	done
}

# load_env takes the apiserver URL and node name that `up` used, so that later
# commands agree with it whatever their environment says.
load_env() {
	[[ -f "$S/env" ]] || return 0
	APISERVER="$(sed -n 's/^APISERVER=//p' "$S/env")"
	NODE="$(sed -n 's/^NODE_NAME=//p' "$S/env")"
}

kubectl_admin() { "$BIN/kubectl" --kubeconfig "$S/admin.kubeconfig" --request-timeout=5s "$@"; }

# --- control plane -----------------------------------------------------------

# ensure_etcd installs Debian's etcd-server without letting the package start
# its own etcd on the default ports.
ensure_etcd() {
	[[ -x /usr/bin/etcd ]] && return 0
	((EUID == 0)) || die "need root to install etcd-server"
	log "installing etcd-server"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	if [[ ! -e /usr/sbin/policy-rc.d ]]; then
		printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
		chmod 0755 /usr/sbin/policy-rc.d
		trap 'rm -f /usr/sbin/policy-rc.d' EXIT
	fi
	apt-get install -y -qq --no-install-recommends etcd-server >/dev/null
}

# ensure_hosts makes NODE resolve to 127.0.0.1, adding one line to /etc/hosts
# if needed: the apiserver dials the kubelet by the Node's Hostname address.
ensure_hosts() {
	if getent ahostsv4 "$NODE" 2>/dev/null | awk '$1 == "127.0.0.1" {found = 1} END {exit !found}'; then
		return 0
	fi
	log "adding '127.0.0.1 $NODE' to /etc/hosts"
	echo "127.0.0.1 $NODE" >>/etc/hosts
}

certs() {
	(cd "$REPO_ROOT" && go build -o "$BIN/certs" ./tools/certs)
	"$BIN/certs" -dir "$S" -node "$NODE" -server "$APISERVER" -service-ip "$SERVICE_IP" -nodes "${BERTH_NODE_NAMES:-}"
}

start_etcd() {
	start etcd /usr/bin/etcd \
		--name berth \
		--data-dir "$S/etcd" \
		--listen-client-urls "$ETCD" \
		--advertise-client-urls "$ETCD" \
		--listen-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" \
		--initial-advertise-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" \
		--initial-cluster "berth=http://127.0.0.1:$ETCD_PEER_PORT" \
		--logger zap --log-outputs stderr
}

start_apiserver() {
	local extra=() reconciler=none address_types=Hostname,InternalIP
	read -r -a extra <<<"${BERTH_APISERVER_FLAGS:-}"
	# Off loopback, nodes are reached at their own addresses, which their
	# names need not resolve to.
	[[ "$APISERVER_HOST" == 127.0.0.1 ]] || reconciler=lease address_types=InternalIP,Hostname
	# No --kubelet-certificate-authority by default: berth serves with a
	# self-signed cert.
	# --endpoint-reconciler-type none on loopback: the reconciler refuses a
	# loopback advertise address for the kubernetes Service's endpoints, and
	# with the apiserver on 127.0.0.1 pods could not reach it through them
	# anyway.
	start kube-apiserver "$BIN/kube-apiserver" \
		--etcd-servers "$ETCD" \
		--bind-address "$APISERVER_HOST" \
		--advertise-address "$APISERVER_HOST" \
		--endpoint-reconciler-type "$reconciler" \
		--secure-port "$APISERVER_PORT" \
		--cert-dir "$S/kube-apiserver" \
		--tls-cert-file "$S/pki/apiserver.crt" \
		--tls-private-key-file "$S/pki/apiserver.key" \
		--client-ca-file "$S/pki/ca.crt" \
		--authorization-mode Node,RBAC \
		--enable-admission-plugins NodeRestriction \
		--enable-bootstrap-token-auth \
		--allow-privileged=true \
		--service-cluster-ip-range "$SERVICE_CIDR" \
		--service-account-issuer https://kubernetes.default.svc.cluster.local \
		--service-account-key-file "$S/pki/sa.pub" \
		--service-account-signing-key-file "$S/pki/sa.key" \
		--kubelet-client-certificate "$S/pki/apiserver-kubelet-client.crt" \
		--kubelet-client-key "$S/pki/apiserver-kubelet-client.key" \
		--kubelet-preferred-address-types "$address_types" \
		"${extra[@]}"
}

# --enable-bootstrap-token-auth and the bootstrapsigner and tokencleaner
# controllers (off by default) are what `kubeadm join` with a bootstrap
# token needs, as on a cluster kubeadm made.
#
# The controller-manager and the scheduler authenticate clients of their
# secure ports by the CA directly: looking the CAs up in the cluster logs an
# error every few seconds, since there is no front-proxy (requestheader) CA.
start_controller_manager() {
	local kc="$S/controller-manager.kubeconfig" extra=()
	read -r -a extra <<<"${BERTH_KCM_FLAGS:-}"
	start kube-controller-manager "$BIN/kube-controller-manager" \
		--kubeconfig "$kc" \
		--authentication-kubeconfig "$kc" \
		--authentication-skip-lookup \
		--client-ca-file "$S/pki/ca.crt" \
		--authorization-kubeconfig "$kc" \
		--bind-address 127.0.0.1 \
		--secure-port "$KCM_PORT" \
		--cert-dir "$S/kube-controller-manager" \
		--leader-elect=false \
		--controllers '*,bootstrapsigner,tokencleaner' \
		--use-service-account-credentials \
		--service-account-private-key-file "$S/pki/sa.key" \
		--root-ca-file "$S/pki/ca.crt" \
		--cluster-signing-cert-file "$S/pki/ca.crt" \
		--cluster-signing-key-file "$S/pki/ca.key" \
		--service-cluster-ip-range "$SERVICE_CIDR" \
		"${extra[@]}"
}

start_scheduler() {
	local kc="$S/scheduler.kubeconfig"
	start kube-scheduler "$BIN/kube-scheduler" \
		--kubeconfig "$kc" \
		--authentication-kubeconfig "$kc" \
		--authentication-skip-lookup \
		--client-ca-file "$S/pki/ca.crt" \
		--authorization-kubeconfig "$kc" \
		--bind-address 127.0.0.1 \
		--secure-port "$SCHEDULER_PORT" \
		--leader-elect=false
}

etcd_healthy() { curl -fsS --max-time 2 "$ETCD/health" | grep -q '"health":"true"'; }
apiserver_ready() { [[ "$(kubectl_admin get --raw /readyz)" == ok ]]; }
default_sa() { kubectl_admin -n default get serviceaccount default; }

write_env() {
	cat >"$S/env" <<-EOF
		KUBECONFIG=$S/admin.kubeconfig
		APISERVER=$APISERVER
		NODE_NAME=$NODE
		NODE_KUBECONFIG=$S/node.kubeconfig
		KUBECTL=$BIN/kubectl
		ETCD=$ETCD
		SERVICE_CIDR=$SERVICE_CIDR
	EOF
}

up() {
	local deadline=$((SECONDS + ${BERTH_CLUSTER_TIMEOUT:-120}))
	ensure_etcd
	build
	certs
	[[ "$APISERVER_HOST" != 127.0.0.1 ]] || ensure_hosts
	mkdir -p "$S/kube-apiserver" "$S/kube-controller-manager"
	write_env
	preflight
	start_etcd
	wait_for etcd "etcd at $ETCD" "$deadline" etcd_healthy || fail_up
	start_apiserver
	wait_for kube-apiserver "$APISERVER/readyz" "$deadline" apiserver_ready || fail_up
	start_controller_manager
	start_scheduler
	wait_for kube-controller-manager "the default ServiceAccount" "$deadline" default_sa || fail_up
	pid_of kube-scheduler >/dev/null || {
		log "kube-scheduler exited"
		tails
		fail_up
	}
	log "control plane $KUBE_VERSION ready at $APISERVER"
	log "export KUBECONFIG=$S/admin.kubeconfig; kubectl is $BIN/kubectl"
}

fail_up() {
	log "up failed; stopping what it started"
	stop_all
	exit 1
}

# --- node --------------------------------------------------------------------

# node_up runs berth against its own containerd in STATE_DIR/containerd, so
# that `make run`'s containerd and berth stay out of the node's way.
node_up() {
	local agent="${BERTH_NODE_AGENT:-berth}" bin cstate="$S/containerd" sock deadline
	local port="${BERTH_KUBELET_PORT:-10250}" healthz_port
	healthz_port=$((port - 2))
	load_env
	if [[ ! -f "$S/env" ]] || ! apiserver_ready; then
		die "the control plane is not up; run $0 up $S first"
	fi
	case "$agent" in
	berth)
		bin="${BERTH_BIN:-$REPO_ROOT/bin/berth}"
		[[ -x "$bin" ]] || die "no berth binary at $bin; run make build"
		;;
	upstream)
		# Its process is called kubelet: pid_of and stop go by that name.
		agent=kubelet
		bin="$BIN/kubelet"
		[[ -x "$bin" ]] || die "no kubelet at $bin; run $0 build"
		;;
	*) die "BERTH_NODE_AGENT must be berth or upstream, not $agent" ;;
	esac
	for other in berth kubelet; do
		if [[ "$other" != "$agent" ]] && pid_of "$other" >/dev/null; then
			die "$other already runs as this node; one kubelet per containerd ($0 down $S first)"
		fi
	done
	if [[ "${BERTH_NODE_JOIN:-certs}" == kubeadm ]]; then
		[[ "$agent" == berth ]] || die "BERTH_NODE_JOIN=kubeadm runs berth only"
		node_up_kubeadm "$bin" "$port" "$healthz_port"
		wait_node_ready kubeletunit "$S/berth.log"
		return
	fi
	"$REPO_ROOT/hack/containerd.sh" up "$cstate"
	sock="$(sed -n 's/^CONTAINERD_ADDRESS=//p' "$cstate/env")"
	mkdir -p "$S/node/root" "$S/node/pod-logs" "$S/node/manifests"
	# Fields berth does not act on yet are reported by it once at start-up;
	# they are here because a real node needs them.
	cat >"$S/node/kubelet-config.yaml" <<-EOF
		apiVersion: kubelet.config.k8s.io/v1beta1
		kind: KubeletConfiguration
		containerRuntimeEndpoint: unix://$sock
		cgroupDriver: cgroupfs
		address: 127.0.0.1
		readOnlyPort: 0
		port: $port
		healthzBindAddress: 127.0.0.1
		healthzPort: $healthz_port
		staticPodPath: $S/node/manifests
		podLogsDir: $S/node/pod-logs
		clusterDomain: cluster.local
		clusterDNS: []
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
	if [[ "$agent" == kubelet ]]; then
		upstream_config >>"$S/node/kubelet-config.yaml"
	fi
	if pid_of "$agent" >/dev/null; then
		log "$agent already running (pid $(pid_of "$agent"))"
	else
		port_free "$port" || die "port $port is taken (another kubelet?); see BERTH_KUBELET_PORT"
		log "starting $agent as node $NODE; log at $S/$agent.log"
		# The upstream kubelet refuses a loopback --node-ip (the Node gets no
		# addresses, so no logs, exec or host IPs): it takes the default
		# route's address as InternalIP, and the apiserver still reaches it
		# by its Hostname, 127.0.0.1.
		local node_ip=(--node-ip 127.0.0.1)
		[[ "$agent" == kubelet ]] && node_ip=()
		setsid "$bin" \
			--config "$S/node/kubelet-config.yaml" \
			--kubeconfig "$S/node.kubeconfig" \
			--hostname-override "$NODE" \
			"${node_ip[@]}" \
			--container-runtime-endpoint "unix://$sock" \
			--root-dir "$S/node/root" \
			</dev/null >>"$S/$agent.log" 2>&1 8>&- 9>&- &
		echo "$!" >"$S/$agent.pid"
	fi
	wait_node_ready "$agent" "$S/$agent.log"
}

# wait_node_ready PROCESS LOG waits until the Node is Ready, or fails when
# PROCESS (the kubelet, or the service manager that runs it) exits.
wait_node_ready() {
	local agent="$1" agent_log="$2" deadline
	deadline=$((SECONDS + ${BERTH_NODE_TIMEOUT:-60}))
	log "waiting up to ${BERTH_NODE_TIMEOUT:-60}s for node $NODE to be Ready"
	until [[ "$(kubectl_admin get node "$NODE" -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}' 2>/dev/null)" == True ]]; do
		if ! pid_of "$agent" >/dev/null; then
			log "$agent exited; last lines of $agent_log:"
			tail -n 40 "$agent_log" >&2 || true
			exit 1
		fi
		if ((SECONDS >= deadline)); then
			log "node $NODE is not Ready after ${BERTH_NODE_TIMEOUT:-60}s: $(kubectl_admin get node "$NODE" --no-headers 2>&1 | head -n 1)"
			log "($agent keeps running, log at $agent_log)"
			exit 1
		fi
		sleep 1
	done
	log "node $NODE is Ready"
}

# node_up_kubeadm BERTH PORT HEALTHZ_PORT makes the node as real clusters
# are made (BERTH_NODE_JOIN=kubeadm, `make cluster`): the cluster side as
# `kubeadm init` leaves it (upload-config, bootstrap-token), then `kubeadm
# join` with a fresh bootstrap token; berth gets its client certificate by
# TLS bootstrap. kubeadm writes the fixed paths /etc/kubernetes and
# /var/lib/kubelet: the node (tools/kubeletunit with berth, containerd,
# kubeadm join) runs in a mount namespace of its own in which they are bind
# mounts of STATE_DIR/node/etc-kubernetes and var-lib-kubelet. It shares
# the host's network, so the kubelet's ports come from the cluster's
# KubeletConfiguration (kubeadm's preflight check of port 10250 is skipped
# when the node uses another). tools/kubeletunit plays systemd for the
# packages' unit and kubeadm's drop-in (hack/kubeadm), with berth as
# /usr/bin/kubelet; it holds the mount namespace (kubeletunit.pid).
node_up_kubeadm() {
	local bin="$1" port="$2" healthz_port="$3" n="$S/node" cstate="$S/containerd" upid ignore join
	local admin="--kubeconfig=$S/admin.kubeconfig"
	[[ -x "$BIN/kubeadm" ]] || die "no kubeadm at $BIN; run $0 build"
	if upid="$(pid_of kubeletunit)"; then
		log "kubeletunit already running (pid $upid)"
		return 0
	fi
	(cd "$REPO_ROOT" && go build -o "$BIN/kubeletunit" ./tools/kubeletunit)
	mkdir -p "$n/etc-kubernetes" "$n/var-lib-kubelet" "$n/pod-logs" "$n/path"
	ln -sfn "$bin" "$n/path/kubelet" # kubeadm's preflight runs `kubelet --version`
	mkdir -p /etc/kubernetes /var/lib/kubelet # mount points; they stay empty on the host
	# A node joined before (make cluster-down, then make cluster): as after a
	# reboot, the kubelet starts with the credentials it has.
	local joined=0
	[[ -f "$n/etc-kubernetes/kubelet.conf" ]] && joined=1
	((joined)) || cluster_side_kubeadm "$port" "$healthz_port"
	if ((joined == 0)); then
		join="$("$BIN/kubeadm" token create --print-join-command "$admin" 2>>"$S/kubeadm.log" | tail -n 1)"
		[[ "$join" == "kubeadm join "* ]] || die "kubeadm token create printed no join command; see $S/kubeadm.log"
	fi

	log "starting kubeletunit (berth as the kubelet) in the node's mount namespace; log at $S/berth.log"
	start kubeletunit unshare --mount --propagation private sh -c '
		mount --bind "$1/etc-kubernetes" /etc/kubernetes &&
		mount --bind "$1/var-lib-kubelet" /var/lib/kubelet &&
		exec "$2" -unit "$3/kubelet.service" -unit "$3/10-kubeadm.conf" \
			-exec /usr/bin/kubelet="$4" -log "$5/berth.log" -pid-file "$5/berth.pid"' \
		node "$n" "$BIN/kubeletunit" "$REPO_ROOT/hack/kubeadm" "$bin" "$S"
	for _ in $(seq 1 50); do # until unshare and sh have exec'd it
		upid="$(pid_of kubeletunit)" && break
		sleep 0.1
	done
	[[ -n "$upid" ]] || die "kubeletunit did not start; see $S/kubeletunit.log"
	nsenter --target "$upid" --mount -- "$REPO_ROOT/hack/containerd.sh" up "$cstate"

	if ((joined)); then
		log "$NODE joined before; the kubelet starts with its certificate"
		return 0
	fi
	# SystemVerification: cgroup v1 hosts fail it (kubeadm v1.37 wants
	# failCgroupV1: false and the check skipped).
	ignore=SystemVerification
	[[ "$port" == 10250 ]] || ignore+=,Port-10250
	log "$join --node-name $NODE (log at $S/kubeadm.log)"
	# shellcheck disable=SC2086 # the join command's words
	nsenter --target "$upid" --mount -- env PATH="$n/path:$PATH" "$BIN/kubeadm" ${join#kubeadm } \
		--node-name "$NODE" --cri-socket "unix://$cstate/containerd.sock" \
		--ignore-preflight-errors "$ignore" >>"$S/kubeadm.log" 2>&1 || {
		tail -n 20 "$S/kubeadm.log" >&2
		die "kubeadm join failed; see $S/kubeadm.log and $S/berth.log"
	}
	log "kubeadm join done: $NODE's client certificate came from an approved CSR"
}

# cluster_side_kubeadm PORT HEALTHZ_PORT does what `kubeadm init` leaves
# for joining nodes: the kubeadm-config and kubelet-config ConfigMaps (the
# latter is the KubeletConfiguration every joining kubelet runs with), the
# RBAC rules for bootstrap tokens and CSR approval, the cluster-info
# ConfigMap, and a bootstrap token.
cluster_side_kubeadm() {
	local port="$1" healthz_port="$2" n="$S/node" admin="--kubeconfig=$S/admin.kubeconfig"
	cat >"$n/kubeadm-cluster.yaml" <<-EOF
		apiVersion: kubeadm.k8s.io/v1beta4
		kind: ClusterConfiguration
		kubernetesVersion: $KUBE_VERSION
		controlPlaneEndpoint: ${APISERVER#https://}
		networking:
		  serviceSubnet: $SERVICE_CIDR
		---
		apiVersion: kubelet.config.k8s.io/v1beta1
		kind: KubeletConfiguration
		cgroupDriver: cgroupfs
		failCgroupV1: false
		address: 127.0.0.1
		readOnlyPort: 0
		port: $port
		healthzBindAddress: 127.0.0.1
		healthzPort: $healthz_port
		podLogsDir: $n/pod-logs
		clusterDomain: cluster.local
	EOF
	"$BIN/kubeadm" init phase upload-config all --config "$n/kubeadm-cluster.yaml" "$admin" >>"$S/kubeadm.log" 2>&1 ||
		die "kubeadm init phase upload-config failed; see $S/kubeadm.log"
	"$BIN/kubeadm" init phase bootstrap-token --config "$n/kubeadm-cluster.yaml" "$admin" >>"$S/kubeadm.log" 2>&1 ||
		die "kubeadm init phase bootstrap-token failed; see $S/kubeadm.log"
}

# upstream_config is what the upstream kubelet needs on this machine beyond
# berth's configuration (as hack/bench.sh runs it): cgroup v1 and swap are
# tolerated, pod cgroups go under a root of its own (created in every
# hierarchy, as it requires), and nothing is enforced on the node's own
# cgroups.
upstream_config() {
	local root="${BERTH_NODE_CGROUP_ROOT:-/berth-$NODE}" h
	for h in /sys/fs/cgroup/*/; do
		[[ -d "$h" ]] && mkdir -p "$h${root#/}"
	done
	cat <<-EOF
		cgroupsPerQOS: true
		cgroupRoot: $root
		enforceNodeAllocatable: []
		failSwapOn: false
		failCgroupV1: false
	EOF
}

# --- down and status ---------------------------------------------------------

# stop_all stops in reverse order of start: the node first, so that berth
# never sees its apiserver or runtime vanish under it.
stop_all() {
	# kubeadm's node: the service manager first, or it restarts the kubelet.
	stop kubeletunit
	stop berth
	stop kubelet
	if [[ -f "$S/containerd/config.toml" ]]; then
		local cpid
		cpid="$(cat "$S/containerd/containerd.pid" 2>/dev/null)" || true
		if [[ -d "$S/node/etc-kubernetes" && -n "$cpid" ]] && running "$cpid"; then
			# kubeadm's node: its mounts are in its mount namespace.
			nsenter --target "$cpid" --mount -- "$REPO_ROOT/hack/containerd.sh" down "$S/containerd"
		else
			"$REPO_ROOT/hack/containerd.sh" down "$S/containerd"
		fi
	fi
	stop kube-scheduler
	stop kube-controller-manager
	stop kube-apiserver
	stop etcd
}

down() {
	[[ -d "$S" ]] || {
		log "nothing to stop"
		return 0
	}
	stop_all
	log "nothing left running"
}

status() {
	local name pid rc=0
	load_env
	for name in etcd kube-apiserver kube-controller-manager kube-scheduler kubeletunit berth kubelet; do
		if pid="$(pid_of "$name")"; then
			printf '%-24s running, pid %s\n' "$name" "$pid"
		else
			printf '%-24s not running\n' "$name"
		fi
	done
	if [[ -f "$S/containerd/config.toml" ]]; then
		printf '%-24s %s\n' containerd "$("$REPO_ROOT/hack/containerd.sh" status "$S/containerd" 2>&1 | head -n 1)"
	fi
	if [[ -f "$S/admin.kubeconfig" ]] && apiserver_ready 2>/dev/null; then
		echo "apiserver $APISERVER: ready; export KUBECONFIG=$S/admin.kubeconfig"
	else
		echo "apiserver $APISERVER: not ready"
		rc=1
	fi
	return "$rc"
}

case "$CMD" in
build)
	build
	build_kubeadm
	build_test_plugins
	build_csi
	exit 0
	;;
ldflags) # for other upstream programs built alike (hack/addons.sh)
	ldflags
	exit 0
	;;
build-e2e)
	build_e2e "${2:-}"
	exit 0
	;;
esac
[[ "$CMD" != up ]] || mkdir -p "$S"
# One command at a time per instance.
if [[ -d "$S" ]]; then
	exec 8>"$S/.lock"
	flock 8
fi
case "$CMD" in
up) up ;;
restart-control-plane)
	[[ -f "$S/env" ]] || die "no control plane in $S; run $0 up $S first"
	load_env
	stop kube-controller-manager
	stop kube-apiserver
	up
	;;
node-up) node_up ;;
down) down ;;
status) status ;;
*) usage ;;
esac

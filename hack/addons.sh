#!/usr/bin/env bash
# Cluster add-ons built locally, for hack/multinode.sh: no outside registry.
#
#   hack/addons.sh build         build kube-proxy (k8s.io/kubernetes v1.37.2, cluster/kube-proxy),
#                                CoreDNS (cluster/coredns) and metrics-server v0.8.0
#                                (cluster/metrics-server), and their images, into
#                                _output/addons (each cached by its inputs)
#   hack/addons.sh import SOCK   import the images into namespace k8s.io of the containerd at SOCK
#   hack/addons.sh apply KUBECONFIG APISERVER CLUSTER_CIDR DNS_IP [NAME...]
#                                create the add-ons (hack/addons/NAME.yaml, default all) in
#                                the cluster; APISERVER is the URL kube-proxy uses before
#                                Services work
#   hack/addons.sh names         print the image names, one a line
#
# Images (single layer, tools/mkimage):
#   registry.k8s.io/kube-proxy:v1.37.2   kube-proxy in iptables mode, with the host's
#                                        iptables-nft (xtables-nft-multi, its extensions and
#                                        their libraries) for the commands it runs
#   registry.k8s.io/coredns/coredns:v1.14.7
#   registry.k8s.io/metrics-server/metrics-server:v0.8.0
#
# BERTH_ADDONS_DIR overrides the output directory (default _output/addons).
set -euo pipefail
umask 022

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
OUT="$(realpath -m "${BERTH_ADDONS_DIR:-$REPO_ROOT/_output/addons}")"
KUBE_VERSION="v1.37.2"
KUBE_PROXY_IMAGE="registry.k8s.io/kube-proxy:$KUBE_VERSION"
COREDNS_IMAGE="registry.k8s.io/coredns/coredns:v1.14.7"
METRICS_SERVER_IMAGE="registry.k8s.io/metrics-server/metrics-server:v0.8.0"
IMAGES=(kube-proxy coredns metrics-server)

log() { echo "addons: $*" >&2; }
die() {
	log "error: $*"
	exit 1
}

# kube_ldflags: hack/cluster.sh's, so that kube-proxy reports the same
# version and shares the control plane's compiled packages.
kube_ldflags() { "$REPO_ROOT/hack/cluster.sh" ldflags; }

# module_of NAME: the module a binary is built in, and its package.
module_of() {
	case "$1" in
	kube-proxy) echo "cluster/kube-proxy k8s.io/kubernetes/cmd/kube-proxy" ;;
	coredns) echo "cluster/coredns github.com/coredns/coredns" ;;
	metrics-server) echo "cluster/metrics-server sigs.k8s.io/metrics-server/cmd/metrics-server" ;;
	esac
}

# inputs_hash NAME: what the binary and its image are made of.
inputs_hash() {
	local m pkg
	read -r m pkg <<<"$(module_of "$1")"
	{
		go version
		kube_ldflags
		echo "$pkg"
		sha256sum "$REPO_ROOT/$m/go.mod" "$REPO_ROOT/$m/go.sum" "$REPO_ROOT/hack/addons.sh" \
			"$REPO_ROOT"/tools/mkimage/*.go | awk '{print $1}'
		[[ "$1" != kube-proxy ]] || sha256sum "$(readlink -f /usr/sbin/xtables-nft-multi)" | awk '{print $1}'
	} | sha256sum | awk '{print $1}'
}

build_binary() {
	local name="$1" m pkg
	read -r m pkg <<<"$(module_of "$name")"
	log "building $name ($pkg)"
	# kube-proxy as the control plane is built (the same compiled
	# packages); the others as plain Go programs.
	local flags=(-ldflags=-s\ -w)
	[[ "$name" != kube-proxy ]] || flags=(-tags=selinux,notest,grpcnotrace -ldflags="$(kube_ldflags)")
	(
		cd "$REPO_ROOT/$m"
		CGO_ENABLED=0 go build -trimpath "${flags[@]}" -o "$OUT/bin/$name" "$pkg"
	)
}

# copy_with_libs FILE ROOT copies FILE into ROOT at its path, with the
# shared libraries ldd names (the dynamic loader among them).
copy_with_libs() {
	local f="$1" root="$2" lib
	mkdir -p "$root$(dirname "$f")"
	cp -L "$f" "$root$f"
	for lib in $(ldd "$f" 2>/dev/null | awk '/=> \// {print $3} /^\t\/lib/ {print $1}'); do
		[[ -e "$root$lib" ]] && continue
		mkdir -p "$root$(dirname "$lib")"
		cp -L "$lib" "$root$lib"
	done
}

# kube_proxy_rootfs: kube-proxy in iptables mode runs iptables,
# iptables-save and iptables-restore (and the ip6tables ones when it finds
# IPv6): the host's iptables-nft, with its extensions, which it loads by
# name at run time.
kube_proxy_rootfs() {
	local root="$1" multi ext so t
	multi="$(readlink -f /usr/sbin/xtables-nft-multi)"
	[[ -x "$multi" ]] || die "no xtables-nft-multi on this host (apt-get install iptables)"
	rm -rf "$root"
	mkdir -p "$root/usr/local/bin" "$root/usr/sbin" "$root/run" "$root/tmp" "$root/etc"
	chmod 1777 "$root/tmp"
	# The host's layout (Debian's merged /usr): iptables finds its
	# extensions at the path it was built with, /usr/lib/..., while ldd
	# names the libraries by /lib/....
	local d
	for d in lib lib64; do
		if [[ -L "/$d" ]]; then
			mkdir -p "$root/$(readlink "/$d" | sed 's|^/||')"
			ln -s "$(readlink "/$d" | sed 's|^/||')" "$root/$d"
		fi
	done
	install -m 0755 "$OUT/bin/kube-proxy" "$root/usr/local/bin/kube-proxy"
	copy_with_libs "$multi" "$root"
	[[ "$multi" == /usr/sbin/xtables-nft-multi ]] || ln -sf "$multi" "$root/usr/sbin/xtables-nft-multi"
	for t in iptables iptables-save iptables-restore ip6tables ip6tables-save ip6tables-restore; do
		ln -sf xtables-nft-multi "$root/usr/sbin/$t"
	done
	ext="$(readlink -f "$(dirname "$(ldd "$multi" | awk '/libxtables/ {print $3}')")/xtables")"
	[[ -d "$ext" ]] || die "no iptables extensions at $ext"
	for so in "$ext"/*.so; do copy_with_libs "$so" "$root"; done
	# iptables resolves protocol names (-p tcp) through /etc/protocols.
	[[ -f /etc/protocols ]] && cp /etc/protocols "$root/etc/protocols"
	echo "root:x:0:0:root:/root:/bin/sh" >"$root/etc/passwd"
}

build_image() {
	local name="$1" mk="$OUT/bin/mkimage"
	case "$name" in
	kube-proxy)
		kube_proxy_rootfs "$OUT/rootfs/kube-proxy"
		"$mk" -o "$OUT/kube-proxy.tar" -name "$KUBE_PROXY_IMAGE" -rootfs "$OUT/rootfs/kube-proxy" \
			-env PATH=/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin -entrypoint '["/usr/local/bin/kube-proxy"]'
		;;
	coredns)
		"$mk" -o "$OUT/coredns.tar" -name "$COREDNS_IMAGE" -file "$OUT/bin/coredns:/coredns:0755" \
			-entrypoint '["/coredns"]'
		;;
	metrics-server)
		"$mk" -o "$OUT/metrics-server.tar" -name "$METRICS_SERVER_IMAGE" \
			-file "$OUT/bin/metrics-server:/metrics-server:0755" -entrypoint '["/metrics-server"]'
		;;
	esac
}

build() {
	local name hash
	mkdir -p "$OUT/bin"
	exec 9>"$OUT/.lock"
	flock 9
	(cd "$REPO_ROOT" && go build -trimpath -o "$OUT/bin/mkimage" ./tools/mkimage)
	for name in "${IMAGES[@]}"; do
		hash="$(inputs_hash "$name")"
		if [[ -s "$OUT/$name.tar" && -f "$OUT/.stamp-$name" && "$(cat "$OUT/.stamp-$name")" == "$hash" ]]; then
			log "$name up to date in $OUT"
			continue
		fi
		rm -f "$OUT/.stamp-$name"
		local start=$SECONDS
		build_binary "$name"
		build_image "$name"
		echo "$hash" >"$OUT/.stamp-$name"
		log "built $name in $((SECONDS - start))s"
	done
}

import() {
	local sock="${1:?usage: addons.sh import SOCK}" name
	build
	for name in "${IMAGES[@]}"; do
		ctr --address "$sock" -n k8s.io images import "$OUT/$name.tar" >/dev/null
	done
	log "imported into $sock: $(names | tr '\n' ' ')"
}

# apply KUBECONFIG APISERVER CLUSTER_CIDR DNS_IP [NAME...] fills the
# manifests' placeholders and creates (or updates) everything in them.
apply() {
	local kc="${1:?}" apiserver="${2:?}" cidr="${3:?}" dns="${4:?}" f files=()
	local kubectl="${KUBECTL:-$REPO_ROOT/_output/cluster/bin/kubectl}"
	shift 4
	for f in "$@"; do files+=("$REPO_ROOT/hack/addons/$f.yaml"); done
	(($# > 0)) || files=("$REPO_ROOT"/hack/addons/*.yaml)
	for f in "${files[@]}"; do
		sed -e "s|@APISERVER@|$apiserver|g" -e "s|@CLUSTER_CIDR@|$cidr|g" -e "s|@DNS_IP@|$dns|g" \
			-e "s|@KUBE_PROXY_IMAGE@|$KUBE_PROXY_IMAGE|g" -e "s|@COREDNS_IMAGE@|$COREDNS_IMAGE|g" \
			-e "s|@METRICS_SERVER_IMAGE@|$METRICS_SERVER_IMAGE|g" "$f"
		echo "---"
	done | "$kubectl" --kubeconfig "$kc" apply -f - >/dev/null
	log "applied ${files[*]##*/}"
}

names() { printf '%s\n' "$KUBE_PROXY_IMAGE" "$COREDNS_IMAGE" "$METRICS_SERVER_IMAGE"; }

case "${1:-}" in
build) build ;;
import) import "${2:-}" ;;
apply)
	shift
	apply "$@"
	;;
names) names ;;
*)
	echo "usage: $0 build | import SOCK | apply KUBECONFIG APISERVER CLUSTER_CIDR DNS_IP [NAME...] | names" >&2
	exit 2
	;;
esac

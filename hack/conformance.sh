#!/usr/bin/env bash
# Upstream's node conformance specs (e2e.test v1.37.2) against a one-node
# cluster whose node is berth, or the upstream kubelet for a reference run
# (docs/conformance.md).
#
#   hack/conformance.sh build             e2e.test, the ginkgo CLI and the test images'
#                                         binaries (module cluster/e2e), then the images (cached)
#   hack/conformance.sh images            the test images only (and the binaries they need)
#   hack/conformance.sh run [SELECTION]   build, start the cluster, run SELECTION, write the
#                                         summary, stop the cluster
#   hack/conformance.sh down              stop what an interrupted run left running
#   hack/conformance.sh list [SELECTION]  the specs SELECTION selects (a dry run; no cluster)
#
# SELECTION:
#   full   (default) [NodeConformance] without [Serial], [Slow], [Flaky], [Disruptive]
#   quick  the specs named in test/conformance/quick.txt (CI: `make test-conformance`)
#   slow   [NodeConformance] and [Slow], without [Serial], [Flaky], [Disruptive]
#
# Everything lives in _output/conformance: bin/ (e2e.test, ginkgo, berth,
# ...), images/ (the image archives), state-KUBELET[-slow]/ (hack/cluster.sh's
# STATE_DIR, containerd in its containerd/) and results/KUBELET-SELECTION/ (ginkgo's
# output, report.json, junit.xml, summary.md, and the logs of the node and
# the control plane). The control plane, the node name and the kubelet port
# are its own, so that `make cluster`, `make bench` and the test suites can
# run beside it; the upstream kubelet's run has ports 100 above berth's and
# the slow selection 200 above, so that they can all run at once.
#
# The images the specs use are built locally under the names that e2e.test
# v1.37.2 asks for (test/utils/image/manifest.go), so no registry is needed
# and no --kube-test-repo-list either: agnhost (built from
# k8s.io/kubernetes/test/images/agnhost), busybox, nonroot, nonewprivs and
# pause as upstream's are made, and stand-ins for nginx and the previous
# agnhost. See image_specs below.
#
# Environment:
#   KUBELET=berth|upstream          the node (default berth)
#   BERTH_CONFORMANCE_PROCS         parallel ginkgo processes (default 4: the specs mostly wait)
#   BERTH_CONFORMANCE_FOCUS/_SKIP   replace the selection's focus / skip regexps
#   BERTH_CONFORMANCE_KEEP=1        leave the cluster running afterwards
#   BERTH_CONFORMANCE_APISERVER_PORT 26443  BERTH_CONFORMANCE_ETCD_PORT 24190 (peer 24200)
#   BERTH_CONFORMANCE_KCM_PORT 10467        BERTH_CONFORMANCE_SCHEDULER_PORT 10469
#   BERTH_CONFORMANCE_KUBELET_PORT 12250    (healthz 12248); all 100 higher for KUBELET=upstream,
#                                           200 higher for the slow selection
set -euo pipefail
umask 022 # the rootfs modes end up in the images

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
OUT="$REPO_ROOT/_output/conformance"
BIN="$OUT/bin"
IMAGES="$OUT/images"
BASE_IMAGES="$(realpath -m "${BERTH_IMAGES_DIR:-$REPO_ROOT/_output/images}")" # hack/images.sh's
CLUSTER_BIN="$(realpath -m "${BERTH_CLUSTER_BIN_DIR:-$REPO_ROOT/_output/cluster/bin}")"
NODE=conformance-node
KUBELET="${KUBELET:-berth}"
PROCS="${BERTH_CONFORMANCE_PROCS:-4}"
QUICK_LIST="$REPO_ROOT/test/conformance/quick.txt"

# Each run has its own state and ports, so that runs can go side by side:
# the upstream kubelet's ports are 100 above berth's, the slow selection's
# 200 above the others'.
instance="$KUBELET"
offset=0
[[ "$KUBELET" == upstream ]] && offset=100
if [[ "${1:-}" == run && "${2:-}" == slow ]]; then
	instance+=-slow
	offset=$((offset + 200))
fi
STATE="$OUT/state-$instance"
export BERTH_NODE_NAME="$NODE"
export BERTH_APISERVER_PORT="${BERTH_CONFORMANCE_APISERVER_PORT:-$((26443 + offset))}"
export BERTH_ETCD_PORT="${BERTH_CONFORMANCE_ETCD_PORT:-$((24190 + offset))}"
export BERTH_ETCD_PEER_PORT="${BERTH_CONFORMANCE_ETCD_PEER_PORT:-$((24200 + offset))}"
export BERTH_KCM_PORT="${BERTH_CONFORMANCE_KCM_PORT:-$((10467 + offset))}"
export BERTH_SCHEDULER_PORT="${BERTH_CONFORMANCE_SCHEDULER_PORT:-$((10469 + offset))}"
export BERTH_KUBELET_PORT="${BERTH_CONFORMANCE_KUBELET_PORT:-$((12250 + offset))}"
export BERTH_NODE_CGROUP_ROOT="/berth-conformance-$instance"

log() { echo "conformance.sh: $*" >&2; }
die() {
	log "error: $*"
	exit 1
}

# --- build -------------------------------------------------------------------

# hash_of prints one hash of its arguments' contents and the Go version.
hash_of() {
	{
		go version
		sha256sum "$@" | awk '{print $1}'
	} | sha256sum | awk '{print $1}'
}

# The images' PATH, as upstream's busybox image sets it.
IMAGE_PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin

# busybox_rootfs DIR: hack/images.sh's busybox tree (Debian's static
# busybox 1.35, every applet linked) plus bash, which is also the `sh` found
# through PATH (/usr/local/bin/sh); /bin/sh stays busybox's ash. Upstream's
# busybox 1.37 image does both things the specs check of its shell: it
# passes on environment variables whose names are not shell identifiers
# (the env-var specs run `sh -c env` with ConfigMap keys like data-1, which
# Debian's older ash drops and bash keeps), and it words its errors as ash
# does (the read-only rootfs spec runs `/bin/sh -c 'echo test > /file'` and
# compares ash's message). See docs/conformance.md.
busybox_rootfs() {
	local root="$1" applet
	"$REPO_ROOT/hack/images.sh" rootfs-busybox "$root"
	# Upstream's busybox has every applet in /bin too (the sysctl specs
	# run /bin/sysctl; Debian's list puts it in /sbin).
	for applet in $(/bin/busybox --list); do
		[[ -e "$root/bin/$applet" || -L "$root/bin/$applet" ]] || ln -s busybox "$root/bin/$applet"
	done
	rm -f "$root/bin/bash"
	install -m 0755 /bin/bash-static "$root/bin/bash"
	mkdir -p "$root/usr/local/bin"
	ln -s /bin/bash "$root/usr/local/bin/sh"
}

# add_with_libs ROOT BIN...: Debian's dynamically linked BINs into ROOT at
# their paths, with the shared libraries ldd finds for them. A busybox
# applet link of the same name goes first: cp would write through it.
add_with_libs() {
	local root="$1" f
	shift
	for f in "$@"; do rm -f "$root$f"; done
	for f in "$@" $(ldd "$@" | grep -o '/[^ :]*' | sort -u); do
		cp -L --parents "$f" "$root/"
	done
}

# image_specs: NAME ARCHIVE ALIASES..., one image a line. Aliases are more
# names for the same image (ctr images tag after the import).
PROMOTER=registry.k8s.io/e2e-test-images
image_specs() {
	cat <<-EOF
		$PROMOTER/busybox:1.37.0-2 busybox
		$PROMOTER/agnhost:2.66.1 agnhost $PROMOTER/agnhost:2.55
		$PROMOTER/nonroot:1.5 nonroot
		$PROMOTER/nonewprivs:1.4 nonewprivs
		registry.k8s.io/pause:3.10.2 pause
		$PROMOTER/nginx:1.27.0-2 nginx $PROMOTER/nginx:1.28.0-2
		$PROMOTER/glibc-dns-testing:2.1.1 glibc-dns-testing
	EOF
}

# mkimage ARCHIVE NAME ROOTFS MKIMAGE_ARGS...
mkimage() {
	local archive="$1" name="$2" rootfs="$3"
	shift 3
	"$BASE_IMAGES/bin/mkimage" -o "$IMAGES/$archive.tar" -name "$name" -rootfs "$rootfs" -env "PATH=$IMAGE_PATH" "$@"
}

build_images() {
	local hash root="$IMAGES/rootfs" src
	mkdir -p "$IMAGES"
	"$REPO_ROOT/hack/images.sh" build # mkimage and pause
	hash="$(hash_of "${BASH_SOURCE[0]}" "$REPO_ROOT/hack/images.sh" "$BIN/agnhost" "$BIN/nonewprivs" \
		"$BASE_IMAGES/bin/pause" "$BASE_IMAGES/bin/mkimage" /bin/busybox /bin/bash-static /usr/bin/curl /bin/nc.openbsd /bin/hostname)"
	if [[ -f "$IMAGES/.stamp" && "$(cat "$IMAGES/.stamp")" == "$hash" ]]; then
		log "images up to date in $IMAGES"
		return 0
	fi
	rm -f "$IMAGES/.stamp"
	log "building the test images into $IMAGES"
	src="$(cd "$REPO_ROOT/cluster/e2e" && go list -m -f '{{.Dir}}' k8s.io/kubernetes)/test/images"

	busybox_rootfs "$root/busybox"
	mkimage busybox "$PROMOTER/busybox:1.37.0-2" "$root/busybox" -cmd '["sh"]'
	mkimage nonroot "$PROMOTER/nonroot:1.5" "$root/busybox" -user 1234 -cmd '["sh"]'

	# agnhost as test/images/agnhost/Dockerfile lays it out, with busybox
	# and bash for the tools the specs exec (sh, cat, ls, wget, ...), curl
	# (lifecycle hooks and the pod networking specs curl) and OpenBSD's nc
	# (busybox's has no -u, which the node-to-pod UDP spec uses).
	busybox_rootfs "$root/agnhost"
	# Its /bin/sh is bash: Debian's ash runs its own applets before PATH,
	# so `sh -c 'nc -u ...'` would never reach OpenBSD's nc.
	add_with_libs "$root/agnhost" /usr/bin/curl /bin/nc.openbsd
	rm -f "$root/agnhost/bin/nc" "$root/agnhost/usr/bin/nc" "$root/agnhost/bin/sh"
	ln -s /bin/nc.openbsd "$root/agnhost/usr/bin/nc"
	ln -s /bin/nc.openbsd "$root/agnhost/bin/nc"
	ln -s bash "$root/agnhost/bin/sh"
	install -m 0755 "$BIN/agnhost" "$root/agnhost/agnhost"
	ln -s agnhost "$root/agnhost/agnhost-2"
	install -m 0644 "$src/agnhost/porter/localhost.crt" "$src/agnhost/porter/localhost.key" "$root/agnhost/"
	mkdir -p "$root/agnhost/uploads" "$root/agnhost/home/user-defined-in-image"
	cat >>"$root/agnhost/etc/passwd" <<-'EOF'
		user-defined-in-image:x:1000:1000::/home/user-defined-in-image:/bin/sh
	EOF
	cat >>"$root/agnhost/etc/group" <<-'EOF'
		user-defined-in-image:x:1000:
		group-defined-in-image:x:50000:user-defined-in-image
	EOF
	mkimage agnhost "$PROMOTER/agnhost:2.66.1" "$root/agnhost" -entrypoint '["/agnhost"]' -cmd '["pause"]'

	busybox_rootfs "$root/nonewprivs"
	install -m 4755 "$BIN/nonewprivs" "$root/nonewprivs/usr/local/bin/nnp"
	mkimage nonewprivs "$PROMOTER/nonewprivs:1.4" "$root/nonewprivs" -cmd '["nnp"]'

	mkdir -p "$root/pause"
	install -m 0755 "$BASE_IMAGES/bin/pause" "$root/pause/pause"
	mkimage pause registry.k8s.io/pause:3.10.2 "$root/pause" -entrypoint '["/pause"]'

	# nginx stand-in: a web server on port 80 with a shell, which is all
	# the node specs use nginx for (busybox httpd).
	busybox_rootfs "$root/nginx"
	mkdir -p "$root/nginx/usr/share/nginx/html"
	echo '<html><body>nginx stand-in</body></html>' >"$root/nginx/usr/share/nginx/html/index.html"
	mkimage nginx "$PROMOTER/nginx:1.27.0-2" "$root/nginx" -cmd '["httpd", "-f", "-p", "80", "-h", "/usr/share/nginx/html"]'

	# glibc-dns-testing stand-in: glibc's resolver behind `hostname -f`
	# (the hostnameOverride specs), from Debian's hostname.
	busybox_rootfs "$root/glibc-dns-testing"
	add_with_libs "$root/glibc-dns-testing" /bin/hostname
	echo 'hosts: files dns' >"$root/glibc-dns-testing/etc/nsswitch.conf"
	mkimage glibc-dns-testing "$PROMOTER/glibc-dns-testing:2.1.1" "$root/glibc-dns-testing" -cmd '["sh"]'

	echo "$hash" >"$IMAGES/.stamp"
	log "built $(image_specs | awk '{print $1}' | paste -sd' ')"
}

build() {
	"$REPO_ROOT/hack/install-deps.sh"
	nice "$REPO_ROOT/hack/cluster.sh" build-e2e "$BIN"
	build_images
	nice "$REPO_ROOT/hack/cluster.sh" build
	# berth by rename: a berth of a run beside this one may be running it.
	(cd "$REPO_ROOT" && go build -o "$BIN/berth.new" ./cmd/berth && go build -o "$BIN/e2esummary" ./tools/e2esummary)
	mv -f "$BIN/berth.new" "$BIN/berth"
}

# import_images SOCK: every test image, under every name, into namespace
# k8s.io of the node's containerd.
import_images() {
	local sock="$1" name archive alias
	while read -r name archive aliases; do
		ctr --address "$sock" -n k8s.io images import "$IMAGES/$archive.tar" >/dev/null
		for alias in $aliases; do
			ctr --address "$sock" -n k8s.io images tag --force "$name" "$alias" >/dev/null
		done
	done < <(image_specs)
	log "imported the test images into $sock"
}

# --- selections --------------------------------------------------------------

# quick_focus: the names in test/conformance/quick.txt as one regexp of
# literal alternatives, anchored at the end (the text ginkgo matches starts
# with the suite's empty top-level container).
quick_focus() {
	local re="" line
	while IFS= read -r line; do
		[[ -z "$line" || "$line" == \#* ]] && continue
		line="$(printf '%s' "$line" | sed -e 's/[][\.*^$()+?{}|]/\\&/g')"
		re+="${re:+|}$line"
	done <"$QUICK_LIST"
	[[ -n "$re" ]] || die "no spec names in $QUICK_LIST"
	echo "($re)\$"
}

# selection SELECTION sets FOCUS and SKIP.
selection() {
	case "$1" in
	full)
		FOCUS='\[NodeConformance\]'
		SKIP='\[Serial\]|\[Slow\]|\[Flaky\]|\[Disruptive\]'
		;;
	quick)
		FOCUS="$(quick_focus)"
		SKIP='\[Serial\]|\[Slow\]|\[Flaky\]|\[Disruptive\]'
		;;
	slow)
		FOCUS='\[NodeConformance\].*\[Slow\]|\[Slow\].*\[NodeConformance\]'
		SKIP='\[Serial\]|\[Flaky\]|\[Disruptive\]'
		;;
	*) die "unknown selection $1 (full, quick or slow)" ;;
	esac
	FOCUS="${BERTH_CONFORMANCE_FOCUS:-$FOCUS}"
	SKIP="${BERTH_CONFORMANCE_SKIP:-$SKIP}"
}

# --- run ---------------------------------------------------------------------

# down STATE_DIR...: stop each run, unmount what its kubelet left mounted
# and remove the upstream kubelet's pod cgroups.
down() {
	local s
	for s in "$@"; do
		[[ -d "$s" ]] || continue
		"$REPO_ROOT/hack/cluster.sh" down "$s" || true
		unmount_under "$s"
		remove_pod_cgroups "/berth-conformance-${s##*/state-}"
	done
}

# unmount_under DIR lazily unmounts every mount point under DIR, deepest
# first: a kubelet stopped with pods leaves their volumes (tmpfs for tokens,
# secrets) mounted in its root directory.
unmount_under() {
	local m
	awk -v p="$1/" 'index($5, p) == 1 {print $5}' /proc/self/mountinfo | sort -r |
		while read -r m; do umount -l "$m" || true; done
}

# remove_pod_cgroups ROOT removes the empty cgroups under ROOT, deepest
# first, once the runtime has stopped every container.
remove_pod_cgroups() {
	local h
	for h in /sys/fs/cgroup/*/; do
		[[ -d "$h${1#/}" ]] || continue
		find "$h${1#/}" -depth -type d -exec rmdir {} + 2>/dev/null || true
	done
}

# collect_logs copies the node's and the control plane's logs next to the
# results, so that a failure can be read after the state is gone.
collect_logs() {
	local dir="$1" f
	mkdir -p "$dir/logs"
	for f in "$STATE"/*.log "$STATE"/containerd/containerd.log; do
		[[ -f "$f" ]] && cp "$f" "$dir/logs/"
	done
}

run() {
	local sel="${1:-full}" results rc=0 start=$SECONDS
	case "$KUBELET" in berth | upstream) ;; *) die "KUBELET must be berth or upstream, not $KUBELET" ;; esac
	selection "$sel"
	results="$OUT/results/$KUBELET-$sel"
	# A run of chosen specs must not replace the selection's results.
	[[ -z "${BERTH_CONFORMANCE_FOCUS:-}" ]] || results="$OUT/results/$KUBELET-focus"
	build

	# A fresh etcd and containerd every run: nothing of a previous run (or
	# of the other kubelet) may be in the way.
	down "$STATE"
	rm -rf "$STATE" "$results"
	mkdir -p "$results"
	trap 'collect_logs "'"$results"'"; if [[ "${BERTH_CONFORMANCE_KEEP:-}" != 1 ]]; then down "$STATE"; fi' EXIT
	"$REPO_ROOT/hack/cluster.sh" up "$STATE"
	BERTH_NODE_AGENT="$KUBELET" BERTH_BIN="$BIN/berth" "$REPO_ROOT/hack/cluster.sh" node-up "$STATE"
	import_images "$(sed -n 's/^CONTAINERD_ADDRESS=//p' "$STATE/containerd/env")"
	log "set up in $((SECONDS - start))s; running '$sel' against $KUBELET with $PROCS processes; output in $results/e2e.log"

	# --timeout is the whole suite's; a spec's own timeouts are e2e's.
	# kubectl: the few specs that run it find it in PATH.
	PATH="$CLUSTER_BIN:$PATH" "$BIN/ginkgo" --procs="$PROCS" --timeout=2h --no-color \
		--focus="$FOCUS" --skip="$SKIP" \
		--output-dir="$results" --json-report=report.json --junit-report=junit.xml \
		"$BIN/e2e.test" -- \
		--kubeconfig="$STATE/admin.kubeconfig" \
		--container-runtime-endpoint="unix://$STATE/containerd/containerd.sock" \
		--node-os-distro=debian \
		--report-dir="$results" \
		>"$results/e2e.log" 2>&1 || rc=$?
	log "ginkgo exited with $rc after $((SECONDS - start))s"

	local args=(-report "$results/report.json" -title "$KUBELET: $sel" -o "$results/summary.md")
	[[ "$sel" == quick ]] && args+=(-fail-on-skip)
	if [[ ! -f "$results/report.json" ]]; then
		tail -n 40 "$results/e2e.log" >&2
		die "no report from ginkgo; see $results/e2e.log"
	fi
	"$BIN/e2esummary" "${args[@]}" || rc=1
	log "summary: $results/summary.md"
	return "$rc"
}

list() {
	local sel="${1:-full}"
	selection "$sel"
	"$REPO_ROOT/hack/cluster.sh" build-e2e "$BIN"
	"$BIN/e2e.test" --ginkgo.dry-run --ginkgo.no-color --ginkgo.v \
		--ginkgo.focus="$FOCUS" --ginkgo.skip="$SKIP" 2>/dev/null |
		sed -n 's/^\(\[[a-z-]*\] .*\)$/\1/p' | sort -u
}

# main is one function, called on the last line: a script edited while a
# long run goes on must not have bash read the rest from the new file.
main() {
	case "${1:-}" in
	build) build ;;
	images)
		"$REPO_ROOT/hack/cluster.sh" build-e2e "$BIN"
		build_images
		;;
	run) run "${2:-full}" ;;
	down) down "$OUT"/state-* ;;
	list) list "${2:-full}" ;;
	*)
		echo "usage: $0 build | images | run [full|quick|slow] | down | list [full|quick|slow]" >&2
		exit 2
		;;
	esac
}

main "$@"; exit

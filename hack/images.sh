#!/usr/bin/env bash
# Local test images, built without docker and without a registry.
#
#   hack/images.sh build        write _output/images/{pause,busybox}.tar (cached)
#   hack/images.sh import SOCK  import them into namespace k8s.io of the containerd at SOCK
#   hack/images.sh names        print the image names, one a line
#   hack/images.sh rootfs-busybox DIR  write the busybox image's tree into DIR (for other images)
#
# Images:
#   registry.k8s.io/pause:3.10  tools/pause, the sandbox image containerd is configured with
#   berth.local/busybox:1.0     Debian's static busybox with every applet linked, default cmd sh
#
# The build is skipped while its inputs (the Go sources, this script, the
# busybox binary, the Go version) are unchanged. BERTH_IMAGES_DIR overrides the
# output directory.
set -euo pipefail
umask 022 # the rootfs's modes end up in the image

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
OUT="${BERTH_IMAGES_DIR:-$REPO_ROOT/_output/images}"
PAUSE_IMAGE="registry.k8s.io/pause:3.10"
BUSYBOX_IMAGE="berth.local/busybox:1.0"
BUSYBOX_BIN="/bin/busybox"
ARCHIVES=("$OUT/pause.tar" "$OUT/busybox.tar")

log() { echo "images: $*" >&2; }

inputs_hash() {
	{
		go version
		sha256sum "$REPO_ROOT"/tools/mkimage/*.go "$REPO_ROOT"/tools/pause/*.go \
			"$REPO_ROOT/hack/images.sh" "$BUSYBOX_BIN" | awk '{print $1}'
	} | sha256sum | awk '{print $1}'
}

up_to_date() {
	local a
	[[ -f "$OUT/.inputs" && "$(cat "$OUT/.inputs")" == "$1" ]] || return 1
	for a in "${ARCHIVES[@]}"; do [[ -s "$a" ]] || return 1; done
}

build_busybox_rootfs() {
	local root="$1" applet
	rm -rf "$root"
	mkdir -p "$root/bin" "$root/etc" "$root/root" "$root/tmp" "$root/var/www" "$root/home"
	chmod 1777 "$root/tmp"
	chmod 0700 "$root/root"
	install -m 0755 "$BUSYBOX_BIN" "$root/bin/busybox"
	# --list-full prints every applet with its install path (bin/sh, usr/bin/wget, ...).
	for applet in $("$BUSYBOX_BIN" --list-full); do
		[[ "$applet" == "bin/busybox" ]] && continue
		mkdir -p "$root/$(dirname "$applet")"
		ln -sf /bin/busybox "$root/$applet"
	done
	cat >"$root/etc/passwd" <<-'EOF'
		root:x:0:0:root:/root:/bin/sh
		nobody:x:65534:65534:nobody:/home:/bin/false
	EOF
	cat >"$root/etc/group" <<-'EOF'
		root:x:0:
		nogroup:x:65534:
		nobody:x:65534:
	EOF
}

build() {
	mkdir -p "$OUT"
	# Parallel test processes may build at once: one builds, the others wait.
	exec 9>"$OUT/.lock"
	flock 9
	local hash
	hash="$(inputs_hash)"
	if up_to_date "$hash"; then
		log "up to date in $OUT"
		return 0
	fi
	log "building into $OUT"
	rm -f "$OUT/.inputs"
	(
		cd "$REPO_ROOT"
		go build -trimpath -o "$OUT/bin/mkimage" ./tools/mkimage
		CGO_ENABLED=0 go build -trimpath -ldflags='-s -w -buildid=' -o "$OUT/bin/pause" ./tools/pause
	)
	"$OUT/bin/mkimage" -o "$OUT/pause.tar" -name "$PAUSE_IMAGE" \
		-file "$OUT/bin/pause:/pause:0755" -entrypoint '["/pause"]'
	build_busybox_rootfs "$OUT/rootfs/busybox"
	"$OUT/bin/mkimage" -o "$OUT/busybox.tar" -name "$BUSYBOX_IMAGE" \
		-rootfs "$OUT/rootfs/busybox" -cmd '["sh"]'
	echo "$hash" >"$OUT/.inputs"
	log "built $PAUSE_IMAGE, $BUSYBOX_IMAGE"
}

import() {
	local sock="${1:?usage: images.sh import SOCK}" a
	build
	for a in "${ARCHIVES[@]}"; do
		ctr --address "$sock" -n k8s.io images import "$a" >/dev/null
	done
	log "imported into $sock: $PAUSE_IMAGE $BUSYBOX_IMAGE"
}

case "${1:-}" in
build) build ;;
import) import "${2:-}" ;;
names) printf '%s\n' "$PAUSE_IMAGE" "$BUSYBOX_IMAGE" ;;
rootfs-busybox) build_busybox_rootfs "${2:?usage: images.sh rootfs-busybox DIR}" ;;
*)
	echo "usage: $0 build | import SOCK | names | rootfs-busybox DIR" >&2
	exit 2
	;;
esac

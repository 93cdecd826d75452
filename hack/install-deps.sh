#!/usr/bin/env bash
# Installs what berth's tests need from Debian, as root. Idempotent, and a
# fast no-op when everything is there: it asks apt only about what is missing.
set -euo pipefail

PACKAGES=(
	containerd
	runc
	containernetworking-plugins
	busybox-static
	bash-static    # bash in the conformance test images (hack/conformance.sh)
	netcat-openbsd # nc in the conformance agnhost image, as upstream's
	skopeo
	docker-registry
	dbus-daemon # the private bus of the graceful node shutdown test (test/cluster)
	iproute2
	procps
	curl
	util-linux # flock, setsid
)

missing=()
for p in "${PACKAGES[@]}"; do
	if [[ "$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null)" != installed ]]; then
		missing+=("$p")
	fi
done
if ((${#missing[@]} == 0)); then
	exit 0
fi

if ((EUID != 0)); then
	echo "install-deps: need root to install: ${missing[*]}" >&2
	exit 1
fi
echo "install-deps: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# Packages must not start their services: docker-registry's init script
# would take port 5000 (with auth) from hack/registry.sh, and a system
# containerd would run behind our backs. policy-rc.d exit 101 forbids it.
if [[ ! -e /usr/sbin/policy-rc.d ]]; then
	printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
	chmod 0755 /usr/sbin/policy-rc.d
	trap 'rm -f /usr/sbin/policy-rc.d' EXIT
fi
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "install-deps: done" >&2

#!/usr/bin/env bash
# A local image registry on loopback, for tests of image pulls.
#
#   hack/registry.sh up     [STATE_DIR]   start Debian's docker-registry (default _output/registry)
#   hack/registry.sh down   [STATE_DIR]   stop it; its storage stays under STATE_DIR
#   hack/registry.sh status [STATE_DIR]   exit 0 if it answers
#   hack/registry.sh push ARCHIVE NAME    push an OCI archive as ADDR/NAME (e.g. busybox:1.0)
#
# It listens on REGISTRY_ADDR (default 127.0.0.1:5000), plain HTTP, no auth.
# containerds started by hack/containerd.sh pull from 127.0.0.1:5000 over
# HTTP (see BERTH_INSECURE_REGISTRIES there). One registry per address: tests
# that run in parallel share it, so push under names unique to the test.
#
# With BERTH_REGISTRY_AUTH=user:password (on `up` and `push`), the registry asks
# for that user (htpasswd, basic auth) and `push` logs in as it; use another
# REGISTRY_ADDR and STATE_DIR than the shared no-auth registry's.
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
ADDR="${REGISTRY_ADDR:-127.0.0.1:5000}"
AUTH="${BERTH_REGISTRY_AUTH:-}"

usage() {
	echo "usage: $0 up|down|status [STATE_DIR] | push ARCHIVE NAME" >&2
	exit 2
}

log() { echo "registry.sh[$ADDR]: $*" >&2; }
die() {
	log "error: $*"
	exit 1
}

state_dir() { realpath -m "${1:-$REPO_ROOT/_output/registry}"; }

# answers: /v2/ says 200, or 401 when the registry wants a login.
answers() {
	local code
	code="$(curl -sS --max-time 2 -o /dev/null -w '%{http_code}' "http://$ADDR/v2/" 2>/dev/null)" || return 1
	[[ "$code" == 200 || "$code" == 401 ]]
}

# htpasswd_entry USER PASSWORD: a bcrypt htpasswd line (the only hash the
# registry accepts), by htpasswd (apache2-utils) or else Python's crypt
# module over the C library's bcrypt (glibc's libxcrypt on Debian 12).
# Cost 4, bcrypt's least: the registry checks the hash on every request,
# and at the default cost each one took a second on a busy test machine
# (a push 13 s); a test password needs no protection.
htpasswd_entry() {
	if command -v htpasswd >/dev/null; then
		htpasswd -Bbn -C 4 "$1" "$2"
		return
	fi
	command -v python3 >/dev/null || die "htpasswd (apache2-utils) or python3 is needed for BERTH_REGISTRY_AUTH"
	python3 -W ignore -c '
import crypt, sys
h = crypt.crypt(sys.argv[2], crypt.mksalt(crypt.METHOD_BLOWFISH, rounds=16))
if not h or not h.startswith("$2"):
    sys.exit("no bcrypt in this C library; install apache2-utils for htpasswd")
print(sys.argv[1] + ":" + h)
' "$1" "$2" || die "cannot make a bcrypt htpasswd entry"
}

pid_alive() {
	local pid
	[[ -f "$1" ]] || return 1
	pid="$(cat "$1")"
	[[ -n "$pid" && -d "/proc/$pid" ]] || return 1
	[[ "$(cat "/proc/$pid/comm" 2>/dev/null)" == docker-registry ]]
}

up() {
	local s pidfile pid deadline
	s="$(state_dir "${1:-}")"
	pidfile="$s/registry.pid"
	mkdir -p "$s/data"
	if pid_alive "$pidfile" && answers; then
		log "already running (pid $(cat "$pidfile"))"
		return 0
	fi
	if answers; then
		die "something else already serves http://$ADDR"
	fi
	cat >"$s/config.yml" <<-EOF
		version: 0.1
		log:
		  level: warn
		  accesslog:
		    disabled: true
		storage:
		  filesystem:
		    rootdirectory: $s/data
		  delete:
		    enabled: true
		http:
		  addr: $ADDR
	EOF
	if [[ -n "$AUTH" ]]; then
		[[ "$AUTH" == *:* ]] || die "BERTH_REGISTRY_AUTH must be user:password"
		htpasswd_entry "${AUTH%%:*}" "${AUTH#*:}" >"$s/htpasswd"
		cat >>"$s/config.yml" <<-EOF
			auth:
			  htpasswd:
			    realm: berth-test
			    path: $s/htpasswd
		EOF
	fi
	# docker-registry reads REGISTRY_* variables as configuration: none of ours.
	setsid env -u REGISTRY_ADDR docker-registry serve "$s/config.yml" </dev/null >>"$s/registry.log" 2>&1 &
	pid=$!
	echo "$pid" >"$pidfile"
	deadline=$((SECONDS + 15))
	until answers; do
		if [[ ! -d "/proc/$pid" ]] || ((SECONDS >= deadline)); then
			log "did not come up; last lines of $s/registry.log:"
			tail -n 20 "$s/registry.log" >&2 || true
			kill "$pid" 2>/dev/null || true
			exit 1
		fi
		sleep 0.1
	done
	log "running (pid $pid), storage $s/data"
}

down() {
	local s pidfile pid
	s="$(state_dir "${1:-}")"
	pidfile="$s/registry.pid"
	if ! pid_alive "$pidfile"; then
		rm -f "$pidfile"
		log "not running"
		return 0
	fi
	pid="$(cat "$pidfile")"
	kill -TERM "$pid" 2>/dev/null || true
	for _ in $(seq 1 50); do
		[[ -d "/proc/$pid" ]] || break
		sleep 0.1
	done
	kill -KILL "$pid" 2>/dev/null || true
	rm -f "$pidfile"
	log "stopped"
}

push() {
	local archive="${1:-}" name="${2:-}"
	[[ -n "$archive" && -n "$name" ]] || usage
	[[ -f "$archive" ]] || die "no archive $archive"
	local creds=()
	[[ -z "$AUTH" ]] || creds=(--dest-creds "$AUTH")
	skopeo --insecure-policy copy --quiet --dest-tls-verify=false "${creds[@]}" \
		"oci-archive:$archive" "docker://$ADDR/$name"
	log "pushed $archive as $ADDR/$name"
}

case "${1:-}" in
up) up "${2:-}" ;;
down) down "${2:-}" ;;
status)
	if answers; then echo "running: http://$ADDR"; else
		echo "not running: http://$ADDR"
		exit 1
	fi
	;;
push) push "${2:-}" "${3:-}" ;;
*) usage ;;
esac

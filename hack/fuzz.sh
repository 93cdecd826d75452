#!/usr/bin/env bash
# Runs every native fuzz target of berth for FUZZTIME each (default 3s, the
# short run CI makes; `make fuzz FUZZTIME=5m` for a real search). Each
# package's test binary is built once, instrumented (go test -c -fuzz), and
# run once per target: -fuzz takes one target at a time, and building per
# target would cost more than the fuzzing. New inputs the engine finds go
# to Go's cache ($GOCACHE/fuzz, as go test -fuzz keeps them); a failing
# input is written to the package's testdata/fuzz/<Target>/ and fails the
# run: commit it with the fix, so that it stays a regression test.
set -euo pipefail
cd "$(dirname "$0")/.."
FUZZTIME=${FUZZTIME:-3s}
module=$(go list -m)
cache="$(go env GOCACHE)/fuzz"
bin=$(mktemp -d)
trap 'rm -rf "$bin"' EXIT

# package target... A target marked * is left out of the short run
# (FUZZ_SHORT=1, CI's): another target reaches its code too.
targets=(
	"internal/source/file FuzzParseManifest"
	"internal/config FuzzConfigFile FuzzFlags FuzzDecode*"
	"internal/logs FuzzParseCRILog FuzzRead"
	"internal/server FuzzQuery FuzzParsePorts*"
)
for line in "${targets[@]}"; do
	read -r pkg names <<<"$line"
	test="$bin/$(basename "$pkg").test"
	go test -c -fuzz=. -o "$test" "./$pkg"
	for name in $names; do
		if [[ "$name" == *"*" ]]; then
			[[ "${FUZZ_SHORT:-}" == 1 ]] && continue
			name=${name%"*"}
		fi
		echo "fuzz $pkg $name ($FUZZTIME)"
		# Run in the package's directory: the seed corpus is testdata/fuzz.
		(cd "$pkg" && "$test" -test.run='^$' -test.fuzz="^${name}\$" -test.fuzztime="$FUZZTIME" \
			-test.fuzzcachedir="$cache/$module/$pkg") 2>&1 | grep -v '^fuzz: elapsed' || exit 1
	done
done

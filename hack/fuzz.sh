#!/usr/bin/env bash
# Runs every native fuzz target of berth for FUZZTIME each (default 3s, the
# short run CI makes; `make fuzz FUZZTIME=5m` for a real search). New
# inputs the engine finds go to Go's cache, not to the repo; a failing
# input is written to the package's testdata/fuzz/<Target>/ and fails the
# run: commit it with the fix, so that it stays a regression test.
set -euo pipefail
cd "$(dirname "$0")/.."
FUZZTIME=${FUZZTIME:-3s}

# package target... (one go test per target: -fuzz takes one at a time)
targets=(
	"./internal/source/file FuzzParseManifest"
	"./internal/config FuzzConfigFile FuzzFlags FuzzDecode"
	"./internal/logs FuzzParseCRILog FuzzRead"
	"./internal/server FuzzQuery FuzzParsePorts"
)
for line in "${targets[@]}"; do
	read -r pkg names <<<"$line"
	for name in $names; do
		echo "fuzz $pkg $name ($FUZZTIME)"
		go test -run='^$' -fuzz="^${name}\$" -fuzztime="$FUZZTIME" "$pkg" | grep -v '^fuzz: elapsed' || exit 1
	done
done

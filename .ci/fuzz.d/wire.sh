#!/usr/bin/env bash
# Short fuzz passes over package wire (run from the repository root by
# .ci/run). Each target runs for FUZZTIME (default 10s).
set -euo pipefail
cd "$(dirname "$0")/../.."
fuzztime="${FUZZTIME:-10s}"
for target in FuzzParseRequest FuzzFrameReader; do
	echo "== fuzz wire.$target ($fuzztime)"
	go test -run '^$' -fuzz "^${target}\$" -fuzztime "$fuzztime" ./wire
done

#!/usr/bin/env bash
# Short fuzz passes over package wire (run from the repository root by
# .ci/run). Each target runs FUZZTIME executions (default 1000000x).
# Budgets are execution counts (Nx), not durations: with a duration, Go
# 1.26's fuzz coordinator can fail a clean run with "context deadline
# exceeded" as the time runs out (golang/go#75804, fixed in Go 1.27).
set -euo pipefail
cd "$(dirname "$0")/../.."
fuzztime="${FUZZTIME:-1000000x}"
for target in FuzzParseRequest FuzzFrameReader; do
	echo "== fuzz wire.$target ($fuzztime)"
	go test -run '^$' -fuzz "^${target}\$" -fuzztime "$fuzztime" ./wire
done

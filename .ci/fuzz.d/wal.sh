#!/usr/bin/env bash
# Short fuzz passes for the storage engine (package wal): the record decoder,
# then recovery of arbitrary segment-file bytes.
# Budgets are execution counts (Nx), not durations: with a duration, Go
# 1.26's fuzz coordinator can fail a clean run with "context deadline
# exceeded" as the time runs out (golang/go#75804, fixed in Go 1.27).
set -euo pipefail
cd "$(dirname "$0")/../.."
go test -run '^$' -fuzz '^FuzzDecodeRecord$' -fuzztime 1000000x ./wal
go test -run '^$' -fuzz '^FuzzRecover$' -fuzztime 300000x ./wal
